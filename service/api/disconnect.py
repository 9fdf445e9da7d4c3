"""Stopping a request's work in a worker thread once its client has gone.

Parsing a large upload takes seconds in the thread pool; if the client disconnects meanwhile,
nobody will read the answer, so the work should stop. A thread cannot await
`request.is_disconnected()`, so a task on the event loop polls it and sets a flag the thread
reads between chunks of work (e.g. nn_core's CSV reader, through `cancelled`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

import anyio
from fastapi import Request
from starlette.concurrency import run_in_threadpool

#: Seconds between two looks at the connection (each is a non-blocking receive).
POLL_SECONDS = 0.2

T = TypeVar("T")


async def run_in_thread_until_gone(request: Request, work: Callable[[Callable[[], bool]], T]) -> T:
    """`work(gone)` in the thread pool; `gone()` answers whether the client has disconnected.

    The work's own exception is re-raised as is (not wrapped in an exception group)."""
    flag = threading.Event()

    async def watch() -> None:
        while not await request.is_disconnected():
            await anyio.sleep(POLL_SECONDS)
        flag.set()

    error: Exception | None = None
    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        try:
            result = await run_in_threadpool(work, flag.is_set)
        except Exception as exc:  # raised below, once the watcher has stopped
            error = exc
        finally:
            group.cancel_scope.cancel()
    if error is not None:
        raise error
    return result
