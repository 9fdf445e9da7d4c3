"""`nn-service worker`: an RQ worker that runs training jobs, one at a time, on any machine.

Design (see also service/jobs/rq_queue.py):

- RQ's SimpleWorker takes messages from Redis and calls rq_tasks.train(job_id) in this
  process. train claims the job in the database (a stale or duplicate message is a no-op)
  and starts the training in a subprocess, supervised by the same code as the embedded
  runner (service/jobs/processes.py). So cancel and timeouts escalate to SIGTERM/SIGKILL
  here exactly as they do in the API process, and a crash of the training process leaves
  the worker alive to requeue the job. A forking RQ Worker would only add a third process.
- A sweeper thread requeues jobs whose worker died (lease expired, or a dead pid on this
  host) and re-enqueues queued jobs whose message was lost, so neither a killed worker nor
  a flushed or restarted Redis loses a job.
- SIGTERM (or Ctrl+C): the running job's process is stopped and the job requeued without
  using an attempt; another worker resumes it from its last checkpoint. A second signal
  is RQ's cold shutdown; the job is requeued the same way on the way out.
- Redis unreachable: RQ retries its own reads; if its loop gives up, a fresh worker starts
  after a pause. Postgres connection drops are retried (pool_pre_ping + retry_db).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import redis
from rq import Queue, SimpleWorker
from rq.job import Job

from service.config import Settings
from service.db import Database
from service.jobs import rq_queue, store, worker_health
from service.jobs.outcome import JobOutcome
from service.jobs.processes import ProcessSupervisor
from service.jobs.retry import log_step_failure, retry_db
from service.models import TrainingJob
from service.webhooks.delivery import deliver_due

log = logging.getLogger(__name__)

#: Seconds between refreshes of RQ's own bookkeeping (worker, execution, job heartbeats)
#: while a job runs; RQ's monitoring and registry cleanup rely on it.
RQ_HEARTBEAT_SECONDS = 10.0
#: Longest pause before starting a fresh RQ worker after Redis went away.
MAX_RESTART_PAUSE_SECONDS = 30.0


@dataclass
class WorkerContext:
    """Everything the RQ job function needs, built once per worker process."""

    settings: Settings
    database: Database
    connection: redis.Redis
    queue: Queue
    runner_id: str
    stopping: threading.Event = field(default_factory=threading.Event)
    worker: TrainingWorker | None = None
    _own_jobs: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, settings: Settings) -> WorkerContext:
        connection = rq_queue.redis_connection(settings)
        return cls(
            settings=settings,
            database=Database(settings),
            connection=connection,
            queue=rq_queue.training_queue(settings, connection),
            runner_id=store.new_runner_id(),
        )

    def own_jobs(self) -> set[str]:
        with self._lock:
            return set(self._own_jobs)

    @contextlib.contextmanager
    def running(self, job_id: str) -> Iterator[None]:
        """Mark a job as this worker's, so its own sweeper never requeues it."""
        with self._lock:
            self._own_jobs.add(job_id)
        try:
            yield
        finally:
            with self._lock:
                self._own_jobs.discard(job_id)

    def close(self) -> None:
        self.database.dispose()
        with contextlib.suppress(Exception):
            self.connection.close()


_current: WorkerContext | None = None
_current_lock = threading.Lock()


def current_context() -> WorkerContext:
    """The worker's context; a plain `rq worker` on this queue gets one built from NNS_*."""
    global _current
    with _current_lock:
        if _current is None:
            log.warning("no nn-service worker context; building one from the environment")
            _current = WorkerContext.create(Settings())
        return _current


