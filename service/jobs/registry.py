"""Registering a succeeded job's model: the next version of its model, and the job succeeded.

All in the caller's one transaction, so a job is succeeded if and only if its version exists
(numbering: service/registry/writes.py; the caller retries on IntegrityError).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.jobs import store
from service.models import JobStatus, ModelVersion, TrainingJob, utcnow
from service.registry.writes import add_version


class LostOwnership(Exception):
    """The job is no longer this worker's (requeued, timed out or finished elsewhere)."""


def register_version(
    session: Session,
    *,
    job_id: str,
    worker_id: str,
    owner: str,
    model_name: str,
    spec: dict[str, Any],
    metrics: dict[str, Any],
    weights: bytes,
) -> ModelVersion:
    """Create the next version of `model_name` and mark the job succeeded pointing at it."""
    owns = session.scalar(select(TrainingJob.id).where(store.fenced(job_id, worker_id)))
    if owns is None:
        raise LostOwnership(job_id)
    version = add_version(
        session,
        owner=owner,
        name=model_name,
        spec=spec,
        metrics=metrics,
        weights=weights,
        job_id=job_id,
    )
    result = session.execute(
        update(TrainingJob)
        .where(store.fenced(job_id, worker_id))
        .values(
            status=JobStatus.SUCCEEDED,
            model_version_id=version.id,
            finished_at=utcnow(),
            eta_seconds=0.0,
            failure_reason=None,
        )
    )
    if not getattr(result, "rowcount", 0):
        raise LostOwnership(job_id)
    return version
