"""FastAPI dependencies for what create_app() puts on app.state: settings, database, and the
model cache every prediction route shares.

Handlers read with `SessionDep` and write through `DatabaseDep`'s `write_session()`, so no
request holds SQLite's write lock for longer than the few statements that need it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from service.config import Settings
from service.db import Database
from service.registry.cache import ModelCache


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.db
    return database


async def get_model_cache(request: Request) -> ModelCache:
    """Async: an attribute read needs no trip through the thread pool."""
    cache: ModelCache = request.app.state.model_cache
    return cache


def get_session(request: Request) -> Iterator[Session]:
    """A read session closed after the request; use DatabaseDep.write_session() to write."""
    database: Database = request.app.state.db
    with database.session() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]
SessionDep = Annotated[Session, Depends(get_session)]
ModelCacheDep = Annotated[ModelCache, Depends(get_model_cache)]


def notify_runner(request: Request) -> None:
    """Wake the app's job runner (if it runs one) to look for queued work now, not at its
    next poll."""
    runner = request.app.state.runner
    if runner is not None:
        runner.notify()
