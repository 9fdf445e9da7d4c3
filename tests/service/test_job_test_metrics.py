"""A job says where its test metrics are: the registered version (name + number) and the
test-set metrics stored on it, on GET /v1/jobs/{id}, the list and the SSE `end` event;
the list reads them for a whole page in a fixed number of queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jobs_helpers import job_settings, parse_events, wait_for_job, xor_spec
from sqlalchemy import event

from service.config import Settings
from service.db import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(database_url, tmp_path / "data", max_jobs_per_key=3)


def _done(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


async def _train(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    body = {"spec": xor_spec(epochs=3), "dataset": "xor", "model_name": name}
    response = await client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    submitted: dict[str, Any] = response.json()
    # Nothing is registered when the job is queued.
    assert submitted["model_version"] is None and submitted["test_metrics"] is None
    job = await wait_for_job(client, submitted["id"], _done)
    assert job["status"] == "succeeded", job
    return job


async def test_job_carries_its_version_and_the_versions_test_metrics(
    admin_client: httpx.AsyncClient,
) -> None:
    job = await _train(admin_client, "xor-net")
    ref = job["model_version"]
    assert ref["model_name"] == "xor-net" and ref["version"] == 1
    version = await admin_client.get("/v1/models/xor-net/versions/1")
    assert version.status_code == 200, version.text
    stored = version.json()["metrics"]["test"]
    # The very metrics of the held-out split stored on the version, not the last epoch's.
    assert job["test_metrics"] == stored
    assert job["test_metrics"]["n_samples"] == 200  # 20% of the 1000 xor points
    assert len(job["test_metrics"]["confusion_matrix"]) == 2
    assert job["test_metrics"] != job["metrics"]

    events = parse_events((await admin_client.get(f"/v1/jobs/{job['id']}/events")).text)
    end = events[-1]
    assert end["event"] == "end"
    assert end["data"]["model_version"] == ref
    assert end["data"]["test_metrics"] == stored


async def test_list_reads_versions_for_the_page_in_fixed_queries(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    database: Database = app.state.db
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    async def listed() -> tuple[list[dict[str, Any]], int]:
        statements.clear()
        event.listen(database.engine, "before_cursor_execute", count)
        try:
            response = await admin_client.get("/v1/jobs")
        finally:
            event.remove(database.engine, "before_cursor_execute", count)
        assert response.status_code == 200, response.text
        # Only the list's own reads: the key check and the runner may run statements too.
        reads = [s for s in statements if "model_versions" in s or "FROM training_jobs" in s]
        return response.json()["items"], len(reads)

    async def fewest_reads() -> tuple[list[dict[str, Any]], int]:
        """The runner's tick may fall inside a listing and only ever adds statements: the
        fewest over three listings are the list's own."""
        runs = [await listed() for _ in range(3)]
        return runs[-1][0], min(reads for _, reads in runs)

    first = await _train(admin_client, "a")
    items, one_job = await fewest_reads()
    assert [i["test_metrics"] for i in items] == [first["test_metrics"]]

    await _train(admin_client, "b")
    await _train(admin_client, "c")
    items, three_jobs = await fewest_reads()
    assert [i["model_version"]["model_name"] for i in items] == ["c", "b", "a"]
    assert all(i["test_metrics"]["accuracy"] is not None for i in items)
    assert three_jobs == one_job  # no query per job
