"""/healthz, /readyz, Prometheus /metrics and /v1/whoami."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from service_helpers import bearer, make_settings

from service.app import create_app
from service.config import Settings
from service.db import Database
from service.models import JobStatus, TrainingJob

pytestmark = pytest.mark.anyio


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_ready(client: httpx.AsyncClient, app: FastAPI) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "database": app.state.db.engine.dialect.name}


async def test_readyz_before_startup_is_503(settings: Settings) -> None:
    app = create_app(settings)  # lifespan not run: not migrated, no admin key yet
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "not_ready"
    app.state.db.dispose()


async def test_readyz_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    db_dir = tmp_path / "db"
    settings = make_settings(f"sqlite:///{db_dir / 'nns.db'}", tmp_path / "data")
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            assert (await http.get("/readyz")).status_code == 200
            database: Database = app.state.db
            database.dispose()
            shutil.rmtree(db_dir)
            response = await http.get("/readyz")
            assert (await http.get("/healthz")).status_code == 200  # alive, just not ready
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "not_ready"
    assert "database unreachable" in error["message"]


async def test_whoami(client: httpx.AsyncClient, admin_key: str) -> None:
    response = await client.get("/v1/whoami", headers=bearer(admin_key))
    assert response.status_code == 200
    body = response.json()
    assert body["owner"] == "admin" and body["is_admin"] is True
    assert admin_key.startswith(body["key_prefix"] + "_")


async def test_metrics_count_requests_by_route_template(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    await client.get("/healthz")
    await client.get("/healthz")
    await client.get("/v1/whoami")
    await client.get("/v1/whoami", headers=bearer(admin_key))
    await client.get("/does/not/exist/12345")
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = _samples(response.text)

    def requests(method: str, route: str, status: str) -> float:
        labels = frozenset({"method": method, "route": route, "status": status}.items())
        return samples.get(("nns_http_requests_total", labels), 0.0)

    assert requests("GET", "/healthz", "200") == 2
    assert requests("GET", "/v1/whoami", "401") == 1
    assert requests("GET", "/v1/whoami", "200") == 1
    assert requests("GET", "<unmatched>", "404") == 1
    assert "/does/not/exist/12345" not in response.text
    count = frozenset({"method": "GET", "route": "/healthz"}.items())
    assert samples[("nns_http_request_duration_seconds_count", count)] == 2


async def test_metrics_report_jobs_by_state(client: httpx.AsyncClient, app: FastAPI) -> None:
    if app.state.runner is not None:
        await app.state.runner.stop()  # or it would start the queued rows while we count
    database: Database = app.state.db
    with database.write_session() as session:
        for status in (JobStatus.QUEUED, JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.FAILED):
            session.add(TrainingJob(owner="o", spec={}, model_name="m", status=status))
    samples = _samples((await client.get("/metrics")).text)
    jobs = {
        dict(labels)["state"]: value
        for (name, labels), value in samples.items()
        if name == "nns_jobs"
    }
    assert jobs == {
        "queued": 2,
        "running": 1,
        "succeeded": 0,
        "failed": 1,
        "cancelling": 0,
        "cancelled": 0,
    }
