"""Alembic migrations from empty produce exactly the ORM's schema, on SQLite and Postgres."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from service_helpers import make_settings
from sqlalchemy import CheckConstraint, Column, Integer, MetaData, Table, inspect, text

from service import blobs, migrate
from service.config import Settings
from service.dataset_blobs import blob_root
from service.db import Database
from service.models import Base

#: Migrations are DDL, which each backend runs its own way: every test here runs on both.
pytestmark = pytest.mark.both_backends


def _schema_differences(database: Database, metadata: MetaData = Base.metadata) -> list[object]:
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, metadata))


def _check_constraint_names(database: Database) -> dict[str, set[str]]:
    """Autogenerate ignores CHECK constraints, so compare those by name separately."""
    inspector = inspect(database.engine)
    return {
        table: {c["name"] for c in inspector.get_check_constraints(table) if c["name"]}
        for table in Base.metadata.tables
    }


def test_upgrade_from_empty_matches_the_models(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "data")
    assert migrate.current_revision(settings) is None
    migrate.upgrade(settings)
    assert migrate.current_revision(settings) == migrate.head_revision()
    database = Database(settings)
    try:
        assert _schema_differences(database) == []
        expected = {
            table.name: {str(c.name) for c in table.constraints if isinstance(c, CheckConstraint)}
            for table in Base.metadata.tables.values()
        }
        assert _check_constraint_names(database) == expected
        assert expected["training_jobs"] == {"ck_training_jobs_status"}

        # The comparison is not vacuous: a model change shows up as a difference.
        changed = MetaData()
        for table in Base.metadata.tables.values():
            table.to_metadata(changed)
        Table("api_keys", changed, Column("extra", Integer), extend_existing=True)
        assert [d[0] for d in _schema_differences(database, changed)] == ["add_column"]
    finally:
        database.dispose()


def test_upgrade_is_idempotent_and_downgrade_reverses_it(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path / "data")
    migrate.upgrade(settings)
    migrate.upgrade(settings)
    database = Database(settings)
    try:
        with migrate.locked_migration_connection(database) as connection:
            command.downgrade(migrate.alembic_config(settings, connection), "base")
        assert set(inspect(database.engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(settings, database=database)
        assert _schema_differences(database) == []
    finally:
        database.dispose()


def _insert_dataset(database: Database, dataset_id: str, data: bytes) -> None:
    """A dataset row as the 0007 schema has it: the npz in `data`."""
    with database.write_session() as session:
        session.execute(
            text(
                "INSERT INTO datasets (id, owner, name, source, format, task, n_rows, "
                "n_features, data, size_bytes, created_at) VALUES (:id, 'alice', :id, "
                "'upload', 'npz', 'classification', 4, 2, :data, :size, CURRENT_TIMESTAMP)"
            ),
            {"id": dataset_id, "data": data, "size": len(data)},
        )


def _downgrade(settings: Settings, database: Database, revision: str) -> None:
    with migrate.locked_migration_connection(database) as connection:
        command.downgrade(migrate.alembic_config(settings, connection), revision)


def test_0008_keeps_rows_in_the_column_and_downgrade_inlines_blob_files(
    database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path / "data")
    migrate.upgrade(settings, "0007")
    database = Database(settings)
    try:
        _insert_dataset(database, "ds_old", b"old bytes")
        migrate.upgrade(settings, database=database)
        with database.session() as session:
            old = session.execute(text("SELECT storage, data FROM datasets")).one()
        assert (old[0], bytes(old[1])) == ("database", b"old bytes")

        ref = blobs.put(blob_root(settings), b"new bytes in a file")
        _insert_dataset(database, "ds_new", b"")
        with database.write_session() as session:
            session.execute(
                text(
                    "UPDATE datasets SET storage = 'file', data = NULL, data_sha256 = :sha, "
                    "size_bytes = :size WHERE id = 'ds_new'"
                ),
                {"sha": ref.sha256, "size": ref.size},
            )
        blobs.blob_path(blob_root(settings), ref.sha256).write_bytes(b"new bytes in a fil!")
        with pytest.raises(RuntimeError, match=r"ds_new.*altered"):
            _downgrade(settings, database, "0007")
        assert migrate.current_revision(settings) == "0008"  # one transaction: nothing done

        blobs.put(blob_root(settings), b"new bytes in a file")  # repaired
        _downgrade(settings, database, "0007")
        with database.session() as session:
            found = session.execute(text("SELECT id, data FROM datasets")).all()
        rows = {str(row[0]): bytes(row[1]) for row in found}
        assert rows == {"ds_old": b"old bytes", "ds_new": b"new bytes in a file"}
        assert "storage" not in {
            c["name"] for c in inspect(database.engine).get_columns("datasets")
        }
    finally:
        database.dispose()


def test_concurrent_first_starts_migrate_once(database_url: str, tmp_path: Path) -> None:
    """API and workers may all start at once on an empty database."""
    settings = make_settings(database_url, tmp_path / "data")
    errors: list[str] = []

    def start() -> None:
        try:
            migrate.upgrade(settings)
        except Exception as exc:
            errors.append(repr(exc))

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert migrate.current_revision(settings) == migrate.head_revision()


def test_scripts_ship_inside_the_package() -> None:
    location = migrate.script_location()
    assert (location / "env.py").is_file()
    assert (location / "script.py.mako").is_file()
    assert (location / "versions" / "__init__.py").is_file()
    assert migrate.head_revision() == "0008"
