"""The FastAPI application factory.

`create_app(settings)` builds a fully independent app (its own engine, metrics registry and
job runner), so tests and benchmarks can run several side by side. Start-up migrates the
database, makes sure an admin key exists, then starts the job runner; shutdown reverses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio.to_thread
from fastapi import FastAPI
from starlette.types import ASGIApp

from service import migrate
from service.api.dashboard import mount_dashboard
from service.api.docs import mount_docs
from service.api.errors import ErrorShapeMiddleware, install_error_handlers
from service.api.openapi import add_read_bodies, strict_openapi_31
from service.api.routes import routers
from service.auth import ensure_admin_key
from service.config import Settings
from service.db import Database
from service.jobs.runner import make_runner
from service.observability import Metrics, MetricsMiddleware
from service.rate_limit import TokenBucketLimiter
from service.registry.cache import ModelCache
from service.version import NAME, release


class ServiceApp(FastAPI):
    """FastAPI with two ASGI wrappers outside everything else (see ErrorShapeMiddleware),
    and an OpenAPI document that is strictly valid 3.1 (service/api/openapi.py)."""

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        return MetricsMiddleware(ErrorShapeMiddleware(inner), self.state.metrics)

    def openapi(self) -> dict[str, Any]:
        fresh = self.openapi_schema is None
        document = super().openapi()
        return strict_openapi_31(add_read_bodies(document)) if fresh else document


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database: Database = app.state.db
    await anyio.to_thread.run_sync(migrate.upgrade, settings, "head", database)
    await anyio.to_thread.run_sync(ensure_admin_key, database, settings)
    runner = make_runner(settings, database) if app.state.start_runner else None
    app.state.runner = runner
    if runner is not None:
        await runner.start()
    app.state.started = True
    try:
        yield
    finally:
        app.state.started = False
        try:
            if runner is not None:
                await runner.stop()
        finally:
            database.dispose()


def create_app(settings: Settings | None = None, *, start_runner: bool = True) -> FastAPI:
    """Build the service. `start_runner=False` serves the API without running jobs."""
    settings = settings or Settings()
    app = ServiceApp(
        title=NAME,
        version=release(),
        description="Train NumPy neural networks as background jobs and serve predictions.",
        lifespan=lifespan,
        # Starlette answers 413 past this; ErrorShapeMiddleware gives it the JSON error shape.
        # Upload routes raise their own limit (settings.max_upload_bytes) with max_body_size=.
        max_body_size=settings.max_body_bytes,
        # FastAPI's pages load Swagger UI and ReDoc from a CDN; mount_docs serves them offline.
        docs_url=None,
        redoc_url=None,
    )
    # Everything per app lives on app.state (tests run several apps side by side);
    # service/deps.py hands it to the handlers.
    app.state.settings = settings
    app.state.db = Database(settings)
    app.state.metrics = Metrics(app.state.db)
    app.state.model_cache = ModelCache()
    app.state.predict_limiter = TokenBucketLimiter(settings.predict_rate_limit)
    app.state.start_runner = start_runner
    app.state.runner = None  # set by the lifespan
    app.state.started = False  # True between start-up and shutdown (see /readyz)
    install_error_handlers(app)
    for router, max_body_size in routers(settings):
        app.include_router(router, max_body_size=max_body_size)
    mount_docs(app)
    mount_dashboard(app)
    return app
