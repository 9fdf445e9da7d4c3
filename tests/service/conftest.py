"""Fixtures for the service tests: a real database per test, a started app, an HTTP client.

`database_url` gives each test a fresh SQLite file. A test whose point is the difference between
the backends (`pytest.mark.both_backends`) also runs on a fresh Postgres schema (selected through
search_path), and with NNS_TEST_ALL_BACKENDS=1 (CI) every `database_url` test does; the Postgres
variant skips without a reachable server (fails with NNS_TEST_REQUIRE_SERVICES=1).
Async tests run on anyio's pytest plugin (shipped with anyio): mark them `pytest.mark.anyio`.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from environment import all_backends
from fastapi import FastAPI
from service_helpers import bearer, make_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from service import migrate
from service.app import create_app
from service.config import Settings
from service.db import Database


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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize `database_url`: SQLite always; Postgres for `both_backends` tests, or for
    all with NNS_TEST_ALL_BACKENDS=1."""
    if "database_url" not in metafunc.fixturenames:
        return
    backends: list[Any] = ["sqlite"]
    if all_backends() or metafunc.definition.get_closest_marker("both_backends"):
        backends.append(pytest.param("postgres", marks=pytest.mark.postgres))
    metafunc.parametrize("database_url", backends, indirect=True)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of each backend in turn (see pytest_generate_tests)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_schema_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "data")


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session (test_migrations.py is where the
    migrations themselves are tested)."""
    path = tmp_path_factory.mktemp("migrated") / "nns.db"
    settings = make_settings(f"sqlite:///{path}", path.parent / "data")
    database = Database(settings)
    try:
        migrate.upgrade(settings, "head", database)
    finally:
        database.dispose()
    return path


@pytest.fixture
def fresh_database(settings: Settings, migrated_sqlite: Path) -> Settings:
    """`settings` whose new SQLite database starts as a copy of the migrated one: the app's
    start-up then finds the schema at head, as a restarted server does, instead of spending
    a tenth of a second per test migrating it again. Postgres schemas are migrated as usual."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        target = Path(url.database)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(migrated_sqlite, target)
    return settings


@pytest.fixture
async def app(fresh_database: Settings) -> AsyncIterator[FastAPI]:
    """A started app (httpx's ASGITransport does not run the lifespan, so it is run here)."""
    application = create_app(fresh_database)
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
async def idle_client(fresh_database: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An admin client of an app whose runner is off: submitted jobs stay queued."""
    settings = fresh_database
    application = create_app(settings, start_runner=False)
    async with application.router.lifespan_context(application):
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(key)
        ) as http:
            yield http
