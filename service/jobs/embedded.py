"""The embedded runner: a supervisor inside the API process, one subprocess per job.

An asyncio task wakes every `poll_seconds` (or at once on notify()) and hands one "tick" to a
worker thread, so no database call or process call ever blocks the event loop:

- reap and watch the training processes (service/jobs/processes.py, shared with the RQ
  worker): requeue jobs whose process died, escalate cancel and timeouts to signals.
- recover: live jobs whose worker is gone (lease expired, or a dead process on this host,
  e.g. the previous server before a restart) are requeued or failed.
- advance sweeps: each unfinished sweep takes its next step (service/sweeps/driver.py), e.g.
  queues its next trials once earlier ones have ended.
- claim: queued jobs up to max_concurrent_jobs, each started as
  `python -m service.jobs.child` (a fresh interpreter: nothing inherited from this process).
- webhooks: due outbox deliveries are posted in a background thread (service/webhooks/).
- batch results: expired result files are removed, at most every NNS_BATCH_CLEANUP_SECONDS
  (service/jobs/batch_retention.py; one directory listing when there are none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from datetime import timedelta

from service.config import Settings
from service.db import Database
from service.jobs import store
from service.jobs.batch_retention import RetentionPass
from service.jobs.processes import ProcessSupervisor
from service.jobs.retry import log_step_failure
from service.jobs.runner import Wakeup
from service.sweeps.driver import advance_active
from service.webhooks.delivery import DeliveryPump

log = logging.getLogger(__name__)


class EmbeddedRunner:
    """Runs queued jobs in subprocesses of this server (see the module docstring)."""

    def __init__(
        self, settings: Settings, database: Database, *, poll_seconds: float | None = None
    ) -> None:
        self.settings = settings
        self.database = database
        self.poll_seconds = poll_seconds or min(0.5, settings.heartbeat_seconds)
        self.runner_id = store.new_runner_id()
        self.processes = ProcessSupervisor(
            settings, database, concurrent_jobs=settings.max_concurrent_jobs
        )
        self._lock = threading.Lock()  # one tick (or the shutdown) at a time
        self._stopping = False
        self._last_recovery = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self._wake = Wakeup()
        self.webhooks = DeliveryPump(database, settings, self.runner_id)
        self.retention = RetentionPass(database, settings)

    # ------------------------------------------------------------------ JobRunner

    async def start(self) -> None:
        self._wake.bind()
        await asyncio.to_thread(self._recover)
        self._task = asyncio.create_task(self._supervise(), name="nns-job-supervisor")
        log.info("embedded job runner %s started", self.runner_id)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.to_thread(self._shutdown)
        await asyncio.to_thread(self.webhooks.join, self.settings.webhook_timeout_seconds * 2)
        log.info("embedded job runner %s stopped", self.runner_id)

    def notify(self) -> None:
        self._wake.set()

    def process_ids(self) -> dict[str, int]:
        """Job id -> pid of its training process (for operators and tests)."""
        return self.processes.process_ids()

    # ------------------------------------------------------------------ loop

    async def _supervise(self) -> None:
        while True:
            try:
                await asyncio.to_thread(self._tick)
            except Exception as exc:  # keep supervising: the next tick may well succeed
                log_step_failure("job supervisor tick failed", exc)
            await self._wake.wait(self.poll_seconds)

    def _tick(self) -> None:
        with self._lock:
            if self._stopping:
                return
            self.processes.reap()
            self.processes.watch()
            if time.monotonic() - self._last_recovery >= self.settings.lease_seconds / 2:
                self._recover()
            advance_active(self.database, self.settings)
            self._claim()
            self.webhooks.kick()  # in its own thread: a slow receiver never delays claims
            self.retention.maybe_run()

    # ------------------------------------------------------------------ steps

    def _recover(self) -> None:
        self._last_recovery = time.monotonic()
        changed = store.recover_abandoned(
            self.database,
            timedelta(seconds=self.settings.lease_seconds),
            self.settings.job_max_attempts,
            exclude=set(self.processes.children),
        )
        for job_id, status in changed:
            log.warning("job %s: its worker is gone; now %s", job_id, status)

    def _claim(self) -> None:
        free = self.settings.max_concurrent_jobs - len(self.processes.children)
        for claimed in store.claim_jobs(
            self.database, self.runner_id, free, self.settings.max_concurrent_jobs
        ):
            self.processes.spawn(claimed)

    # ------------------------------------------------------------------ shutdown

    def _shutdown(self) -> None:
        """Stop every child and requeue its job without counting the attempt."""
        with self._lock:
            self.processes.shutdown()
