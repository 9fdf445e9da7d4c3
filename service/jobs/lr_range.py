"""The "lr_range_test" job kind: run nn_core's learning-rate range test instead of training.

It goes through the same submit, runner and claim as a training job; `run_training` hands
such a job here once its data is loaded. The kind and the options live in the job's
hyperparameters (as submitted); the result (curve and suggested rate) is stored in the job's
`metrics` column under "lr_range", written with the `succeeded` status in one fenced
transaction. No model version is registered and no checkpoint kept: a crashed test simply
runs again from the start, which costs a few hundred mini-batches.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from sqlalchemy import update

from nn_core.lr_finder import CANCELLED, LRRangeResult, lr_range_test
from nn_core.spec import build_model
from service.config import Settings
from service.datasets_store import TrainingData
from service.db import Database
from service.jobs import store
from service.jobs.heartbeat import Heartbeat
from service.jobs.outcome import JobOutcome
from service.jobs.registry import LostOwnership
from service.jobs.retry import retry_db
from service.models import JobStatus, TrainingJob, utcnow

KIND = "lr_range_test"
RESULT_KEY = "lr_range"

log = logging.getLogger(__name__)


def is_range_test(job: TrainingJob) -> bool:
    return (job.hyperparameters or {}).get("kind") == KIND


def stored_result(job: TrainingJob) -> dict[str, Any] | None:
    """The result a succeeded range test stored on its row (None before that)."""
    metrics = job.metrics
    if not is_range_test(job) or not isinstance(metrics, dict):
        return None
    result = metrics.get(RESULT_KEY)
    return result if isinstance(result, dict) else None


def run_range_test(
    database: Database,
    settings: Settings,
    job: TrainingJob,
    worker_id: str,
    data: TrainingData,
    heartbeat: Heartbeat,
) -> JobOutcome:
    """Run the test on the job's spec and training split; settle the job."""
    model = build_model(job.spec, max_params=settings.max_model_params)
    options = dict((job.hyperparameters or {}).get("lr_range") or {})
    result = lr_range_test(
        model, data.X_train, data.y_train, should_stop=heartbeat.should_stop, **options
    )
    if heartbeat.lost.is_set():
        raise LostOwnership(job.id)
    status = JobStatus.CANCELLED if result.stop_reason == CANCELLED else JobStatus.SUCCEEDED
    stored = {RESULT_KEY: _storable(result)} if status == JobStatus.SUCCEEDED else None
    settled = retry_db(
        lambda: _settle(database, job.id, worker_id, status, stored),
        f"job {job.id}: settle the range test",
    )
    if not settled:
        raise LostOwnership(job.id)
    log.info("job %s: lr range test %s, suggested lr %s", job.id, status, result.suggested_lr)
    return JobOutcome.SUCCEEDED if status == JobStatus.SUCCEEDED else JobOutcome.CANCELLED


def _storable(result: LRRangeResult) -> dict[str, Any]:
    """The result as JSON, without points a blow-up made non-finite (JSON has no inf)."""
    record = result.to_dict()
    record["points"] = [p for p in record["points"] if all(math.isfinite(v) for v in p.values())]
    return record


def _settle(
    database: Database,
    job_id: str,
    worker_id: str,
    status: JobStatus,
    stored: dict[str, Any] | None,
) -> bool:
    with database.write_session() as session:
        if stored is not None:
            result = session.execute(
                update(TrainingJob)
                .where(store.fenced(job_id, worker_id))
                .values(metrics=stored, epoch=1, heartbeat_at=utcnow())
            )
            if not getattr(result, "rowcount", 0):
                return False
        return store.finish(session, job_id, worker_id, status)
