"""HotSelect: the prediction path's reads, run on the SQLite driver, must return exactly what
Connection.execute returns (types included), and fail as it fails."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from service_helpers import make_settings
from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from service import auth, db, migrate, serving
from service.db import Database
from service.hot_select import HotSelect
from service.models import (
    ApiKey,
    Checkpoint,
    Model,
    ModelAlias,
    ModelVersion,
    TrainingJob,
)

pytestmark = [pytest.mark.both_backends, pytest.mark.anyio]

CREATED = datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _database(url: str, tmp_path: Path) -> Database:
    settings = make_settings(url, tmp_path / "data")
    migrate.upgrade(settings)
    return Database(settings)


def _fill(database: Database) -> dict[str, int]:
    """One of each row the hot reads find: a revoked key, a model with two versions (one
    with a threshold), a plain alias, a split alias with a shadow, a job's checkpoint."""
    with database.write_session() as session:
        key = ApiKey(
            owner="alice",
            name="k",
            prefix="0123456789ab",
            secret_hash="f" * 64,
            is_admin=True,
            revoked_at=CREATED,
            last_used_at=CREATED,
        )
        model = Model(owner="alice", name="xor")
        session.add_all([key, model])
        session.flush()
        first = ModelVersion(model_id=model.id, version=1, spec={}, weights=b"", created_at=CREATED)
        second = ModelVersion(model_id=model.id, version=2, spec={}, weights=b"", threshold=0.25)
        session.add_all([first, second])
        session.flush()
        split = {"split": [[first.id, 90], [second.id, 10]], "shadow": second.id}
        session.add_all(
            [
                ModelAlias(model_id=model.id, alias="plain", version_id=first.id),
                ModelAlias(model_id=model.id, alias="split", version_id=first.id, traffic=split),
            ]
        )
        job = TrainingJob(owner="alice", spec={}, model_name="xor", dataset_name="xor")
        session.add(job)
        session.flush()
        session.add(Checkpoint(job_id=job.id, epoch=3, state=b"x"))
        return {"first": first.id, "second": second.id, "job": job.id}  # type: ignore[dict-item]


def _cases(ids: dict[str, Any]) -> list[tuple[HotSelect, dict[str, Any]]]:
    version = {"owner": "alice", "name": "xor"}
    return [
        (auth._KEY_QUERY, {"prefix": "0123456789ab"}),
        (auth._KEY_QUERY, {"prefix": "ba9876543210"}),
        (serving._VERSION_LATEST, version),
        (serving._VERSION_LATEST, {"owner": "bob", "name": "xor"}),
        (serving._VERSION_NUMBER, {**version, "number": 1}),
        (serving._VERSION_NUMBER, {**version, "number": 7}),
        (serving._VERSION_ALIAS, {**version, "alias": "plain"}),
        (serving._VERSION_ALIAS, {**version, "alias": "split"}),
        (serving._VERSION_ID, {"id": ids["second"]}),
        (serving._CHECKPOINT, {"owner": "alice", "job_id": ids["job"]}),
    ]


async def test_rows_equal_what_execute_returns(database_url: str, tmp_path: Path) -> None:
    database = _database(database_url, tmp_path)
    try:
        ids = _fill(database)

        def both(connection: Connection) -> list[tuple[Any, Any]]:
            out = []
            for hot, params in _cases(ids):
                row = connection.execute(hot.statement, params).first()
                out.append((hot.first(connection, params), None if row is None else tuple(row)))
            return out

        results = await database.read(both)
    finally:
        database.dispose()
    for hot_row, executed in results:
        assert hot_row == executed
        assert [type(v) for v in hot_row or ()] == [type(v) for v in executed or ()]
    key, missing_key, latest, nobody, first, _, plain, split, second, checkpoint = results
    assert missing_key[0] is None and nobody[0] is None
    assert key[0] is not None and key[0][4] is True and key[0][5] == CREATED  # is_admin, revoked
    assert latest[0] is not None and latest[0][1:2] == (2,) and latest[0][3] == 0.25
    assert first[0] is not None and first[0][2] == CREATED  # an aware UTC datetime
    assert plain[0] is not None and plain[0][4] is None
    assert split[0] is not None and split[0][4]["split"][0][1] == 90  # JSON decoded
    assert second[0] is not None and checkpoint[0] is not None and checkpoint[0][1] == 3


def test_driver_errors_arrive_as_sqlalchemys(sqlite_url: str, tmp_path: Path) -> None:
    """Database.read moves a read to a worker thread on SQLAlchemy's OperationalError for a
    locked file, so the driver's own errors must arrive as SQLAlchemy's, as from execute."""
    database = _database(sqlite_url, tmp_path)
    missing = Table("no_such_table", MetaData(), Column("id", Integer))
    engine = db.make_inline_read_engine(database.engine.url)
    try:
        with engine.connect() as connection:
            with pytest.raises(OperationalError, match="no such table") as raised:
                HotSelect(select(missing.c.id)).first(connection, {})
            assert isinstance(raised.value.orig, sqlite3.OperationalError)
    finally:
        engine.dispose()
        database.dispose()
