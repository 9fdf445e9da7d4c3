"""Alembic migrations from empty produce exactly the ORM's schema, on SQLite and Postgres."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from service_helpers import make_settings
from sqlalchemy import CheckConstraint, Column, Integer, MetaData, Table, inspect

from service import migrate
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
    assert migrate.head_revision() == "0007"
