"""The database layer: SQLite PRAGMAs, BEGIN IMMEDIATE write sessions, job claiming, timestamps."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest
from service_helpers import make_settings
from sqlalchemy import func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError, OperationalError

from service import db, migrate
from service.db import Database
from service.models import JobStatus, TrainingJob

#: The layer over each backend's locking and types: every `database_url` test runs on both.
pytestmark = pytest.mark.both_backends


def _database(url: str, tmp_path: Path, **overrides: object) -> Database:
    settings = make_settings(url, tmp_path / "data", **overrides)
    migrate.upgrade(settings)
    return Database(settings)


def test_sqlite_pragmas_are_set_on_every_connection(sqlite_url: str, tmp_path: Path) -> None:
    database = _database(sqlite_url, tmp_path, sqlite_busy_timeout_ms=12_345)
    try:
        with database.engine.connect() as one, database.engine.connect() as two:
            for connection in (one, two):
                pragmas = {
                    name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
                    for name in ("journal_mode", "busy_timeout", "foreign_keys", "synchronous")
                }
                # synchronous 1 is NORMAL
                assert pragmas == {
                    "journal_mode": "wal",
                    "busy_timeout": 12_345,
                    "foreign_keys": 1,
                    "synchronous": 1,
                }
    finally:
        database.dispose()


def test_foreign_keys_are_enforced(sqlite_url: str, tmp_path: Path) -> None:
    database = _database(sqlite_url, tmp_path)
    try:
        with pytest.raises(Exception, match="FOREIGN KEY"), database.write_session() as session:
            session.add(
                TrainingJob(owner="a", spec={}, model_name="m", dataset_id="ds_does_not_exist")
            )
    finally:
        database.dispose()


def test_write_session_takes_the_write_lock_at_its_first_statement(
    sqlite_url: str, tmp_path: Path
) -> None:
    """A second writer waits (here: gives up after 200 ms) while readers carry on."""
    holder = _database(sqlite_url, tmp_path)
    other = Database(make_settings(sqlite_url, tmp_path / "data", sqlite_busy_timeout_ms=200))
    outcome: dict[str, object] = {}

    def second_writer() -> None:
        try:
            with other.write_session() as session:
                session.execute(select(func.count()).select_from(TrainingJob))
            outcome["writer"] = "ran"
        except OperationalError as exc:
            outcome["writer"] = str(exc.orig)

    try:
        with holder.write_session() as session:
            session.execute(select(func.count()).select_from(TrainingJob))  # only a read so far
            with other.session() as reader:
                assert reader.scalar(select(func.count()).select_from(TrainingJob)) == 0
            thread = threading.Thread(target=second_writer)
            thread.start()
            thread.join(timeout=10)
        assert outcome["writer"] == "database is locked"
    finally:
        holder.dispose()
        other.dispose()


def _claim_all(database: Database, worker: str, claimed: list[str], errors: list[str]) -> None:
    """Read-then-write claims until the queue is empty, the way a job runner claims work."""
    while True:
        try:
            with database.write_session() as session:
                job = session.scalar(
                    select(TrainingJob)
                    .where(TrainingJob.status == JobStatus.QUEUED)
                    .order_by(TrainingJob.created_at, TrainingJob.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if job is None:
                    return
                job.status = JobStatus.RUNNING
                job.worker_id = worker
                job.attempts += 1
                job.started_at = datetime.now(UTC)
            claimed.append(job.id)
        except Exception as exc:  # any failure counts; there must be none
            errors.append(repr(exc))
            return


def test_concurrent_claims_never_fail_and_never_double_claim(
    database_url: str, tmp_path: Path
) -> None:
    database = _database(database_url, tmp_path)
    jobs = 200
    with database.write_session() as session:
        session.add_all(TrainingJob(owner="o", spec={}, model_name="m") for _ in range(jobs))
    workers = [Database(database.settings) for _ in range(4)]  # one engine per "process"
    claimed: list[str] = []
    errors: list[str] = []
    threads = [
        threading.Thread(target=_claim_all, args=(w, f"worker-{i}", claimed, errors))
        for i, w in enumerate(workers)
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert errors == []
        assert len(claimed) == jobs and len(set(claimed)) == jobs
        with database.session() as session:
            running = session.scalar(
                select(func.count())
                .select_from(TrainingJob)
                .where(TrainingJob.status == JobStatus.RUNNING, TrainingJob.attempts == 1)
            )
            assert running == jobs
    finally:
        for worker in workers:
            worker.dispose()
        database.dispose()


def test_timestamps_round_trip_as_aware_utc(database_url: str, tmp_path: Path) -> None:
    database = _database(database_url, tmp_path)
    try:
        with database.write_session() as session:
            job = TrainingJob(owner="o", spec={"a": [1, 2]}, model_name="m", metrics=None)
            session.add(job)
        with database.session() as session:
            loaded = session.get(TrainingJob, job.id)
            assert loaded is not None
            assert loaded.created_at.tzinfo is not None
            assert loaded.created_at.utcoffset() is not None
            assert abs((datetime.now(UTC) - loaded.created_at).total_seconds()) < 60
            assert loaded.spec == {"a": [1, 2]}
            assert (
                session.scalar(
                    select(func.count())
                    .select_from(TrainingJob)
                    .where(TrainingJob.metrics.is_(None))
                )
                == 1
            )
        with pytest.raises(Exception, match="naive datetime"), database.write_session() as s:
            s.add(TrainingJob(owner="o", spec={}, model_name="m", created_at=datetime.now()))
    finally:
        database.dispose()


def test_dispose_then_reuse(sqlite_url: str, tmp_path: Path) -> None:
    """A child process disposes the inherited pool and the engine reconnects on demand."""
    database = _database(sqlite_url, tmp_path)
    database.ping()
    database.dispose(close=False)
    with database.session() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1
    database.dispose()


@pytest.mark.postgres
def test_a_stopped_process_cannot_hold_row_locks_for_good(
    postgres_schema_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process frozen inside a transaction (SIGSTOP, a hung machine) leaves it idle: Postgres
    ends that session after IDLE_IN_TRANSACTION_MS, so a cancel of its job is not blocked."""
    monkeypatch.setattr(db, "IDLE_IN_TRANSACTION_MS", 500)
    database = _database(postgres_schema_url, tmp_path)
    with database.write_session() as session:
        session.add(TrainingJob(owner="o", spec={}, model_name="m", status=JobStatus.RUNNING))
    frozen = database.engine.connect()
    frozen.begin()
    frozen.execute(text("UPDATE training_jobs SET attempts = 1"))  # row lock held, then idle
    try:
        with database.engine.begin() as live:
            live.execute(text("SET LOCAL lock_timeout = '5s'"))  # fail, never hang
            live.execute(text("UPDATE training_jobs SET cancel_requested = true"))
        with pytest.raises(DBAPIError, match="idle-in-transaction"):  # ended by the server
            frozen.execute(text("SELECT 1"))
    finally:
        frozen.invalidate()
        frozen.close()
        database.dispose()


