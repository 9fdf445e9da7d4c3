"""Run Alembic migrations from code: on start-up, from `nn-service migrate`, and in tests.

The scripts ship inside the package (service.migrations, from the top-level migrations/ folder),
so an installed wheel migrates without a checkout or an alembic.ini.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection

from service.config import Settings
from service.db import Database
from service.jobs.retry import retry_db

# Any constant shared by every nn-service process; Postgres advisory locks are keyed by a bigint.
_PG_MIGRATION_LOCK = 0x6E6E735F6D6967  # "nns_mig"


def script_location() -> Path:
    import service.migrations

    return Path(service.migrations.__file__).resolve().parent


def alembic_config(settings: Settings, connection: Connection | None = None) -> Config:
    """An Alembic Config built in code; env.py takes the connection or settings from attributes."""
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    config.attributes["settings"] = settings
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def locked_migration_connection(database: Database) -> Iterator[Connection]:
    """One transaction for the whole migration, exclusive across processes.

    Several processes may start at once (API + workers): on SQLite BEGIN IMMEDIATE serializes
    them, on Postgres a transaction-scoped advisory lock does; the later ones then find the
    schema at head and do nothing. Both databases run the DDL transactionally.
    """
    with database.write_connection() as connection:
        if database.is_postgres:
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
            )
        yield connection


def upgrade(settings: Settings, revision: str = "head", database: Database | None = None) -> None:
    """Bring the database up to `revision` (idempotent).

    The migration is one transaction, so a connection dropped under it (a database still
    starting, a failover) rolls it back and it is simply run again.
    """
    owned = database is None
    database = database or Database(settings)

    def run() -> None:
        with locked_migration_connection(database) as connection:
            command.upgrade(alembic_config(settings, connection), revision)

    try:
        retry_db(run, "migrating the database")
    finally:
        if owned:
            database.dispose()


def current_revision(settings: Settings) -> str | None:
    """The revision the database is at, or None for an empty database."""
    database = Database(settings)
    try:
        with database.engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        database.dispose()


def head_revision() -> str | None:
    return ScriptDirectory(str(script_location())).get_current_head()


def make_revision(message: str) -> Path:
    """Autogenerate the next numbered revision from the difference between head and service.models.

    For developers changing models.py: runs against a throwaway SQLite database at head, then
    writes migrations/versions/NNNN_<slug>.py. Review it (and test on Postgres) before committing.
    """
    script = ScriptDirectory(str(script_location()))
    numbers = [int(r.revision) for r in script.walk_revisions() if re.fullmatch(r"\d+", r.revision)]
    rev_id = f"{max(numbers, default=0) + 1:04d}"
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(_env_file=None, data_dir=Path(scratch), database_url="")  # type: ignore[call-arg]
        database = Database(settings)
        try:
            upgrade(settings, database=database)
            with locked_migration_connection(database) as connection:
                result = command.revision(
                    alembic_config(settings, connection),
                    message=message,
                    autogenerate=True,
                    rev_id=rev_id,
                )
        finally:
            database.dispose()
    scripts = result if isinstance(result, list) else [result]
    return Path(scripts[0].path) if scripts and scripts[0] is not None else Path()
