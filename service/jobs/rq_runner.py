"""The API's side of the RQ runner: queue messages for submitted jobs; run nothing here.

On start and on every notify() (a submit or a cancel) it sweeps (service/jobs/rq_queue.py):
every queued job without a waiting message gets one. It also sweeps every half lease, so
jobs stay runnable after Redis lost its data even while every worker is busy. A Redis
outage never fails a submit: the job is queued in the database and a later sweep (here or
in any worker) enqueues it. The same loop runs the batch-result cleanup pass
(service/jobs/batch_retention.py): the API shares NNS_DATA_DIR with the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from service.config import Settings
from service.db import Database
from service.jobs import rq_queue
from service.jobs.batch_retention import RetentionPass
from service.jobs.runner import Wakeup

log = logging.getLogger(__name__)


class RQRunner:
    """JobRunner for settings.runner == "rq" (jobs run in `nn-service worker` processes)."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.connection = rq_queue.redis_connection(settings)
        self.queue = rq_queue.training_queue(settings, self.connection)
        self._task: asyncio.Task[None] | None = None
        self._wake = Wakeup()
        self.retention = RetentionPass(database, settings)

    async def start(self) -> None:
        self._wake.bind()
        await asyncio.to_thread(self._sweep)
        self._task = asyncio.create_task(self._run(), name="nns-rq-sweeper")
        log.info("rq runner started: jobs go to queue %r for nn-service workers", self.queue.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(Exception):
            self.connection.close()

    def notify(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait(rq_queue.sweep_seconds(self.settings))
            await asyncio.to_thread(self._sweep)

    def _sweep(self) -> None:
        self.retention.maybe_run()
        try:
            result = rq_queue.sweep(self.database, self.queue, self.settings)
        except Exception as exc:  # Redis or the database away: the next sweep catches up
            log.warning("rq sweep failed (jobs stay queued in the database): %s", exc)
            return
        if result.enqueued:
            log.info("enqueued %d job(s): %s", len(result.enqueued), ", ".join(result.enqueued))
