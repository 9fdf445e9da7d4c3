"""Driving a sweep: `advance(sweep_id)`, one short idempotent transaction.

Nothing waits for a sweep's trials. Whoever may have changed what a sweep should do next
calls advance: the API after a submit or cancel, the embedded runner on every tick, an RQ
worker when a trial job ends and every sweep (service/jobs/rq_queue.py). Each call locks the
sweep row (FOR UPDATE on Postgres, BEGIN IMMEDIATE on SQLite), so calls from several machines
take turns, and then:

1. settles trials whose job ended without the trial hooks (failed, cancelled, deleted);
2. on a cancelled sweep, cancels the live trial jobs, and ends the sweep once none is live;
3. when every one of n_trials trials has ended, registers the best trial's weights as the
   next version of model_name (with the importances) and ends the sweep;
4. else asks Optuna for as many new trials as free slots allow (max_parallel, the owner's
   job limit, n_trials) and inserts each trial row with its queued job.

The unique (sweep_id, number) constraint makes a trial impossible to create twice, and a
trial row and its job are inserted in the same transaction, so none is ever lost.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from nn_core.errors import SpecError
from nn_core.spec import normalize_spec
from service.config import Settings
from service.db import Database
from service.jobs import store
from service.jobs.retry import retry_db
from service.jobs.submit import active_jobs
from service.models import (
    TERMINAL_SWEEP_STATUSES,
    JobStatus,
    Sweep,
    SweepStatus,
    SweepTrial,
    TrainingJob,
    TrialState,
    utcnow,
)
from service.registry.writes import add_version
from service.sweeps import records, study
from service.sweeps.space import apply_params
from service.webhooks import sweep_events

log = logging.getLogger(__name__)

ACTIVE_SWEEP_STATUSES = (SweepStatus.QUEUED, SweepStatus.RUNNING)


def advance(database: Database, settings: Settings, sweep_id: str) -> list[str]:
    """Take the sweep's next step(s); returns the ids of the trial jobs it queued."""
    return retry_db(lambda: _advance(database, settings, sweep_id), f"sweep {sweep_id}: advance")


def advance_active(database: Database, settings: Settings) -> list[str]:
    """advance() every unfinished sweep; a failure of one never stops the others."""
    with database.session() as session:
        ids = list(session.scalars(select(Sweep.id).where(Sweep.status.in_(ACTIVE_SWEEP_STATUSES))))
    created: list[str] = []
    for sweep_id in ids:
        try:
            created += advance(database, settings, sweep_id)
        except Exception:
            log.exception("sweep %s: could not advance (the next tick tries again)", sweep_id)
    return created


def advance_for_job(database: Database, settings: Settings, job_id: str) -> list[str]:
    """advance() the sweep of a trial job that just ended (nothing for other jobs)."""
    with database.session() as session:
        sweep_id = session.scalar(select(SweepTrial.sweep_id).where(SweepTrial.job_id == job_id))
    return advance(database, settings, sweep_id) if sweep_id else []


def request_cancel(database: Database, settings: Settings, sweep_id: str) -> None:
    """No new trials; live trial jobs are cancelled (by the advance this ends with)."""
    with database.write_session() as session:
        session.execute(
            update(Sweep)
            .where(Sweep.id == sweep_id, Sweep.status.in_(ACTIVE_SWEEP_STATUSES))
            .values(cancel_requested=True)
        )
    advance(database, settings, sweep_id)


# ---------------------------------------------------------------------------- one step


def _advance(database: Database, settings: Settings, sweep_id: str) -> list[str]:
    with database.write_session() as session:
        sweep = session.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update())
        if sweep is None or sweep.status in TERMINAL_SWEEP_STATUSES:
            return []
        rows = records.trial_rows(session, sweep.id)
        jobs = _jobs(session, rows)
        _settle(rows, jobs)
        live = [row for row in rows if row.state == TrialState.RUNNING]
        if sweep.cancel_requested:
            _cancel(session, sweep, live, jobs)
            return []
        started = any(row.state != TrialState.RUNNING for row in rows) or any(
            job.status != JobStatus.QUEUED for job in jobs.values()
        )
        if sweep.status == SweepStatus.QUEUED and started:
            sweep.status = SweepStatus.RUNNING
        if len(rows) >= sweep.n_trials:
            if not live:
                _finish(session, sweep, rows)
            return []
        free = min(sweep.max_parallel - len(live), sweep.n_trials - len(rows))
        if free > 0:
            free = min(free, _key_slots(session, database, settings, sweep.owner))
        if free <= 0:
            return []
        return _create_trials(session, settings, sweep, rows, free)


def _jobs(session: Session, rows: list[SweepTrial]) -> dict[str, TrainingJob]:
    ids = [row.job_id for row in rows if row.job_id and row.state == TrialState.RUNNING]
    if not ids:
        return {}
    return {
        job.id: job for job in session.scalars(select(TrainingJob).where(TrainingJob.id.in_(ids)))
    }


def _settle(rows: list[SweepTrial], jobs: dict[str, TrainingJob]) -> None:
    """Trials whose job ended without saying how the trial did (see service/sweeps/trials.py
    for the endings that do: complete and pruned)."""
    now = utcnow()
    for row in rows:
        if row.state != TrialState.RUNNING:
            continue
        job = jobs.get(row.job_id) if row.job_id else None
        if job is None:
            row.state, row.failure_reason = TrialState.FAILED, "its training job was deleted"
        elif job.status == JobStatus.FAILED:
            row.state, row.failure_reason = TrialState.FAILED, job.failure_reason
        elif job.status == JobStatus.CANCELLED:
            row.state, row.failure_reason = TrialState.CANCELLED, job.failure_reason
        elif job.status == JobStatus.SUCCEEDED:  # only if trained outside the trial hooks
            row.state, row.failure_reason = TrialState.FAILED, "ended without an objective value"
        else:
            continue
        row.finished_at = now


