"""Registering a succeeded job's model: Model row if missing, version max+1, job succeeded.

All in the caller's one transaction, so a job is succeeded if and only if its version exists.
Numbering: the Model row is locked (FOR UPDATE on Postgres; SQLite's BEGIN IMMEDIATE already
serializes writers) before reading the highest version, and the unique (model_id, version)
constraint catches anything else; the caller retries on IntegrityError.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from service.jobs import store
from service.models import JobStatus, Model, ModelVersion, TrainingJob, utcnow


class LostOwnership(Exception):
    """The job is no longer this worker's (requeued, timed out or finished elsewhere)."""


def get_or_create_model(session: Session, owner: str, name: str) -> Model:
    """The owner's model `name`, created if missing, locked for numbering a new version."""
    query = select(Model).where(Model.owner == owner, Model.name == name)
    model = session.scalar(query.with_for_update())
    if model is not None:
        return model
    try:
        with session.begin_nested():  # a concurrent creator wins the unique (owner, name)
            session.add(Model(owner=owner, name=name))
    except IntegrityError:
        pass
    model = session.scalar(query.with_for_update())
    assert model is not None
    return model


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
    model = get_or_create_model(session, owner, model_name)
    latest = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
    )
    version = ModelVersion(
        model_id=model.id,
        version=(latest or 0) + 1,
        spec=spec,
        metrics=metrics,
        weights=weights,
        job_id=job_id,
    )
    session.add(version)
    session.flush()
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
