"""Job state transitions in the database, shared by the API, the runners and run_training.

The row is the truth and `worker_id` is the fencing token: every claim writes a new, unique
worker id, and a training process only writes while the row still carries its id and is
running or cancelling. So a process that lost its job (requeued after its lease expired,
timed out, or finished by someone else) can never add metrics or a model version to it.
Each function is one short write transaction (BEGIN IMMEDIATE on SQLite).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, delete, func, select, update
from sqlalchemy.orm import Session

from service.db import Database
from service.models import Checkpoint, JobStatus, TrainingJob, utcnow
from service.webhooks import events, outbox

LIVE_STATUSES = (JobStatus.RUNNING, JobStatus.CANCELLING)
HOSTNAME = socket.gethostname()


def new_runner_id() -> str:
    """Identity of one runner incarnation: host and pid let a restarted server on the same
    host see at once that the previous process is gone, without waiting for the lease."""
    return f"{HOSTNAME}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def new_worker_id(runner_id: str) -> str:
    """A unique fencing token for one claim of one job by this runner."""
    return f"{runner_id}:{uuid.uuid4().hex[:8]}"


def owner_process_is_dead(worker_id: str | None) -> bool:
    """True when worker_id names a process on this host that no longer exists."""
    if not worker_id:
        return False
    parts = worker_id.split(":")
    if len(parts) < 2 or parts[0] != HOSTNAME or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by another user
        return False
    return False


def fenced(job_id: str, worker_id: str) -> ColumnElement[bool]:
    """A WHERE clause that holds only while `worker_id` still owns the live job."""
    return and_(
        TrainingJob.id == job_id,
        TrainingJob.worker_id == worker_id,
        TrainingJob.status.in_(LIVE_STATUSES),
    )


@dataclass(frozen=True)
class Claimed:
    job_id: str
    worker_id: str
    attempt: int


def claim_jobs(database: Database, runner_id: str, limit: int, max_running: int) -> list[Claimed]:
    """Move up to `limit` queued jobs (oldest first) to running for this runner.

    `max_running` caps live jobs in the whole database. On Postgres, SKIP LOCKED lets several
    runners claim side by side; on SQLite BEGIN IMMEDIATE serializes them.
    """
    if limit <= 0:
        return []
    with database.write_session() as session:
        live = session.scalar(
            select(func.count())
            .select_from(TrainingJob)
            .where(TrainingJob.status.in_(LIVE_STATUSES))
        )
        limit = min(limit, max_running - (live or 0))
        if limit <= 0:
            return []
        jobs = session.scalars(
            select(TrainingJob)
            .where(TrainingJob.status == JobStatus.QUEUED)
            .order_by(TrainingJob.created_at, TrainingJob.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        now = utcnow()
        claimed = []
        for job in jobs:
            job.status = JobStatus.RUNNING
            job.attempts += 1
            job.worker_id = new_worker_id(runner_id)
            job.heartbeat_at = now
            job.started_at = job.started_at or now
            job.failure_reason = None
            claimed.append(Claimed(job.id, job.worker_id, job.attempts))
        return claimed


def claim_job(database: Database, job_id: str, worker_id: str) -> Claimed | None:
    """Claim one given queued job (for queue-based runners that receive a job id).

    None when the job is not queued (a duplicate or stale queue message): nothing to do.
    """
    now = utcnow()
    with database.write_session() as session:
        result = session.execute(
            update(TrainingJob)
            .where(TrainingJob.id == job_id, TrainingJob.status == JobStatus.QUEUED)
            .values(
                status=JobStatus.RUNNING,
                attempts=TrainingJob.attempts + 1,
                worker_id=worker_id,
                heartbeat_at=now,
                started_at=func.coalesce(TrainingJob.started_at, now),
                failure_reason=None,
            )
        )
        if not getattr(result, "rowcount", 0):
            return None
        attempts = session.scalar(select(TrainingJob.attempts).where(TrainingJob.id == job_id))
        return Claimed(job_id, worker_id, attempts or 1)


def heartbeat(database: Database, job_id: str, worker_id: str) -> tuple[bool, bool]:
    """Record that the worker is alive: (still owns the job, cancel requested)."""
    with database.write_session() as session:
        result = session.execute(
            update(TrainingJob).where(fenced(job_id, worker_id)).values(heartbeat_at=utcnow())
        )
        if not getattr(result, "rowcount", 0):
            return False, False
        cancel = session.scalar(
            select(TrainingJob.cancel_requested).where(TrainingJob.id == job_id)
        )
        return True, bool(cancel)


def finish(
    session: Session,
    job_id: str,
    worker_id: str | None,
    status: JobStatus,
    reason: str | None = None,
) -> bool:
    """Move a live job to a terminal status (fenced when worker_id is given)."""
    where = (
        fenced(job_id, worker_id)
        if worker_id is not None
        else and_(TrainingJob.id == job_id, TrainingJob.status.in_(LIVE_STATUSES))
    )
    result = session.execute(
        update(TrainingJob)
        .where(where)
        .values(status=status, failure_reason=reason, finished_at=utcnow(), eta_seconds=None)
    )
    if not getattr(result, "rowcount", 0):
        return False
    # A finished job never resumes: its checkpoint is dead weight.
    session.execute(delete(Checkpoint).where(Checkpoint.job_id == job_id))
    if status == JobStatus.FAILED:
        row = session.execute(
            select(TrainingJob.owner, TrainingJob.model_name).where(TrainingJob.id == job_id)
        ).one()
        _record_failure(session, job_id, row.owner, row.model_name, reason)
    return True


def _record_failure(
    session: Session, job_id: str, owner: str, model_name: str, reason: str | None
) -> None:
    """The job.failed webhook event, in the transaction that fails the job (every way a job
    can fail goes through finish() or _release())."""
    data = {
        "job_id": job_id,
        "status": "failed",
        "model_name": model_name,
        "failure_reason": reason,
    }
    outbox.record(session, owner, events.JOB_FAILED, data)


def finish_job(
    database: Database,
    job_id: str,
    worker_id: str | None,
    status: JobStatus,
    reason: str | None = None,
) -> bool:
    with database.write_session() as session:
        return finish(session, job_id, worker_id, status, reason)


def release(
    database: Database,
    job_id: str,
    worker_id: str,
    *,
    count_attempt: bool,
    max_attempts: int | None = None,
    why: str = "the training process stopped",
) -> str | None:
    """A live job whose process is gone: requeue it to resume from its checkpoint.

    A cancelling job becomes cancelled instead, and past `max_attempts` the job fails with
    `why` as its reason. `count_attempt=False` (graceful shutdown) gives the attempt back, so
    deploys do not use up a job's retries. Returns the new status (None: not ours any more).
    """
    with database.write_session() as session:
        job = session.scalar(select(TrainingJob).where(fenced(job_id, worker_id)))
        if job is None:
            return None
        return _release(
            session, job, count_attempt=count_attempt, max_attempts=max_attempts, why=why
        )


def _release(
    session: Session,
    job: TrainingJob,
    *,
    count_attempt: bool,
    max_attempts: int | None,
    why: str,
) -> str:
    now = utcnow()
    if job.status == JobStatus.CANCELLING or job.cancel_requested:
        job.status, job.finished_at, job.eta_seconds = JobStatus.CANCELLED, now, None
        session.execute(delete(Checkpoint).where(Checkpoint.job_id == job.id))
        return job.status
    if max_attempts is not None and job.attempts >= max_attempts:
        job.status, job.finished_at, job.eta_seconds = JobStatus.FAILED, now, None
        job.failure_reason = f"{why} on attempt {job.attempts} of {max_attempts}; giving up"
        session.execute(delete(Checkpoint).where(Checkpoint.job_id == job.id))
        _record_failure(session, job.id, job.owner, job.model_name, job.failure_reason)
        return job.status
    job.status = JobStatus.QUEUED
    job.worker_id = None
    job.heartbeat_at = None
    job.eta_seconds = None
    if not count_attempt:
        job.attempts = max(0, job.attempts - 1)
    return job.status


def recover_abandoned(
    database: Database,
    lease: timedelta,
    max_attempts: int,
    exclude: set[str],
    now: datetime | None = None,
) -> list[tuple[str, str]]:
    """Requeue (or fail, past max_attempts) live jobs whose worker is gone.

    Gone means: the heartbeat is older than the lease, or the worker id names a dead process
    on this host (a server killed and restarted). `exclude` holds this runner's own jobs.
    Returns (job id, new status) pairs.
    """
    cutoff = (now or utcnow()) - lease
    with database.write_session() as session:
        jobs = session.scalars(
            select(TrainingJob)
            .where(TrainingJob.status.in_(LIVE_STATUSES))
            .with_for_update(skip_locked=True)
        ).all()
        changed = []
        for job in jobs:
            if job.id in exclude:
                continue
            stale = job.heartbeat_at is None or job.heartbeat_at < cutoff
            if stale or owner_process_is_dead(job.worker_id):
                status = _release(
                    session,
                    job,
                    count_attempt=True,
                    max_attempts=max_attempts,
                    why="the training process stopped responding",
                )
                changed.append((job.id, status))
        return changed


def request_cancel(session: Session, job: TrainingJob) -> None:
    """Cancel: a queued job at once, a live one cooperatively; terminal jobs stay as they are."""
    if job.status == JobStatus.QUEUED:
        job.status, job.cancel_requested, job.finished_at = JobStatus.CANCELLED, True, utcnow()
    elif job.status == JobStatus.RUNNING:
        job.status, job.cancel_requested = JobStatus.CANCELLING, True
