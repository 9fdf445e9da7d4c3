"""A trial job's side of a sweep, called from run_training (service/jobs/run.py).

- after each epoch: should_prune() rebuilds the study and asks the sweep's pruner about
  this trial, given its objective per epoch so far (its metric points);
- pruned: the job ends `cancelled` with the reason, the trial `pruned`, in one transaction;
- trained to the end: complete() marks the job succeeded (no version: the sweep registers
  the best trial's weights when it ends) and the trial complete with its objective; only
  the best complete trial so far keeps its weights.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.db import Database
from service.jobs import store
from service.jobs.registry import LostOwnership
from service.models import (
    JobStatus,
    MetricPoint,
    Sweep,
    SweepTrial,
    TrainingJob,
    TrialState,
    utcnow,
)
from service.sweeps import records, study

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialHook:
    """The sweep trial a job runs, if it runs one."""

    database: Database
    job_id: str
    sweep_id: str
    number: int
    pruner: str
    metric: str

    @classmethod
    def for_job(cls, database: Database, job_id: str) -> TrialHook | None:
        with database.session() as session:
            row = session.execute(
                select(SweepTrial.sweep_id, SweepTrial.number, Sweep.pruner, Sweep.objective_metric)
                .join(Sweep, Sweep.id == SweepTrial.sweep_id)
                .where(SweepTrial.job_id == job_id)
            ).first()
        if row is None:
            return None
        pruner = row.pruner.get("name", "none") if isinstance(row.pruner, dict) else "none"
        return cls(database, job_id, row.sweep_id, row.number, pruner, row.objective_metric)

    def should_prune(self) -> bool:
        """Whether the pruner stops this trial now (after the epoch just written)."""
        if self.pruner == "none":
            return False
        with self.database.session() as session:
            sweep = session.get(Sweep, self.sweep_id)
            if sweep is None:
                return False
            rows = records.trial_rows(session, self.sweep_id)
            known = records.records(session, sweep, rows)
            config = records.config_of(sweep)
        mine = next((t for t in known if t.number == self.number), None)
        if mine is None or mine.state != TrialState.RUNNING or not mine.intermediate:
            return False
        decision = study.should_prune(config, known, self.number)
        if decision.system_attrs != mine.system_attrs:
            with self.database.write_session() as session:
                session.execute(
                    update(SweepTrial)
                    .where(SweepTrial.sweep_id == self.sweep_id, SweepTrial.number == self.number)
                    .values(system_attrs=decision.system_attrs)
                )
        return decision.prune

    def finish_pruned(self, worker_id: str, epoch: int) -> bool:
        """End the job as cancelled and the trial as pruned; False when not ours any more."""
        reason = f"pruned by the sweep's {self.pruner} pruner after epoch {epoch}"
        with self.database.write_session() as session:
            if not store.finish(session, self.job_id, worker_id, JobStatus.CANCELLED, reason):
                return False
            session.execute(
                update(SweepTrial)
                .where(SweepTrial.job_id == self.job_id)
                .values(state=TrialState.PRUNED, failure_reason=reason, finished_at=utcnow())
            )
            return True

    def complete(
        self, session: Session, worker_id: str, test_metrics: dict[str, Any], weights: bytes
    ) -> None:
        """In the caller's transaction: the job succeeded, the trial complete with its value."""
        sweep = session.scalar(select(Sweep).where(Sweep.id == self.sweep_id).with_for_update())
        result = session.execute(
            update(TrainingJob)
            .where(store.fenced(self.job_id, worker_id))
            .values(
                status=JobStatus.SUCCEEDED,
                finished_at=utcnow(),
                eta_seconds=0.0,
                failure_reason=None,
            )
        )
        if not getattr(result, "rowcount", 0):
            raise LostOwnership(self.job_id)
        trial = session.scalar(select(SweepTrial).where(SweepTrial.job_id == self.job_id))
        if trial is None or sweep is None:
            return
        last = session.scalar(
            select(MetricPoint.metrics)
            .where(MetricPoint.job_id == self.job_id)
            .order_by(MetricPoint.epoch.desc())
            .limit(1)
        )
        value = records.objective_value(last, self.metric)
        trial.finished_at = utcnow()
        if value is None:
            trial.state = TrialState.FAILED
            trial.failure_reason = f"the objective {self.metric!r} was missing or not finite"
            return
        trial.state, trial.value, trial.test_metrics = TrialState.COMPLETE, value, test_metrics
        session.flush()
        config = records.config_of(sweep)
        complete = session.execute(
            select(SweepTrial.number, SweepTrial.value).where(
                SweepTrial.sweep_id == self.sweep_id, SweepTrial.state == TrialState.COMPLETE
            )
        )
        best = study.best(
            config,
            [study.TrialRecord(row.number, TrialState.COMPLETE, {}, row.value) for row in complete],
        )
        if best is not None and best.number == trial.number:
            session.execute(
                update(SweepTrial)
                .where(SweepTrial.sweep_id == self.sweep_id, SweepTrial.id != trial.id)
                .values(weights=None)
            )
            trial.weights = weights
