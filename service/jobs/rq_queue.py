"""The Redis queue (RQ) side of scale-out: messages that carry a job id, and the sweep.

The database is the source of truth; a message only says "job X may be waiting". Every RQ
job calls `service.jobs.rq_tasks.train(job_id)` with the job id as its only argument, and
that claims the row before running it, so a duplicate or stale message costs one UPDATE.

Messages can be lost (Redis restarted without persistence, FLUSHALL, a worker killed after
taking a message and before claiming its job). So the API and every worker sweep now and
then: requeue live jobs whose worker is gone, then enqueue a message for every queued job
that has none waiting. An RQ job id starts with the database job id, so one LRANGE tells
which jobs already have a message waiting.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

from redis import Redis
from rq import Queue
from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.jobs import store
from service.jobs.retry import retry_db
from service.models import JobStatus, TrainingJob

log = logging.getLogger(__name__)

#: The RQ job function, by name: the API never imports the training code.
TRAIN_FUNCTION = "service.jobs.rq_tasks.train"
#: RQ job ids allow [A-Za-z0-9_-] only; the nonce after the last "-" is hex.
_PREFIX = "nns-"
#: Messages never expire in the queue; a worker bounds run time itself (job_timeout_seconds),
#: so RQ's own timeout is off (-1) and its SIGALRM never interrupts the supervisor.
NO_TIMEOUT = -1
#: Keep a failed RQ job's traceback for a day (the job's own failure is in the database).
FAILURE_TTL_SECONDS = 24 * 3600


def redis_connection(settings: Settings) -> Redis:
    """A client for settings.redis_url (bytes responses, as RQ requires)."""
    return Redis.from_url(settings.redis_url, socket_connect_timeout=5, health_check_interval=30)


def training_queue(settings: Settings, connection: Redis) -> Queue:
    return Queue(settings.rq_queue, connection=connection)


def message_id(job_id: str) -> str:
    """A fresh RQ job id that names the database job (see job_id_of)."""
    return f"{_PREFIX}{job_id}-{uuid.uuid4().hex[:12]}"


def job_id_of(rq_job_id: str) -> str | None:
    """The database job id inside an RQ job id made by message_id (None: not ours)."""
    if not rq_job_id.startswith(_PREFIX):
        return None
    job_id, _, _nonce = rq_job_id[len(_PREFIX) :].rpartition("-")
    return job_id or None


def enqueue(queue: Queue, job_id: str) -> str:
    """Put one message for `job_id` on the queue; returns the RQ job id."""
    rq_job = queue.enqueue(
        TRAIN_FUNCTION,
        job_id,
        job_id=message_id(job_id),
        job_timeout=NO_TIMEOUT,
        result_ttl=0,
        failure_ttl=FAILURE_TTL_SECONDS,
        description=f"train {job_id}",
    )
    return str(rq_job.id)


def waiting_job_ids(queue: Queue) -> set[str]:
    """Database job ids that have a message waiting in the queue."""
    ids = (job_id_of(rq_id) for rq_id in queue.get_job_ids())
    return {job_id for job_id in ids if job_id is not None}


def queued_job_ids(database: Database) -> list[str]:
    """Jobs queued in the database, oldest first."""
    with database.session() as session:
        return list(
            session.scalars(
                select(TrainingJob.id)
                .where(TrainingJob.status == JobStatus.QUEUED)
                .order_by(TrainingJob.created_at, TrainingJob.id)
            )
        )


@dataclass
class SweepResult:
    recovered: list[tuple[str, str]] = field(default_factory=list)
    enqueued: list[str] = field(default_factory=list)


def sweep(
    database: Database, queue: Queue, settings: Settings, exclude: set[str] | None = None
) -> SweepResult:
    """Requeue abandoned live jobs, advance sweeps, then give every queued job without a
    message one.

    `exclude`: jobs the caller itself is running (never abandoned, whatever the clock says).
    Several sweepers at once may enqueue the same job twice; the second message is a no-op.
    """
    result = SweepResult()
    result.recovered = retry_db(
        lambda: store.recover_abandoned(
            database,
            timedelta(seconds=settings.lease_seconds),
            settings.job_max_attempts,
            exclude=exclude or set(),
        ),
        "sweep: recover abandoned jobs",
    )
    for job_id, status in result.recovered:
        log.warning("job %s: its worker is gone; now %s", job_id, status)
    from service.sweeps.driver import advance_active  # imports Optuna: only when sweeping

    advance_active(database, settings)  # queues the next trials of unfinished sweeps
    queued = retry_db(lambda: queued_job_ids(database), "sweep: read queued jobs")
    if not queued:
        return result
    waiting = waiting_job_ids(queue)
    for job_id in queued:
        if job_id not in waiting:
            enqueue(queue, job_id)
            result.enqueued.append(job_id)
    return result


def sweep_seconds(settings: Settings) -> float:
    """How often to sweep: twice per lease, so a dead worker's job waits at most ~1.5 leases."""
    return max(0.5, settings.lease_seconds / 2)