class TrainingWorker(SimpleWorker):
    """RQ's in-process worker, told about warm shutdowns and able to heartbeat mid-job."""

    def __init__(self, *args: Any, context: WorkerContext, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context
        self._running: tuple[Job, Any] | None = None
        self._last_rq_heartbeat = 0.0
        context.worker = self

    def handle_warm_shutdown_request(self) -> None:
        super().handle_warm_shutdown_request()
        self.context.stopping.set()

    def prepare_execution(self, job: Job) -> Any:
        execution = super().prepare_execution(job)
        self._running = (job, execution)
        self._last_rq_heartbeat = time.monotonic()
        return execution

    def execute_job(self, job: Job, queue: Queue) -> None:
        try:
            super().execute_job(job, queue)
        finally:
            self._running = None

    def keep_alive(self) -> None:
        """Refresh RQ's heartbeats now and then (SimpleWorker does not while a job runs)."""
        if self._running is None:
            return
        if time.monotonic() - self._last_rq_heartbeat < RQ_HEARTBEAT_SECONDS:
            return
        self._last_rq_heartbeat = time.monotonic()
        try:
            self.maintain_heartbeats(*self._running)
        except redis.RedisError as exc:  # Redis is not the source of truth: carry on
            log.warning("could not refresh RQ heartbeats: %s", exc)


# ---------------------------------------------------------------------------- one job


def run_job(context: WorkerContext, job_id: str) -> JobOutcome:
    """Claim `job_id` and supervise its training process to the end; returns the outcome."""
    worker_id = store.new_worker_id(context.runner_id)
    claimed = retry_db(
        lambda: store.claim_job(context.database, job_id, worker_id), f"job {job_id}: claim"
    )
    if claimed is None:
        log.info("job %s is not queued (a duplicate or stale message); skipped", job_id)
        return JobOutcome.SKIPPED
    supervisor = ProcessSupervisor(context.settings, context.database, concurrent_jobs=1)
    with context.running(job_id):
        if not supervisor.spawn(claimed):
            return JobOutcome.FAILED
        outcome = _supervise(context, supervisor, job_id)
    _advance_sweep(context, job_id)
    if outcome == JobOutcome.QUEUED:  # released: let any worker resume it now
        try:
            rq_queue.enqueue(context.queue, job_id)
        except redis.RedisError as exc:
            log.warning("job %s: could not re-enqueue (a sweep will): %s", job_id, exc)
    log.info("job %s: %s on this worker", job_id, outcome)
    return outcome


def _advance_sweep(context: WorkerContext, job_id: str) -> None:
    """A sweep trial ended: queue the sweep's next trials now, not at the next sweep."""
    from service.sweeps.driver import advance_for_job  # imports Optuna: only for sweeps

    try:
        created = advance_for_job(context.database, context.settings, job_id)
        for new_job in created:
            rq_queue.enqueue(context.queue, new_job)
    except Exception as exc:  # the periodic sweep advances it too
        log_step_failure(f"job {job_id}: could not advance its sweep", exc)


def _supervise(context: WorkerContext, supervisor: ProcessSupervisor, job_id: str) -> JobOutcome:
    poll = min(0.5, context.settings.heartbeat_seconds)
    try:
        while True:
            try:
                reaped = supervisor.reap()
                if job_id in reaped:
                    status = reaped[job_id]
                    return JobOutcome(status) if status else _status_of(context.database, job_id)
                if context.stopping.is_set():
                    requeued = supervisor.shutdown()
                    return JobOutcome.QUEUED if requeued else JobOutcome.STOPPED
                supervisor.watch()
            except Exception as exc:  # e.g. the database is away: the child keeps training
                log_step_failure(f"job {job_id}: supervision step failed", exc)
            if context.worker is not None:
                context.worker.keep_alive()
            _wait_for_exit(supervisor, job_id, poll)
    finally:
        if supervisor.children:  # cold shutdown or an unexpected error: never orphan it
            supervisor.shutdown()


def _wait_for_exit(supervisor: ProcessSupervisor, job_id: str, seconds: float) -> None:
    """Sleep up to `seconds`, waking as soon as the training process exits."""
    child = supervisor.children.get(job_id)
    if child is None:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        child.process.wait(timeout=seconds)


def _status_of(database: Database, job_id: str) -> JobOutcome:
    with database.session() as session:
        job = session.get(TrainingJob, job_id)
        return JobOutcome(job.status) if job is not None else JobOutcome.GONE


# ---------------------------------------------------------------------------- the process


def _sweep_forever(context: WorkerContext) -> None:
    interval = rq_queue.sweep_seconds(context.settings)
    while not context.stopping.is_set():
        try:
            rq_queue.sweep(
                context.database, context.queue, context.settings, exclude=context.own_jobs()
            )
        except Exception as exc:  # Redis or the database away: next time
            log.warning("sweep failed: %s", exc)
        try:
            deliver_due(context.database, context.settings, context.runner_id)
        except Exception as exc:  # the rows stay due: next time
            log.warning("webhook delivery failed: %s", exc)
        context.stopping.wait(interval)


def _stop_on_signals(context: WorkerContext) -> None:
    """Between RQ worker incarnations RQ's handlers are not ours to rely on."""

    def handler(signum: int, frame: FrameType | None) -> None:
        context.stopping.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_worker(settings: Settings, heartbeat_dir: Path | None = None) -> int:
    """The `nn-service worker` main loop; returns the exit status.

    While it runs, the process keeps a heartbeat file in `heartbeat_dir` (default:
    worker_health.default_dir()) for `nn-service worker --check`.
    """
    global _current
    if settings.runner != "rq":
        log.warning("NNS_RUNNER is %r: the API will not queue jobs in Redis", settings.runner)
    context = WorkerContext.create(settings)
    with _current_lock:
        _current = context
    heartbeat = worker_health.HeartbeatWriter(
        heartbeat_dir or worker_health.default_dir(),
        context.runner_id,
        interval=settings.heartbeat_seconds,
        stale_after=settings.lease_seconds,
    )
    heartbeat.start()
    sweeper = threading.Thread(
        target=_sweep_forever, args=(context,), name="nns-sweeper", daemon=True
    )
    sweeper.start()
    pause = 1.0
    log.info(
        "worker %s: queue %r at %s",
        context.runner_id,
        settings.rq_queue,
        _redacted(settings.redis_url),
    )
    try:
        while not context.stopping.is_set():
            worker = TrainingWorker(
                [context.queue],
                connection=context.connection,
                name=f"nns-{store.HOSTNAME}-{os.getpid()}-{uuid.uuid4().hex[:6]}",
                context=context,
            )
            started = time.monotonic()
            try:
                worker.work(logging_level=settings.log_level, with_scheduler=False)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                log.warning("Redis is unreachable: %s", exc)
            if context.stopping.is_set():
                break
            _stop_on_signals(context)
            if time.monotonic() - started > 60:
                pause = 1.0
            log.warning("the RQ worker loop ended; starting a fresh one in %.0f s", pause)
            context.stopping.wait(pause)
            pause = min(pause * 2, MAX_RESTART_PAUSE_SECONDS)
    finally:
        heartbeat.stop()
        context.stopping.set()
        sweeper.join(timeout=5)
        context.close()
        with _current_lock:
            _current = None
    log.info("worker %s stopped", context.runner_id)
    return 0


def _redacted(url: str) -> str:
    """A URL without its password, for the log."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
