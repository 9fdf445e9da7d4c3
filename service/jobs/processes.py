"""Supervising training subprocesses: the part shared by the embedded runner and RQ workers.

Each claimed job runs as `python -m service.jobs.child` (a fresh interpreter: nothing
inherited from the supervising process). The supervisor never trains; it watches:

- reap: a finished child has settled its job itself; if it died without doing so, the job
  is requeued to resume from its checkpoint (or failed past job_max_attempts).
- watch: a cancelling job gets cancel_grace_seconds to stop cooperatively, then SIGTERM,
  then SIGKILL; a job past job_timeout_seconds is failed at once (its process sees that
  through its heartbeat and stops; the same escalation follows). A job that is no longer
  ours (requeued after our lease expired) is stopped the same way, and so is a process
  whose heartbeat is older than the lease: frozen, it may hold the database's write lock
  (SQLite) or a row lock (Postgres) that every other writer, the cancel request included,
  would wait on until it is killed.
- shutdown: stop every child and requeue its job without counting the attempt.

Cancel and timeouts reach the process through the database alone, so they work the same
whether the supervisor sits in the API process or in a worker on another machine.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from service.config import Settings
from service.db import Database
from service.jobs import store
from service.models import JobStatus, TrainingJob, utcnow

log = logging.getLogger(__name__)

#: Seconds between SIGTERM and SIGKILL (at least; cancel_grace_seconds when longer).
KILL_AFTER_SECONDS = 2.0
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def child_environment(concurrent_jobs: int) -> dict[str, str]:
    """This process's environment with BLAS threads split between the concurrent jobs.

    OpenBLAS starts one thread per CPU in every process; with several jobs that
    oversubscribes the CPUs and starves the API (measured on 2 CPUs with 2 jobs: p50 of
    GET /healthz 4.7x idle with default threads, 1.1x with one thread per job; see
    benchmarks/api_latency.py). Values the operator set explicitly are kept.
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    threads = str(max(1, cpus // max(1, concurrent_jobs)))
    env = dict(os.environ)
    for name in BLAS_THREAD_VARIABLES:
        env.setdefault(name, threads)
    return env


@dataclass
class TrainingProcess:
    """One child process and why (and since when) it must stop."""

    job_id: str
    worker_id: str
    process: subprocess.Popen[bytes]
    started: float
    #: Why this process must stop (cancel, timeout, lost) and since when (monotonic).
    stop_reason: str | None = None
    stop_since: float | None = None
    terminated_at: float | None = None
    killed: bool = False

    def close(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()


class ProcessSupervisor:
    """The training processes of one runner or worker (see the module docstring).

    Not thread-safe: the caller runs one step at a time.
    """

    def __init__(self, settings: Settings, database: Database, *, concurrent_jobs: int) -> None:
        self.settings = settings
        self.database = database
        self.concurrent_jobs = concurrent_jobs
        self.children: dict[str, TrainingProcess] = {}
        self.lease = timedelta(seconds=settings.lease_seconds)

    def process_ids(self) -> dict[str, int]:
        """Job id -> pid of its training process (for operators and tests)."""
        return {job_id: child.process.pid for job_id, child in list(self.children.items())}

    # ------------------------------------------------------------------ start

    def spawn(self, claimed: store.Claimed) -> bool:
        """Start the training process of a claimed job; on failure the job is failed."""
        payload = {
            "job_id": claimed.job_id,
            "worker_id": claimed.worker_id,
            "settings": self.settings.model_dump(mode="json"),
        }
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "service.jobs.child"],
                stdin=subprocess.PIPE,
                env=child_environment(self.concurrent_jobs),
            )
        except OSError as exc:
            reason = f"could not start the training process: {exc}"
            store.finish_job(
                self.database, claimed.job_id, claimed.worker_id, JobStatus.FAILED, reason
            )
            log.error("job %s: %s", claimed.job_id, reason)
            return False
        try:
            assert process.stdin is not None
            process.stdin.write(json.dumps(payload).encode() + b"\n")
            process.stdin.flush()
        except BrokenPipeError:
            # It died before reading its job (killed, out of memory): a crash like any other,
            # which reap() settles by the attempt rules, not a reason to fail the job for good.
            log.warning("job %s: training process %d died at start", claimed.job_id, process.pid)
        self.children[claimed.job_id] = TrainingProcess(
            claimed.job_id, claimed.worker_id, process, time.monotonic()
        )
        log.info(
            "job %s: attempt %d started in process %d",
            claimed.job_id,
            claimed.attempt,
            process.pid,
        )
        return True

    # ------------------------------------------------------------------ steps

    def reap(self) -> dict[str, str | None]:
        """Forget exited children; requeue (or fail) the jobs they left unsettled.

        Returns job id -> the status the job was moved to (None: it had settled itself).
        """
        reaped: dict[str, str | None] = {}
        for job_id, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            del self.children[job_id]
            child.close()
            status = store.release(
                self.database,
                job_id,
                child.worker_id,
                count_attempt=True,
                max_attempts=self.settings.job_max_attempts,
                why=f"the training process exited with status {code}",
            )
            if status is not None:
                log.warning("job %s: process exited (%s) unsettled; now %s", job_id, code, status)
            reaped[job_id] = status
        return reaped

    def watch(self) -> None:
        """Decide which children must stop, and escalate the ones that do not."""
        if not self.children:
            return
        with self.database.session() as session:
            rows = {
                row.id: row
                for row in session.execute(
                    select(
                        TrainingJob.id,
                        TrainingJob.status,
                        TrainingJob.worker_id,
                        TrainingJob.cancel_requested,
                        TrainingJob.heartbeat_at,
                    ).where(TrainingJob.id.in_(list(self.children)))
                )
            }
        now = time.monotonic()
        for job_id, child in self.children.items():
            row = rows.get(job_id)
            if child.stop_reason is None:
                child.stop_reason = self._why_stop(child, row, now)
                if child.stop_reason is not None:
                    child.stop_since = now
            self._escalate(child, now)

    def _why_stop(self, child: TrainingProcess, row: object, now: float) -> str | None:
        status = getattr(row, "status", None)
        if row is None or getattr(row, "worker_id", None) != child.worker_id:
            return "lost"
        if status not in store.LIVE_STATUSES:
            return "finished"
        if status == JobStatus.CANCELLING or getattr(row, "cancel_requested", False):
            return "cancel"
        timeout = self.settings.job_timeout_seconds
        if now - child.started > timeout:
            reason = f"timed out after {timeout:g} seconds (job_timeout_seconds)"
            store.finish_job(self.database, child.job_id, child.worker_id, JobStatus.FAILED, reason)
            log.warning("job %s %s", child.job_id, reason)
            return "timeout"
        heartbeat_at = getattr(row, "heartbeat_at", None)
        if heartbeat_at is not None and utcnow() - heartbeat_at > self.lease:
            log.warning(
                "job %s: no heartbeat for over %g s", child.job_id, self.settings.lease_seconds
            )
            return "unresponsive"
        return None

    def _escalate(self, child: TrainingProcess, now: float) -> None:
        """Cooperative stop first; SIGTERM after the grace period; SIGKILL after that."""
        if child.stop_since is None or child.killed:
            return
        grace = self.settings.cancel_grace_seconds
        if child.terminated_at is None:
            if now - child.stop_since >= grace:
                log.warning("job %s: %s; sending SIGTERM", child.job_id, child.stop_reason)
                child.process.terminate()
                child.terminated_at = now
        elif now - child.terminated_at >= max(grace, KILL_AFTER_SECONDS):
            log.warning("job %s: still running after SIGTERM; sending SIGKILL", child.job_id)
            child.process.kill()
            child.killed = True

    # ------------------------------------------------------------------ shutdown

    def shutdown(self) -> list[str]:
        """Stop every child and requeue its job without counting the attempt.

        Returns the ids of the jobs put back in the queue.
        """
        children = list(self.children.values())
        self.children.clear()
        for child in children:
            if child.process.poll() is None:
                child.process.terminate()
        deadline = time.monotonic() + max(self.settings.cancel_grace_seconds, 1.0)
        requeued = []
        for child in children:
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()
            child.close()
            try:
                status = store.release(
                    self.database, child.job_id, child.worker_id, count_attempt=False
                )
            except Exception:  # recovery requeues it later (its process is dead)
                log.exception("job %s: could not requeue at shutdown", child.job_id)
                continue
            if status == JobStatus.QUEUED:
                requeued.append(child.job_id)
        return requeued
