"""Fixtures for the service tests: a real database per test, a started app, an HTTP client.

`database_url` gives each test a fresh SQLite file and, when PostgreSQL is reachable, a fresh
Postgres schema (selected through search_path), so every API test runs on both backends.
Async tests run on anyio's pytest plugin (shipped with anyio): mark them `pytest.mark.anyio`.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from service_helpers import bearer, make_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service.app import create_app
from service.config import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'db' / 'nns.db'}"


@pytest.fixture
def postgres_schema_url(postgres_url: str) -> Iterator[str]:
    """A URL whose connections live in a new, empty schema, dropped afterwards."""
    schema = f"nns_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each backend in turn."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_schema_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "data")


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """A started app (httpx's ASGITransport does not run the lifespan, so it is run here)."""
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


@pytest.fixture
def admin_key(app: FastAPI, settings: Settings) -> str:
    """The key the app wrote to <data_dir>/admin-key at first start."""
    return settings.admin_key_path.read_text().strip()


@pytest.fixture
async def admin_client(app: FastAPI, admin_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """`client` signed in with the first-start admin key (long timeout: jobs train meanwhile)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://testserver", headers=bearer(admin_key), timeout=60
    ) as http:
        yield http


@pytest.fixture
async def idle_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app whose runner is off: submitted jobs stay queued."""
    application = create_app(settings, start_runner=False)
    async with application.router.lifespan_context(application):
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(key)
        ) as http:
            yield http