def _cancel(
    session: Session, sweep: Sweep, live: list[SweepTrial], jobs: dict[str, TrainingJob]
) -> None:
    now = utcnow()
    still_live = 0
    for row in live:
        job = jobs[row.job_id] if row.job_id else None
        if job is None:
            continue
        store.request_cancel(session, job)
        if job.status == JobStatus.CANCELLED:
            row.state, row.finished_at = TrialState.CANCELLED, now
            row.failure_reason = "the sweep was cancelled"
        else:
            still_live += 1
    if still_live == 0:
        sweep.status, sweep.finished_at = SweepStatus.CANCELLED, now
        session.execute(
            update(SweepTrial).where(SweepTrial.sweep_id == sweep.id).values(weights=None)
        )
        sweep_events.finished(session, sweep)
        log.info("sweep %s cancelled", sweep.id)


def _key_slots(session: Session, database: Database, settings: Settings, owner: str) -> int:
    """How many more jobs the owner may have active (the per-key limit applies to trials)."""
    return settings.max_jobs_per_key - active_jobs(session, database, owner)


def _create_trials(
    session: Session, settings: Settings, sweep: Sweep, rows: list[SweepTrial], count: int
) -> list[str]:
    config = records.config_of(sweep)
    known = records.records(session, sweep, rows)
    created: list[str] = []
    for _ in range(count):
        number = len(known)
        asked = study.ask(config, known, sweep.initial_trials)
        trial = SweepTrial(
            sweep_id=sweep.id,
            number=number,
            state=TrialState.RUNNING,
            params=asked.params,
            system_attrs=asked.system_attrs or None,
        )
        try:
            spec = normalize_spec(
                apply_params(sweep.spec, asked.params), max_params=settings.max_model_params
            )
        except SpecError as exc:
            trial.state, trial.finished_at = TrialState.FAILED, utcnow()
            trial.failure_reason = f"invalid spec: {exc.message}"
            spec = None
        if spec is not None:
            job = _trial_job(sweep, spec, number, asked.params)
            session.add(job)
            session.flush()
            trial.job_id = job.id
            created.append(job.id)
        session.add(trial)
        session.flush()  # the unique (sweep_id, number) check happens here
        known.append(
            study.TrialRecord(
                number=number,
                state=trial.state,
                params=asked.params,
                system_attrs=asked.system_attrs,
            )
        )
    if created:
        log.info("sweep %s: queued trial job(s) %s", sweep.id, ", ".join(created))
    return created


def _trial_job(
    sweep: Sweep, spec: dict[str, Any], number: int, params: dict[str, Any]
) -> TrainingJob:
    options = sweep.job_options or {}
    hyper = {
        **options.get("hyperparameters", {}),
        "sweep_id": sweep.id,
        "trial": number,
        "params": params,
    }
    lineage = options.get("lineage", {})
    return TrainingJob(
        owner=sweep.owner,
        status=JobStatus.QUEUED,
        spec=spec,
        dataset_id=sweep.dataset_id,
        dataset_name=sweep.dataset_name,
        dataset_sha256=lineage.get("dataset_sha256"),
        test_dataset_id=lineage.get("test_dataset_id"),
        test_dataset_name=lineage.get("test_dataset_name"),
        test_sha256=lineage.get("test_sha256"),
        model_name=sweep.model_name,
        hyperparameters=hyper,
        total_epochs=int(spec["training"]["epochs"]),
    )


def _finish(session: Session, sweep: Sweep, rows: list[SweepTrial]) -> None:
    """Every trial has ended: register the best one's model, or fail the sweep."""
    config = records.config_of(sweep)
    known = records.records(session, sweep, rows)
    best = study.best(config, known)
    sweep.importances = study.importances(config, known)
    sweep.finished_at = utcnow()
    row = next((r for r in rows if best is not None and r.number == best.number), None)
    weights = (
        session.scalar(select(SweepTrial.weights).where(SweepTrial.id == row.id))
        if row is not None
        else None
    )
    if row is None or weights is None or row.job_id is None:
        counts = {state: sum(r.state == state for r in rows) for state in TrialState}
        summary = ", ".join(f"{n} {state}" for state, n in counts.items() if n)
        sweep.status = SweepStatus.FAILED
        sweep.failure_reason = f"no trial completed with a finite objective ({summary})"
        log.info("sweep %s failed: %s", sweep.id, sweep.failure_reason)
        sweep_events.finished(session, sweep)
        return
    job = session.get(TrainingJob, row.job_id)
    version = add_version(
        session,
        owner=sweep.owner,
        name=sweep.model_name,
        spec=job.spec if job is not None else apply_params(sweep.spec, row.params),
        metrics=row.test_metrics,
        weights=weights,
        job_id=row.job_id,
    )
    version.sweep_id, version.sweep_params = sweep.id, dict(row.params)
    if job is not None:
        job.model_version_id = version.id
    sweep.model_version_id = version.id
    sweep.best_trial_number = row.number
    sweep.status = SweepStatus.SUCCEEDED
    session.execute(update(SweepTrial).where(SweepTrial.sweep_id == sweep.id).values(weights=None))
    sweep_events.finished(session, sweep)
    log.info("sweep %s succeeded: trial %d is version %d", sweep.id, row.number, version.version)
