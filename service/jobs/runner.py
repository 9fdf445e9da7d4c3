"""The job-runner interface and the choice of runner from settings.

A runner decides where run_training(job_id) executes. The API only inserts queued rows and
calls notify(); the database stays the source of truth, so a runner can always rebuild its
view of the world from it (after a restart, a lost queue message, a dead worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from service.config import Settings
from service.db import Database

log = logging.getLogger(__name__)


class JobRunner(Protocol):
    """What the app's lifespan and the jobs API need from a runner."""

    async def start(self) -> None:
        """Recover jobs left behind by a dead process, then start taking queued jobs."""

    async def stop(self) -> None:
        """Stop taking jobs; stop this runner's training processes and requeue their jobs."""

    def notify(self) -> None:
        """A job was submitted or cancelled: look at the queue now (safe from any thread)."""


class Wakeup:
    """Wakes a runner's loop early from any thread: notify() comes from request handlers,
    which may run in the thread pool, and an asyncio.Event may only be set on its loop."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event: asyncio.Event | None = None

    def bind(self) -> None:
        """Attach to the running loop (from the runner's start())."""
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def set(self) -> None:
        loop, event = self._loop, self._event
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    async def wait(self, seconds: float) -> None:
        """Until set() is called or `seconds` pass, whichever comes first."""
        assert self._event is not None, "bind() first"
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), seconds)
        self._event.clear()


def make_runner(settings: Settings, database: Database) -> JobRunner | None:
    """The runner for settings.runner: "embedded" runs jobs in this process's children;
    "rq" only queues them in Redis for `nn-service worker` processes."""
    if settings.runner == "embedded":
        from service.jobs.embedded import EmbeddedRunner

        return EmbeddedRunner(settings, database)
    if settings.runner == "rq":
        from service.jobs.rq_runner import RQRunner

        return RQRunner(settings, database)
    log.warning("runner %r: this process runs no jobs; start workers for them", settings.runner)
    return None
