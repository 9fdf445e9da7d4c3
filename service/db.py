"""Database engine and sessions, identical in use on SQLite and Postgres.

SQLite needs care under concurrent writers: WAL lets readers run beside one writer, busy_timeout
makes a writer wait for the lock, and a transaction that reads and then writes must take the
write lock up front with BEGIN IMMEDIATE. A plain (deferred) BEGIN that later tries to write
fails at once with SQLITE_BUSY if another writer committed in between, whatever the timeout.
So: use `Database.write_session()` for every transaction that writes.

Python's sqlite3 driver (before 3.12's autocommit attribute) issues its own BEGIN only before
DML, so the driver's transaction handling is switched off and SQLAlchemy's `begin` event emits
BEGIN or BEGIN IMMEDIATE itself (the recipe from SQLAlchemy's SQLite dialect docs).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from service.config import Settings
from service.private_files import PRIVATE_DIR_MODE, private_dir, private_sqlite_file

# Execution option that makes the `begin` event on SQLite emit BEGIN IMMEDIATE.
_BEGIN_IMMEDIATE = "nns_begin_immediate"
#: Postgres ends a session left idle inside a transaction this long. A frozen or stopped
#: process (SIGSTOP, a hung machine) would otherwise keep its row locks for good, and the
#: API's cancel of that very job would wait on them forever. Our transactions take
#: milliseconds, so 10 s only ever ends a session whose process stopped working.
IDLE_IN_TRANSACTION_MS = 10_000
#: Pooled SQLite connections kept open (cheap: no server process behind them).
SQLITE_POOL_SIZE = 40
#: busy_timeout of the connections that read on the event loop (Database.read): in WAL mode
#: writers never block readers, so this only bounds the rare lock-outs (recovery after a
#: crash), after which the read is retried in a worker thread with the normal timeout.
INLINE_READ_BUSY_TIMEOUT_MS = 100

T = TypeVar("T")


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL, or None for in-memory and non-SQLite URLs."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def make_engine(settings: Settings) -> Engine:
    """Create an engine for settings.database_url with the SQLite setup applied when needed."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite":
        engine = create_engine(url, pool_pre_ping=True)
        if url.get_backend_name() == "postgresql":
            _install_postgres_hooks(engine)
        return engine

    path = sqlite_file(url)
    if path is None:  # in memory: one database per connection, nothing to pool
        engine = create_engine(url)
    else:
        # SQLite creates the file but not its directory; both readable by this user only.
        if path.parent.absolute() == settings.data_dir.absolute():
            private_dir(path.parent)
        else:  # a directory of the operator's choosing: created private, never chmod-ed
            path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        private_sqlite_file(path)
        # A connection per thread that may need one (anyio's pool runs 40 by default):
        # SQLAlchemy's default of 5 closes and reopens the rest, PRAGMAs and all, per request.
        engine = create_engine(url, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE)
    _install_sqlite_hooks(engine, settings.sqlite_busy_timeout_ms)
    return engine


def make_inline_read_engine(url: URL) -> Engine:
    """The SQLite connection for reads on the event loop (Database.read).

    It never opens a transaction (the driver is in autocommit mode, and no BEGIN is sent):
    each SELECT reads the latest committed state by itself, and there is nothing to roll
    back, so one connection is simply kept open (StaticPool) and used under a lock.
    """
    engine = create_engine(
        url,
        poolclass=StaticPool,
        connect_args={"check_same_thread": False},
        pool_reset_on_return=None,
    )
    _install_sqlite_hooks(engine, INLINE_READ_BUSY_TIMEOUT_MS, begin=False)
    return engine


def _install_postgres_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET idle_in_transaction_session_timeout = {IDLE_IN_TRANSACTION_MS}")
        dbapi_connection.commit()


