"""Helpers for the training-job tests: specs, waiting, settings and real server processes."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from service_helpers import bearer, make_settings
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from service.app import create_app
from service.config import Settings
from service.db import Database
from service.models import TrainingJob

TERMINAL = {"succeeded", "failed", "cancelled"}


@asynccontextmanager
async def running_app(
    settings: Settings, **kwargs: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app started (its runner too, unless start_runner=False), and a client with the
    admin key."""
    application = create_app(settings, **kwargs)
    async with application.router.lifespan_context(application):
        key = settings.admin_key_path.read_text().strip()
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=bearer(key), timeout=60
        ) as client:
            yield application, client


def xor_spec(epochs: int = 6, batch_size: int = 16, lr: float = 0.05) -> dict[str, Any]:
    """A tiny XOR classifier: a job with it takes about a second, mostly process start-up."""
    return {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": lr},
        "training": {"epochs": epochs, "batch_size": batch_size, "seed": 1},
    }


def slow_spec(epochs: int = 60) -> dict[str, Any]:
    """Batch size 1 on XOR: roughly 0.1-0.2 s per epoch, time enough to act mid-job."""
    return xor_spec(epochs=epochs, batch_size=1, lr=0.01)


def job_settings(database_url: str, data_dir: Path, **overrides: Any) -> Settings:
    """Settings with short heartbeats and grace periods so tests do not wait for defaults."""
    values: dict[str, Any] = {
        "heartbeat_seconds": 0.3,
        "lease_seconds": 6.0,
        "cancel_grace_seconds": 2.0,
        "checkpoint_every": 2,
    }
    values.update(overrides)
    return make_settings(database_url, data_dir, **values)


async def wait_for_job(
    client: httpx.AsyncClient,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 60.0,
) -> dict[str, Any]:
    """Poll GET /v1/jobs/{id} until `until(job)` holds."""
    return await poll_resource(client, f"/v1/jobs/{job_id}", "job", until, timeout)


async def poll_resource(
    client: httpx.AsyncClient,
    path: str,
    noun: str,
    until: Callable[[dict[str, Any]], Any],
    timeout: float,
) -> dict[str, Any]:
    """GET `path` every 0.1 s until `until(resource)` holds; returns the resource."""
    deadline = time.monotonic() + timeout
    while True:
        response = await client.get(path)
        assert response.status_code == 200, response.text
        resource: dict[str, Any] = response.json()
        if until(resource):
            return resource
        assert time.monotonic() < deadline, f"{noun} never reached the condition: {resource}"
        await asyncio.sleep(0.1)


def wait_for_job_sync(
    base: str,
    key: str,
    job_id: str,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = 60.0,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{base}/v1/jobs/{job_id}", headers=auth(key), timeout=10)
        assert response.status_code == 200, response.text
        job: dict[str, Any] = response.json()
        if until(job):
            return job
        assert time.monotonic() < deadline, f"job never reached the condition: {job}"
        time.sleep(0.1)


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def parse_events(text: str) -> list[dict[str, Any]]:
    """SSE wire text -> [{"event", "id", "data"}] (data JSON-decoded)."""
    events = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        event: dict[str, Any] = {"event": "message", "id": None, "data": None}
        data = []
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                data.append(value)
            elif name in ("event", "id"):
                event[name] = value
        if data:
            event["data"] = json.loads("\n".join(data))
            events.append(event)
    return events


def row_is_free(database: Database, job_id: str) -> bool:
    """Whether no process holds a lock on the job's row now (SQLite's write lock, Postgres's
    row lock), so a process frozen at this moment holds none."""
    if database.is_sqlite:
        connection = sqlite3.connect(database.engine.url.database or "", timeout=0.05)
        try:
            connection.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError:
            return False
        finally:
            connection.close()
    with database.engine.connect() as connection:
        query = select(TrainingJob.id).where(TrainingJob.id == job_id)
        try:
            connection.execute(query.with_for_update(nowait=True))
            return True
        except OperationalError:
            return False
        finally:
            connection.rollback()