def test_processes_opening_a_new_database_together_wait_for_wal(tmp_path: Path) -> None:
    """An API and its workers may open a new SQLite file at the same moment: switching it to
    WAL needs an exclusive lock that SQLite refuses at once, so the others must wait for it."""
    for attempt in range(30):
        settings = make_settings(f"sqlite:///{tmp_path / str(attempt)}/nns.db", tmp_path / "data")
        databases = [Database(settings) for _ in range(8)]
        barrier = threading.Barrier(len(databases))
        errors: list[str] = []

        def first_write(database: Database, barrier: threading.Barrier, errors: list[str]) -> None:
            barrier.wait()
            try:
                with database.write_connection() as connection:
                    connection.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            except OperationalError as exc:
                errors.append(str(exc))

        threads = [
            threading.Thread(target=first_write, args=(db, barrier, errors)) for db in databases
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        for database in databases:
            database.dispose()
        assert errors == [], f"attempt {attempt}: {errors}"


@pytest.mark.anyio
async def test_read_sees_each_commit_of_another_connection_at_once(
    database_url: str, tmp_path: Path
) -> None:
    """Database.read keeps its SQLite connection open between calls (no transaction is left
    open on it, so nothing it reads can be stale)."""
    database = _database(database_url, tmp_path)

    def count(connection: Connection) -> int:
        return int(connection.execute(select(func.count()).select_from(TrainingJob)).scalar_one())

    try:
        assert await database.read(count) == 0
        for expected in (1, 2):
            with database.write_session() as session:
                session.add(TrainingJob(owner="a", spec={}, model_name="m", dataset_name="xor"))
            assert await database.read(count) == expected
    finally:
        database.dispose()


@pytest.mark.anyio
async def test_read_waits_in_a_thread_while_the_file_is_locked(
    sqlite_url: str, tmp_path: Path
) -> None:
    """Another process holding SQLite's exclusive lock must not freeze the event loop: the
    read leaves the loop after a short busy timeout and waits in a worker thread instead."""
    database = _database(sqlite_url, tmp_path)
    path = db.sqlite_file(sqlite_url)
    assert path is not None
    blocker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    blocker.execute("PRAGMA locking_mode = EXCLUSIVE")
    blocker.execute("BEGIN EXCLUSIVE")
    blocker.execute("DELETE FROM training_jobs")
    # What happened, in order. The lock is released only once the loop has run something
    # else while the read waited (or, should the loop be frozen, after a safety deadline,
    # which leaves the order wrong and fails the test instead of hanging it).
    events: list[str] = []
    loop_ran = threading.Event()
    read_started = anyio.Event()

    def release() -> None:
        loop_ran.wait(timeout=30)
        events.append("lock released")
        blocker.execute("COMMIT")
        blocker.close()

    async def read() -> int:
        read_started.set()
        # Runs on the loop up to its first await: the attempt on the locked file.
        value: int = await database.read(lambda c: c.execute(text("SELECT 42")).scalar_one())
        events.append("read returned")
        return value

    async def meanwhile() -> None:
        await read_started.wait()  # wakes only when the read task has left the loop
        events.append("loop ran while the read waited")
        loop_ran.set()

    releaser = threading.Thread(target=release)
    releaser.start()
    try:
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(meanwhile)
            value = await read()
    finally:
        loop_ran.set()
        releaser.join()
        database.dispose()
    assert value == 42
    # The loop went on while the read waited, and the read did wait for the lock.
    assert events == ["loop ran while the read waited", "lock released", "read returned"]
