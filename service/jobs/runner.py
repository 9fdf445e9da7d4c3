"""The job-runner interface and the choice of runner from settings.

A runner decides where run_training(job_id) executes. The API only inserts queued rows and
calls notify(); the database stays the source of truth, so a runner can always rebuild its
view of the world from it (after a restart, a lost queue message, a dead worker).
"""

from __future__ import annotations

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
