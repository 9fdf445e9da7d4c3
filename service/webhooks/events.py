"""The event names a webhook may subscribe to (stable: receivers switch on them)."""

from __future__ import annotations

from typing import Literal

JOB_SUCCEEDED = "job.succeeded"
JOB_FAILED = "job.failed"
SWEEP_FINISHED = "sweep.finished"
ALIAS_MOVED = "alias.moved"
#: A batch prediction succeeded (service/jobs/batch_predict.py); data names its result_url.
BATCH_PREDICTION_FINISHED = "batch_prediction.finished"

EventName = Literal[
    "job.succeeded", "job.failed", "sweep.finished", "alias.moved", "batch_prediction.finished"
]