def _install_sqlite_hooks(engine: Engine, busy_timeout_ms: int, *, begin: bool = True) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; the `begin` hook below emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _use_wal(cursor, busy_timeout_ms)
            # Durable at each checkpoint rather than each commit: safe with WAL, much faster.
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    if not begin:
        return

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(_BEGIN_IMMEDIATE):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def _use_wal(cursor: Any, busy_timeout_ms: int) -> None:
    """Switch the file to WAL (a persistent setting, so usually it already is).

    The switch needs an exclusive lock and SQLite answers "database is locked" at once, without
    its busy handler, while another connection holds any lock: the case when an API and its
    workers first open a new database together. So wait for it here, up to the busy timeout.
    """
    if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        return
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


class Database:
    """One engine plus its session factories.

    Build one per process and never share it across fork/spawn: a child makes its own.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self.is_postgres = self.engine.dialect.name == "postgresql"
        # expire_on_commit=False: API handlers return ORM objects after the commit.
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._write_bind = (
            self.engine.execution_options(**{_BEGIN_IMMEDIATE: True})
            if self.is_sqlite
            else self.engine
        )
        self._write_sessions = sessionmaker(self._write_bind, expire_on_commit=False)
        self._inline_reads = (
            make_inline_read_engine(self.engine.url)
            if sqlite_file(self.engine.url) is not None
            else None
        )
        self._inline_connection: Connection | None = None
        self._inline_lock = threading.Lock()

    def session(self) -> Session:
        """A session for reading (deferred BEGIN). Use write_session() for anything that writes."""
        return self._sessions()

    @contextmanager
    def write_session(self) -> Iterator[Session]:
        """A transaction that commits on success and rolls back on error.

        On SQLite it starts with BEGIN IMMEDIATE, so it holds the write lock from its first
        statement and a read-then-write (e.g. claiming a queued job) cannot fail with
        SQLITE_BUSY; other writers wait up to busy_timeout. On Postgres it is an ordinary
        transaction: claim rows with `select(...).with_for_update(skip_locked=True)`, which
        SQLite's compiler renders as a plain SELECT (the whole database is locked there anyway).
        Keep these transactions short: one per claim, one per epoch.
        """
        with self._write_sessions() as session, session.begin():
            yield session

    async def read(self, query: Callable[[Connection], T]) -> T:
        """Run a short read (a few indexed SELECTs) for async code, e.g. on every request.

        On SQLite it runs right here on the event loop: a lookup in a local file takes
        microseconds and, in WAL mode, writers never block it, while a trip through the
        thread pool costs ten times that. Should the file be locked all the same (recovery
        after a crash), the read moves to a worker thread with the normal busy timeout.
        Elsewhere a read is a network round trip, which must not stall the event loop:
        it always runs in a worker thread.
        """
        if self._inline_reads is not None:
            with self._inline_lock:
                try:
                    if self._inline_connection is None:
                        self._inline_connection = self._inline_reads.connect()
                    return query(self._inline_connection)
                except Exception as exc:
                    self._close_inline_connection()  # the next read starts afresh
                    if not (isinstance(exc, OperationalError) and "locked" in str(exc.orig)):
                        raise
        return await anyio.to_thread.run_sync(self._read_in_thread, query)

    def _close_inline_connection(self, close: bool = True) -> None:
        if self._inline_connection is not None and close:
            self._inline_connection.close()
        self._inline_connection = None

    def _read_in_thread(self, query: Callable[[Connection], T]) -> T:
        with self.engine.connect() as connection:
            return query(connection)

    @contextmanager
    def write_connection(self) -> Iterator[Connection]:
        """Core-level counterpart of write_session() (used by migrations)."""
        with self._write_bind.begin() as connection:
            yield connection

    def ping(self) -> None:
        """Raise if the database cannot be reached."""
        with self.engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def dispose(self, close: bool = True) -> None:
        """Drop pooled connections.

        Call with close=False first thing in a forked child (the parent's connections must not be
        closed or reused from the child), and with the default when shutting down.
        """
        self.engine.dispose(close=close)
        if self._inline_reads is not None:
            with self._inline_lock:
                self._close_inline_connection(close)
            self._inline_reads.dispose(close=close)
