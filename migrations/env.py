"""Alembic environment for nn-service.

No alembic.ini: service.migrate builds the Alembic Config in code and hands over either an open
connection (attributes["connection"]) or the service Settings (attributes["settings"]); without
either, Settings() is read from the environment like the service itself does.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.engine import Connection

from service.config import Settings
from service.db import Database
from service.migrate import locked_migration_connection
from service.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our type decorators as plain SQLAlchemy types: revisions must not import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=True,
        render_item=render_item,
        compare_type=True,
        **kwargs,
    )


def _run(connection: Connection) -> None:
    # service.migrate runs everything in one transaction it began itself (BEGIN IMMEDIATE on
    # SQLite, whose DDL is transactional too once the driver's own BEGIN handling is off).
    _configure(connection=connection, transactional_ddl=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline() -> None:
    settings = config.attributes.get("settings") or Settings()
    _configure(url=settings.database_url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    database = Database(config.attributes.get("settings") or Settings())
    try:
        with locked_migration_connection(database) as connection:
            _run(connection)
    finally:
        database.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
