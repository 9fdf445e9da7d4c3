"""run_training(job_id, settings): the one function every runner calls to train a job.

The embedded runner calls it in a fresh subprocess per job; a queue worker (RQ) calls it in
its work horse. It assumes the job was claimed (status running, worker_id set) and from then
on owns the row through the fencing token worker_id (see service/jobs/store.py):

- start: resume from the job's latest checkpoint if there is one, deleting metric points
  after it, so the history continues with no gap and no duplicate; else build the model.
- each epoch: one short write transaction inserts the metric point, updates the job's
  progress, ETA and heartbeat, and (every checkpoint_every epochs) replaces the checkpoint,
  so the stored history and the checkpoint can never disagree.
- a heartbeat thread keeps the lease alive during long epochs and relays cancel requests.
- end: register the model version and mark the job succeeded in one transaction; or mark
  it cancelled or failed with a reason. No exception leaves the job running.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from nn_core.callbacks import Cancel, Checkpoint, Progress
from nn_core.diagnostics import Diagnostics
from nn_core.errors import DataError, NNCoreError, SpecError
from nn_core.serialize import load_state, save_model, save_state
from nn_core.spec import build_model
from nn_core.training import CANCELLED, NON_FINITE_LOSS, NON_FINITE_WEIGHTS, Trainer
from nn_core.training_warnings import find_warnings, merge_warnings
from service.config import Settings
from service.datasets_store import DatasetUnavailableError
from service.db import Database
from service.errors import ServiceError
from service.jobs import store
from service.jobs.batch_predict import is_batch_predict, run_batch_predict
from service.jobs.data import load_job_data
from service.jobs.evaluate import final_metrics, json_safe
from service.jobs.heartbeat import Heartbeat
from service.jobs.lr_range import is_range_test, run_range_test
from service.jobs.outcome import JobOutcome
from service.jobs.registry import LostOwnership, register_version
from service.jobs.retry import is_transient, retry_db
from service.models import Checkpoint as CheckpointRow
from service.models import JobDiagnostics, JobStatus, MetricPoint, TrainingJob, utcnow
from service.webhooks import job_events

if TYPE_CHECKING:
    from service.sweeps.trials import TrialHook

log = logging.getLogger(__name__)


def run_training(job_id: str, settings: Settings, *, worker_id: str | None = None) -> JobOutcome:
    """Train the claimed job `job_id` to its end; returns the status it ended in (NOT_OWNED
    when the job was not, or no longer, this worker's to run).

    `worker_id` is the claim's fencing token (default: whatever the row holds now, for a
    caller that has just claimed it). Builds its own database engine and disposes of it at
    the end, so nothing is shared with a parent process across fork or spawn.
    """
    database = Database(settings)
    try:
        return _TrainingRun(database, settings, job_id, worker_id).execute()
    finally:
        database.dispose()


@dataclass
class _Start:
    job: TrainingJob
    worker_id: str
    checkpoint_id: int | None


class _EpochWriter:
    """Progress and Checkpoint callbacks sharing one write transaction per epoch."""

    def __init__(self, run: _TrainingRun, worker_id: str, heartbeat: Heartbeat) -> None:
        self.run = run
        self.worker_id = worker_id
        self.heartbeat = heartbeat
        self.pending_state: bytes | None = None
        self.started = time.monotonic()
        self.first_epoch: int | None = None
        self.pruned_at: int | None = None  # the epoch after which a sweep's pruner stopped it
        self.pending_diagnostics: dict[str, Any] | None = None
        self.warnings: list[dict[str, Any]] = []  # as stored on the job (epoch first seen)

    def stash_checkpoint(self, trainer: Trainer) -> None:
        self.pending_state = save_state(trainer)

    def stash_diagnostics(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """This epoch's per-layer statistics, written with its metric point."""
        self.pending_diagnostics = json_safe(record)

    def _eta(self, epoch: int, total: int) -> float | None:
        if self.first_epoch is None:
            self.first_epoch = epoch - 1
        done = epoch - self.first_epoch
        if done <= 0:
            return None
        per_epoch = (time.monotonic() - self.started) / done
        return max(0.0, per_epoch * (total - epoch))

    def write(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        epoch = int(logs["epoch"])
        metrics = json_safe(dict(logs))
        state, self.pending_state = self.pending_state, None
        record, self.pending_diagnostics = self.pending_diagnostics, None
        self.warnings = merge_warnings(self.warnings, find_warnings(record, trainer.history))
        eta = self._eta(epoch, self.run.total_epochs)
        cancel = retry_db(
            lambda: self._commit(epoch, metrics, eta, state, record),
            f"job {self.run.job_id}: epoch {epoch}",
        )
        if cancel:
            self.heartbeat.cancel.set()
        elif self.run.trial is not None and self._prune():
            self.pruned_at = epoch
            self.heartbeat.cancel.set()

    def _prune(self) -> bool:
        trial = self.run.trial
        assert trial is not None
        return retry_db(trial.should_prune, f"job {self.run.job_id}: ask the sweep's pruner")

    def _commit(
        self,
        epoch: int,
        metrics: dict[str, Any],
        eta: float | None,
        state: bytes | None,
        record: dict[str, Any] | None,
    ) -> bool:
        """One epoch's progress, metric point, diagnostics, warnings and checkpoint; returns
        the cancel flag."""
        job_id = self.run.job_id
        with self.run.database.write_session() as session:
            result = session.execute(
                update(TrainingJob)
                .where(store.fenced(job_id, self.worker_id))
                .values(
                    epoch=epoch,
                    metrics=metrics,
                    eta_seconds=eta,
                    heartbeat_at=utcnow(),
                    warnings=self.warnings or None,
                )
            )
            if not getattr(result, "rowcount", 0):
                raise LostOwnership(job_id)
            session.add(MetricPoint(job_id=job_id, epoch=epoch, metrics=metrics))
            if record is not None:
                session.add(JobDiagnostics(job_id=job_id, epoch=epoch, record=record))
            if state is not None:
                session.execute(delete(CheckpointRow).where(CheckpointRow.job_id == job_id))
                session.add(CheckpointRow(job_id=job_id, epoch=epoch, state=state))
            return bool(
                session.scalar(select(TrainingJob.cancel_requested).where(TrainingJob.id == job_id))
            )


class _TrainingRun:
    def __init__(
        self, database: Database, settings: Settings, job_id: str, worker_id: str | None
    ) -> None:
        self.database = database
        self.settings = settings
        self.job_id = job_id
        self.worker_id = worker_id
        self.total_epochs = 0
        self.trial: TrialHook | None = None  # set when the job is a sweep's trial

    def execute(self) -> JobOutcome:
        started = retry_db(self._start, f"job {self.job_id}: start")
        if not isinstance(started, _Start):
            return started
        worker_id = started.worker_id
        try:
            with Heartbeat(
                self.database, self.job_id, worker_id, self.settings.heartbeat_seconds
            ) as heartbeat:
                return self._train(started, heartbeat)
        except LostOwnership:
            log.warning("job %s: lost ownership to another worker; stopped", self.job_id)
            return JobOutcome.NOT_OWNED
        except BaseException as exc:
            if isinstance(exc, DBAPIError) and is_transient(exc):
                # The database stayed out of reach through every retry: leave the job as it
                # is, so the supervisor sees this process die unsettled and requeues the job
                # to resume from its checkpoint (an attempt, like any crash).
                log.error("job %s: database unavailable; exiting for a retry: %s", self.job_id, exc)
                raise
            reason = failure_reason(exc)
            if isinstance(exc, Exception) and not isinstance(exc, NNCoreError | ServiceError):
                log.exception("job %s failed unexpectedly", self.job_id)
            else:
                log.info("job %s failed: %s", self.job_id, reason)
            self._finish_quietly(worker_id, JobStatus.FAILED, reason)
            if not isinstance(exc, Exception):
                raise
            return JobOutcome.FAILED

    # ------------------------------------------------------------------ start

    def _start(self) -> _Start | JobOutcome:
        """Check ownership; pick the checkpoint to resume from and trim history after it."""
        with self.database.write_session() as session:
            job = session.scalar(
                select(TrainingJob).where(TrainingJob.id == self.job_id).with_for_update()
            )
            if job is None:
                log.warning("job %s does not exist", self.job_id)
                return JobOutcome.NOT_OWNED
            worker_id = self.worker_id or job.worker_id
            if job.status not in store.LIVE_STATUSES or not worker_id or job.worker_id != worker_id:
                log.warning("job %s is %s and not claimed by %s", job.id, job.status, worker_id)
                return JobOutcome.NOT_OWNED
            if job.cancel_requested:
                store.finish(session, job.id, worker_id, JobStatus.CANCELLED)
                return JobOutcome.CANCELLED
            row = session.execute(
                select(CheckpointRow.id, CheckpointRow.epoch)
                .where(CheckpointRow.job_id == job.id)
                .order_by(CheckpointRow.epoch.desc())
                .limit(1)
            ).first()
            resume_epoch = row.epoch if row is not None else 0
            session.execute(
                delete(MetricPoint).where(
                    MetricPoint.job_id == job.id, MetricPoint.epoch > resume_epoch
                )
            )
            session.execute(
                delete(JobDiagnostics).where(
                    JobDiagnostics.job_id == job.id, JobDiagnostics.epoch > resume_epoch
                )
            )
            kept = [w for w in job.warnings or [] if w.get("epoch", 0) <= resume_epoch]
            job.warnings = kept or None
            job.epoch = resume_epoch
            job.metrics = session.scalar(
                select(MetricPoint.metrics).where(
                    MetricPoint.job_id == job.id, MetricPoint.epoch == resume_epoch
                )
            )
            job.eta_seconds = None
            job.heartbeat_at = utcnow()
            self.total_epochs = job.total_epochs
            if row is not None:
                log.info("job %s: resuming from the checkpoint of epoch %d", job.id, resume_epoch)
            return _Start(job=job, worker_id=worker_id, checkpoint_id=row.id if row else None)

    def _trainer(self, start: _Start) -> Trainer:
        max_params = self.settings.max_model_params
        if start.checkpoint_id is None:
            return Trainer(build_model(start.job.spec, max_params=max_params))
        state = retry_db(
            lambda: self._checkpoint_state(start.checkpoint_id),
            f"job {self.job_id}: read checkpoint",
        )
        if state is None:  # deleted since _start: only a new owner does that
            raise LostOwnership(self.job_id)
        return load_state(state, max_params=max_params)

    def _checkpoint_state(self, checkpoint_id: int | None) -> bytes | None:
        with self.database.session() as session:
            return session.scalar(
                select(CheckpointRow.state).where(CheckpointRow.id == checkpoint_id)
            )

    # ------------------------------------------------------------------ train

    def _train(self, start: _Start, heartbeat: Heartbeat) -> JobOutcome:
        job, worker_id = start.job, start.worker_id
        if is_batch_predict(job):  # the job kind that predicts a dataset, loading no split
            return run_batch_predict(self.database, self.settings, job, worker_id, heartbeat)
        data = retry_db(
            lambda: load_job_data(self.database, self.settings, job),
            f"job {self.job_id}: load data",
        )
        if is_range_test(job):  # the job kind that tests learning rates, not trains
            return run_range_test(self.database, self.settings, job, worker_id, data, heartbeat)
        trainer = self._trainer(start)
        self.trial = self._trial_hook(job)
        writer = _EpochWriter(self, worker_id, heartbeat)
        writer.warnings = list(job.warnings or [])
        trainer.fit(
            data.X_train,
            data.y_train,
            callbacks=[
                Checkpoint(writer.stash_checkpoint, every=self.settings.checkpoint_every),
                Diagnostics(writer.stash_diagnostics),
                Progress(writer.write),
                Cancel(heartbeat.should_stop, interval=0.0),
            ],
        )
        if heartbeat.lost.is_set():
            raise LostOwnership(self.job_id)
        reason = trainer.stop_reason
        if reason == CANCELLED and writer.pruned_at is not None and self.trial is not None:
            self._finish_pruned(self.trial, worker_id, writer.pruned_at)
            return JobOutcome.CANCELLED
        if reason == CANCELLED:
            self._finish(worker_id, JobStatus.CANCELLED)
            return JobOutcome.CANCELLED
        if reason in (NON_FINITE_LOSS, NON_FINITE_WEIGHTS):
            self._finish(worker_id, JobStatus.FAILED, divergence_reason(reason, trainer.epoch))
            return JobOutcome.FAILED
        metrics = final_metrics(
            trainer,
            data.X_test,
            data.y_test,
            dataset=data.name,
            n_train=len(data.X_train),
        )
        self._register(job, worker_id, metrics, save_model(trainer.model))
        log.info("job %s succeeded after %d epochs (%s)", job.id, trainer.epoch, reason)
        return JobOutcome.SUCCEEDED

    def _register(
        self, job: TrainingJob, worker_id: str, metrics: dict[str, Any], weights: bytes
    ) -> None:
        for attempt in range(3):
            try:
                retry_db(
                    lambda: self._register_once(job, worker_id, metrics, weights),
                    f"job {job.id}: register",
                )
                return
            except IntegrityError:  # a concurrent registration took the version number
                if attempt == 2:
                    raise

    def _register_once(
        self, job: TrainingJob, worker_id: str, metrics: dict[str, Any], weights: bytes
    ) -> None:
        with self.database.write_session() as session:
            if self.trial is not None:  # the sweep registers its best trial when it ends
                self.trial.complete(session, worker_id, metrics, weights)
                session.execute(delete(CheckpointRow).where(CheckpointRow.job_id == job.id))
                return
            version = register_version(
                session,
                job_id=job.id,
                worker_id=worker_id,
                owner=job.owner,
                model_name=job.model_name,
                spec=job.spec,
                metrics=metrics,
                weights=weights,
            )
            job_events.succeeded(session, job, job.model_name, version.version)
            session.execute(delete(CheckpointRow).where(CheckpointRow.job_id == job.id))

    def _trial_hook(self, job: TrainingJob) -> TrialHook | None:
        """The sweep trial this job runs; Optuna is imported only by trial jobs."""
        if not (job.hyperparameters or {}).get("sweep_id"):
            return None
        from service.sweeps.trials import TrialHook

        return retry_db(
            lambda: TrialHook.for_job(self.database, self.job_id), f"job {self.job_id}: trial"
        )

    def _finish_pruned(self, trial: TrialHook, worker_id: str, epoch: int) -> None:
        if not retry_db(lambda: trial.finish_pruned(worker_id, epoch), f"job {self.job_id}: prune"):
            raise LostOwnership(self.job_id)
        log.info("job %s: pruned by its sweep after epoch %d", self.job_id, epoch)

    def _finish(self, worker_id: str, status: JobStatus, reason: str | None = None) -> None:
        finished = retry_db(
            lambda: store.finish_job(self.database, self.job_id, worker_id, status, reason),
            f"job {self.job_id}: finish",
        )
        if not finished:
            raise LostOwnership(self.job_id)

    def _finish_quietly(self, worker_id: str, status: JobStatus, reason: str) -> None:
        try:
            store.finish_job(self.database, self.job_id, worker_id, status, reason)
        except Exception:  # the runner will see the process end and settle the job
            log.exception("job %s: could not record its failure", self.job_id)


def divergence_reason(stop_reason: str, epoch: int) -> str:
    what = "loss" if stop_reason == NON_FINITE_LOSS else "weights"
    return (
        f"training diverged: the {what} became NaN or infinite in epoch {epoch + 1} "
        f"({stop_reason}); lower the learning rate (optimizer.lr) or set optimizer.clip_norm"
    )


def failure_reason(exc: BaseException) -> str:
    """A reason a client can act on: the field at fault for spec and data errors."""
    if isinstance(exc, SpecError):
        return f"invalid spec: {exc.message}"
    if isinstance(exc, DataError):
        return f"the data does not fit the model: {exc.message}"
    if isinstance(exc, DatasetUnavailableError):
        return exc.message  # one line with the fix; the per-file sha256 list would swamp it
    if isinstance(exc, ServiceError):
        extra = [d.message for d in exc.details if d.message not in exc.message]
        return "; ".join([exc.message, *extra])
    if isinstance(exc, NNCoreError):
        return str(exc)
    if isinstance(exc, MemoryError):
        return "the training process ran out of memory"
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        return "the training process was interrupted"
    return f"internal error: {type(exc).__name__}: {exc}"
