"""Retention of batch-prediction result files: expiry, deletion and the periodic cleanup pass.

A batch's files live in settings.data_dir/batch-predictions/ and are named after its job:
`<job id>.<fmt>` once written, `<job id>.<fmt>.partial[.<array>.npy]` while being written.
A succeeded batch's result is kept NNS_BATCH_RESULT_TTL_HOURS after it finished (0 = for
ever); then the cleanup pass removes it and marks the row (`expired_at` in the job's stored
result), so the download answers 410 Gone even if the TTL is raised later.

The pass starts from the directory, not the database: with no files there it costs one
directory listing, and it only queries the jobs whose files it found. It also removes what no
live job owns: the files of a job that is gone (deleted) and the partial files of a batch that
failed or was cancelled (a process killed mid-write cannot clean up after itself).
Both runners call `RetentionPass.maybe_run` from their periodic step (embedded tick, RQ sweep).
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.jobs.batch_predict import RESULT_DIR, RESULT_KEY, stored_result
from service.jobs.retry import log_step_failure
from service.models import TERMINAL_JOB_STATUSES, JobStatus, TrainingJob, utcnow

log = logging.getLogger(__name__)

JOB_PREFIX = "job_"  # TrainingJob ids (service.models.new_id("job"))


def result_dir(settings: Settings) -> Path:
    return settings.data_dir / RESULT_DIR


def job_files(settings: Settings, job_id: str) -> list[Path]:
    """Every file of one batch: the result and any partial files of an unfinished write."""
    folder = result_dir(settings)
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.split(".", 1)[0] == job_id]


def remove_files(settings: Settings, job_id: str) -> int:
    """Delete the batch's files; returns how many there were."""
    files = job_files(settings, job_id)
    for file in files:
        file.unlink(missing_ok=True)
    return len(files)


def expires_at(settings: Settings, job: TrainingJob) -> datetime | None:
    """When a succeeded batch's result expires (None: not succeeded, or kept for ever)."""
    marked = expired_at(job)
    if marked is not None:
        return marked
    if job.status != JobStatus.SUCCEEDED or job.finished_at is None:
        return None
    if settings.batch_result_ttl_hours <= 0:
        return None
    return job.finished_at + timedelta(hours=settings.batch_result_ttl_hours)


def expired_at(job: TrainingJob) -> datetime | None:
    """When the cleanup pass removed the result, as marked on the row."""
    stamp = (stored_result(job) or {}).get("expired_at")
    return datetime.fromisoformat(stamp) if isinstance(stamp, str) else None


def is_expired(settings: Settings, job: TrainingJob, now: datetime | None = None) -> bool:
    """Removed by the pass (whatever the TTL is now), or past its time at `now`."""
    if expired_at(job) is not None:
        return True
    when = expires_at(settings, job)
    return when is not None and when <= (now or utcnow())


def _files_by_job(settings: Settings) -> dict[str, list[Path]]:
    folder = result_dir(settings)
    found: dict[str, list[Path]] = defaultdict(list)
    if folder.is_dir():
        for path in folder.iterdir():
            if path.is_file() and path.name.startswith(JOB_PREFIX):  # only ever ours
                found[path.name.split(".", 1)[0]].append(path)
    return found


def _unlink(path: Path) -> int:
    """1 if this call removed the file (a finishing run may have renamed it meanwhile)."""
    try:
        path.unlink()
    except FileNotFoundError:
        return 0
    return 1


def _is_final(job: TrainingJob, path: Path) -> bool:
    return path.name == f"{job.id}.{(stored_result(job) or {}).get('format', '')}"


def expire_results(database: Database, settings: Settings, now: datetime | None = None) -> int:
    """One cleanup pass (see the module docstring); returns the number of files removed."""
    found = _files_by_job(settings)
    if not found:
        return 0
    now = now or utcnow()
    with database.session() as session:
        jobs = {
            job.id: job
            for job in session.scalars(select(TrainingJob).where(TrainingJob.id.in_(list(found))))
        }
        session.expunge_all()
    removed, expired = 0, []
    for job_id, files in found.items():
        job = jobs.get(job_id)
        if job is not None and job.status not in TERMINAL_JOB_STATUSES:
            continue  # being written (or requeued): its own run rewrites or removes them
        keep = job is not None and job.status == JobStatus.SUCCEEDED
        if keep and job is not None and is_expired(settings, job, now):
            keep = False
            expired.append(job_id)
        for path in files:
            if not (keep and job is not None and _is_final(job, path)):
                removed += _unlink(path)
    for job_id in expired:
        _mark_expired(database, job_id)
    if removed:
        log.info("batch results: removed %d file(s), %d expired", removed, len(expired))
    return removed


def _mark_expired(database: Database, job_id: str) -> None:
    with database.write_session() as session:
        job = session.get(TrainingJob, job_id)
        if job is None or expired_at(job) is not None:
            return
        result = {**(stored_result(job) or {}), "expired_at": utcnow().isoformat()}
        job.metrics = {**(job.metrics or {}), RESULT_KEY: result}


class RetentionPass:
    """Runs `expire_results` at most every NNS_BATCH_CLEANUP_SECONDS from a periodic step."""

    def __init__(self, database: Database, settings: Settings) -> None:
        self.database, self.settings = database, settings
        self._last = float("-inf")

    def maybe_run(self) -> None:
        if time.monotonic() - self._last < self.settings.batch_cleanup_seconds:
            return
        self._last = time.monotonic()
        try:
            expire_results(self.database, self.settings)
        except Exception as exc:  # the files stay; the next pass tries again
            log_step_failure("batch result cleanup failed", exc)
