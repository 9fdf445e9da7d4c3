"""How one run of a job ended, as run_training and the runners report it.

A run either leaves the job in a status (its members share JobStatus's values, so an outcome
compares equal to the status it stands for) or does not settle it at all, for one of the
reasons below. Logs and tests compare the values as plain strings.
"""

from __future__ import annotations

from enum import StrEnum

from service.models import JobStatus


class JobOutcome(StrEnum):
    QUEUED = JobStatus.QUEUED.value
    RUNNING = JobStatus.RUNNING.value
    SUCCEEDED = JobStatus.SUCCEEDED.value
    FAILED = JobStatus.FAILED.value
    CANCELLING = JobStatus.CANCELLING.value
    CANCELLED = JobStatus.CANCELLED.value
    #: The job was not (or no longer) this worker's to run; it was left alone.
    NOT_OWNED = "not_owned"
    #: A queue message whose job was not queued (a duplicate or stale message).
    SKIPPED = "skipped"
    #: The worker shut down and could not put the job back in the queue.
    STOPPED = "stopped"
    #: The job's row no longer exists.
    GONE = "gone"
