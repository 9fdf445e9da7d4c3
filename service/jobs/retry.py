"""Retrying a short database transaction when the connection drops under it.

pool_pre_ping (service/db.py) replaces connections that died while idle in the pool; this
covers the rest: a connection killed between the ping and the statement, or mid-transaction
(Postgres restarted or failed over, pg_terminate_backend, a network blip). The transaction
rolled back, so running it again is safe. Other errors are not retried: they are not
transient, and the callers have their own answers to them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Attempts in all, and the first pause (doubled after each failure): about 6 s in total.
ATTEMPTS = 6
FIRST_PAUSE_SECONDS = 0.2


def is_transient(exc: BaseException) -> bool:
    """A dropped or unusable connection (OperationalError covers SQLite's "locked" too)."""
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def log_step_failure(what: str, exc: Exception) -> None:
    """For loops that simply try again next time: a transient database error (a write lock
    held elsewhere, a dropped connection) is expected now and then and gets one line; anything
    else gets its traceback."""
    if isinstance(exc, DBAPIError) and is_transient(exc):
        log.warning("%s: database unavailable, trying again: %s", what, exc.orig)
    else:
        log.error("%s", what, exc_info=exc)


def retry_db(operation: Callable[[], T], what: str, attempts: int = ATTEMPTS) -> T:
    """Run `operation` (one whole transaction), again after a transient database error."""
    pause = FIRST_PAUSE_SECONDS
    for attempt in range(1, attempts + 1):
        try:
            return operation()
        except DBAPIError as exc:
            if attempt == attempts or not is_transient(exc):
                raise
            log.warning(
                "%s: database error (attempt %d of %d), retrying in %.1fs: %s",
                what,
                attempt,
                attempts,
                pause,
                str(exc).splitlines()[0],
            )
        time.sleep(pause)
        pause *= 2
    raise AssertionError("unreachable")
