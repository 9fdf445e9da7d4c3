"""The job.succeeded event, recorded in the transaction that registers the job's version
(job.failed is recorded by service/jobs/store.py wherever a job fails)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from service.models import TrainingJob
from service.webhooks import events
from service.webhooks.outbox import record


def succeeded(session: Session, job: TrainingJob, model_name: str, version: int) -> None:
    record(
        session,
        job.owner,
        events.JOB_SUCCEEDED,
        {"job_id": job.id, "status": "succeeded", "model_name": model_name, "version": version},
    )
