"""Reading a sweep's study state from the database: its settings and every trial's values."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.models import MetricPoint, Sweep, SweepTrial
from service.sweeps.study import StudyConfig, TrialRecord


def config_of(sweep: Sweep) -> StudyConfig:
    training = sweep.spec.get("training", {}) if isinstance(sweep.spec, dict) else {}
    return StudyConfig(
        sweep_id=sweep.id,
        search_space=sweep.search_space,
        sampler=sweep.sampler,
        pruner=sweep.pruner,
        direction=sweep.direction,
        seed=sweep.seed,
        total_epochs=int(training.get("epochs", 1)),
    )


def objective_value(metrics: Any, metric: str) -> float | None:
    value = metrics.get(metric) if isinstance(metrics, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def intermediate_values(
    session: Session, job_ids: Sequence[str], metric: str
) -> dict[str, dict[int, float]]:
    """Job id -> {epoch: objective} from the jobs' metric points, in one query."""
    result: dict[str, dict[int, float]] = {job_id: {} for job_id in job_ids}
    if not job_ids:
        return result
    rows = session.execute(
        select(MetricPoint.job_id, MetricPoint.epoch, MetricPoint.metrics).where(
            MetricPoint.job_id.in_(list(job_ids))
        )
    )
    for row in rows:
        value = objective_value(row.metrics, metric)
        if value is not None:
            result[row.job_id][row.epoch] = value
    return result


def trial_rows(session: Session, sweep_id: str) -> list[SweepTrial]:
    return list(
        session.scalars(
            select(SweepTrial).where(SweepTrial.sweep_id == sweep_id).order_by(SweepTrial.number)
        )
    )


def records(session: Session, sweep: Sweep, rows: Sequence[SweepTrial]) -> list[TrialRecord]:
    """The trials as the study sees them, with their intermediate values."""
    values = intermediate_values(
        session, [row.job_id for row in rows if row.job_id], sweep.objective_metric
    )
    return [
        TrialRecord(
            number=row.number,
            state=row.state,
            params=dict(row.params or {}),
            value=row.value,
            intermediate=values.get(row.job_id, {}) if row.job_id else {},
            system_attrs=dict(row.system_attrs or {}),
        )
        for row in rows
    ]
