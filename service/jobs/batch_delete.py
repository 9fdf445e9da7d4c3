"""Deleting a batch prediction: its job row (with its metric points) and its files.

Only a finished batch (succeeded, failed or cancelled) can be deleted; a queued or running one
answers 409 naming the job's cancel link, because a process may be writing its file right now
and deleting under it would leave the row's story and the disk disagreeing. The row goes
first, in its own transaction; the files after it commits. Should the process die in between,
the cleanup pass (service/jobs/batch_retention.py) removes files whose job is gone.
"""

from __future__ import annotations

from sqlalchemy import delete

from service.config import Settings
from service.db import Database
from service.errors import Conflict
from service.jobs import batch_retention, views
from service.jobs.batch_submit import owned_batch
from service.models import (
    TERMINAL_JOB_STATUSES,
    Checkpoint,
    JobDiagnostics,
    MetricPoint,
    TrainingJob,
)
from service.schemas.errors import ErrorDetail


def delete_batch(database: Database, settings: Settings, owner: str, batch_id: str) -> None:
    """Delete the owner's finished batch and its files (404 for anyone else's, 409 if live)."""
    with database.write_session() as session:
        job = owned_batch(session, owner, batch_id)
        if job.status not in TERMINAL_JOB_STATUSES:
            cancel = f"{views.JOBS_PATH}/{job.id}/cancel"
            raise Conflict(
                f"batch {batch_id!r} is {job.status}; cancel it (POST {cancel}) and delete it "
                "once it has stopped",
                details=[ErrorDetail(field="batch_id", message=f"is {job.status}")],
            )
        for table in (MetricPoint, JobDiagnostics, Checkpoint):
            session.execute(delete(table).where(table.job_id == job.id))
        session.execute(delete(TrainingJob).where(TrainingJob.id == job.id))
    batch_retention.remove_files(settings, batch_id)
