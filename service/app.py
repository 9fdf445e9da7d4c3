"""The FastAPI application factory.

`create_app(settings)` builds a fully independent app (its own engine, metrics registry and
job runner), so tests and benchmarks can run several side by side. Start-up migrates the
database, makes sure an admin key exists, then starts the job runner; shutdown reverses it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

import anyio.to_thread
from fastapi import FastAPI
from starlette.types import ASGIApp

from service import migrate
from service.api import health, job_preview, jobs
from service.api.dashboard import mount_dashboard
from service.api.serving import include_routers
from service.auth import ensure_admin_key
from service.config import Settings
from service.db import Database
from service.errors import ErrorShapeMiddleware, install_error_handlers
from service.jobs.runner import JobRunner, make_runner
from service.observability import Metrics, MetricsMiddleware


def _version() -> str:
    try:
        return version("nn-service")
    except PackageNotFoundError:  # running from a checkout that is not installed
        return "0.0.0"


def make_job_runner(app: FastAPI) -> JobRunner | None:
    """JOB RUNNER HOOK: return the runner for app.state.settings.runner, or None.

    runner="embedded": a supervisor in this process runs each job in a subprocess
    (service/jobs/embedded.py). Other runners leave the jobs to their own workers.
    """
    return make_runner(app.state.settings, app.state.db)


class ServiceApp(FastAPI):
    """FastAPI with two ASGI wrappers outside everything else (see ErrorShapeMiddleware)."""

    def build_middleware_stack(self) -> ASGIApp:
        inner = super().build_middleware_stack()
        return MetricsMiddleware(ErrorShapeMiddleware(inner), self.state.metrics)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    database: Database = app.state.db
    await anyio.to_thread.run_sync(migrate.upgrade, settings, "head", database)
    await anyio.to_thread.run_sync(ensure_admin_key, database, settings)

    # --- JOB RUNNER HOOK: start -------------------------------------------------------------
    runner = make_job_runner(app) if app.state.start_runner else None
    app.state.runner = runner
    if runner is not None:
        await runner.start()
    # -----------------------------------------------------------------------------------------

    app.state.started = True
    try:
        yield
    finally:
        app.state.started = False
        try:
            # --- JOB RUNNER HOOK: stop ----------------------------------------------------------
            if runner is not None:
                await runner.stop()
            # -------------------------------------------------------------------------------------
        finally:
            database.dispose()


def create_app(settings: Settings | None = None, *, start_runner: bool = True) -> FastAPI:
    """Build the service. `start_runner=False` serves the API without running jobs."""
    settings = settings or Settings()
    app = ServiceApp(
        title="nn-service",
        version=_version(),
        description="Train NumPy neural networks as background jobs and serve predictions.",
        lifespan=lifespan,
        # Starlette answers 413 past this; ErrorShapeMiddleware gives it the JSON error shape.
        # Upload routes raise their own limit (settings.max_upload_bytes) with max_body_size=.
        max_body_size=settings.max_body_bytes,
    )
    app.state.settings = settings
    app.state.db = Database(settings)
    app.state.metrics = Metrics(app.state.db)
    app.state.start_runner = start_runner
    app.state.runner = None
    app.state.started = False
    install_error_handlers(app)
    # Routes are matched in order: the prediction routes (the hot path) come first.
    include_routers(app, settings)
    app.include_router(health.router)
    app.include_router(jobs.router)
    app.include_router(job_preview.router)
    mount_dashboard(app)
    return app
