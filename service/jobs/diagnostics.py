"""Reading a job's stored diagnostics (service/jobs/run.py writes one row per epoch) and
its warnings, for the REST route and the SSE stream. Owner-scoped like every job read."""

from __future__ import annotations

from sqlalchemy import func, select

from service.db import Database
from service.jobs.views import get_owned_job
from service.models import JobDiagnostics
from service.schemas.diagnostics import DiagnosticsEvent, EpochDiagnostics


def to_epoch(row: JobDiagnostics) -> EpochDiagnostics:
    return EpochDiagnostics.model_validate({**(row.record or {}), "epoch": row.epoch})


def diagnostics_page(
    database: Database, owner: str, job_id: str, after_epoch: int, limit: int
) -> tuple[list[EpochDiagnostics], int]:
    """Epochs after `after_epoch`, in order, a page of `limit`; and how many are stored."""
    with database.session() as session:
        get_owned_job(session, owner, job_id)
        where = JobDiagnostics.job_id == job_id
        total = session.scalar(select(func.count()).select_from(JobDiagnostics).where(where))
        rows = session.scalars(
            select(JobDiagnostics)
            .where(where, JobDiagnostics.epoch > after_epoch)
            .order_by(JobDiagnostics.epoch)
            .limit(limit)
        ).all()
        return [to_epoch(r) for r in rows], total or 0


def diagnostics_since(database: Database, job_id: str, after_epoch: int) -> list[DiagnosticsEvent]:
    """SSE events for the epochs after `after_epoch` (the stream checked the owner)."""
    with database.session() as session:
        rows = session.scalars(
            select(JobDiagnostics)
            .where(JobDiagnostics.job_id == job_id, JobDiagnostics.epoch > after_epoch)
            .order_by(JobDiagnostics.epoch)
        ).all()
        return [
            DiagnosticsEvent.model_validate({**to_epoch(r).model_dump(), "job_id": job_id})
            for r in rows
        ]
