"""The RQ job function. A message carries only a database job id; this is what runs it.

Kept apart from service/jobs/rq_worker.py so the import path RQ stores in each message
(`service.jobs.rq_tasks.train`) stays stable whatever the worker's internals become.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service.jobs.outcome import JobOutcome


def train(job_id: str) -> JobOutcome:
    """Claim and run one training job; a no-op when the job is no longer queued."""
    from service.jobs.rq_worker import current_context, run_job

    return run_job(current_context(), job_id)
