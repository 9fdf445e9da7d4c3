"""The lr_range_test job kind over ASGI, with the embedded runner running it for real."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jobs_helpers import job_settings, wait_for_job, xor_spec
from sqlalchemy import func, select

from service.config import Settings
from service.db import Database
from service.models import MetricPoint, ModelVersion

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(database_url, tmp_path / "data")


def _finished(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


async def test_a_range_test_job_answers_the_curve_and_a_rate_and_registers_nothing(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    spec = xor_spec(batch_size=32)
    spec["optimizer"] = {"name": "sgd", "lr": 0.1}
    body = {
        "spec": spec,
        "dataset": "xor",
        "model_name": "xor-net",
        "kind": "lr_range_test",
        "lr_range": {"min_lr": 1e-4, "max_lr": 1000, "num_steps": 150},
    }
    response = await admin_client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["kind"] == "lr_range_test" and queued["lr_range"] is None
    assert queued["hyperparameters"]["lr_range"]["num_steps"] == 150

    job = await wait_for_job(admin_client, queued["id"], _finished)
    assert job["status"] == "succeeded", job["failure_reason"]
    assert job["model_version"] is None and job["metrics"] is None
    result = job["lr_range"]
    points = result["points"]
    assert 10 < len(points) <= 150
    assert points[0]["lr"] == pytest.approx(1e-4)
    assert all(a["lr"] < b["lr"] for a, b in itertools.pairwise(points))
    smoothed = [p["smoothed"] for p in points]
    lowest = smoothed.index(min(smoothed))
    assert min(smoothed) < smoothed[0]
    assert result["suggested_lr"] is not None
    assert points[0]["lr"] <= result["suggested_lr"] <= points[lowest]["lr"]
    assert result["stop_reason"] in ("finished", "diverged")

    database: Database = app.state.db
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
        points_stored = select(func.count()).select_from(MetricPoint)
        assert session.scalar(points_stored.where(MetricPoint.job_id == job["id"])) == 0
    listed = (await admin_client.get("/v1/jobs")).json()["items"]
    assert listed[0]["lr_range"] == result


async def test_a_training_job_is_of_kind_train(idle_client: httpx.AsyncClient) -> None:
    body = {"spec": xor_spec(), "dataset": "xor", "model_name": "m"}
    job = (await idle_client.post("/v1/jobs", json=body)).json()
    assert job["kind"] == "train" and job["lr_range"] is None
    assert "kind" not in job["hyperparameters"]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"lr_range": {"min_lr": 0}}, "body.lr_range.min_lr"),
        ({"lr_range": {"max_lr": -1}}, "body.lr_range.max_lr"),
        ({"lr_range": {"num_steps": 5}}, "body.lr_range.num_steps"),
        ({"lr_range": {"num_steps": 100_000}}, "body.lr_range.num_steps"),
        ({"lr_range": {"num_steps": 10.5}}, "body.lr_range.num_steps"),
        ({"lr_range": {"surprise": 1}}, "body.lr_range.surprise"),
        ({"lr_range": {"min_lr": 1.0, "max_lr": 0.5}}, "lr_range.max_lr"),
        ({"kind": "nope"}, "body.kind"),
    ],
)
async def test_bad_range_options_name_the_field(
    idle_client: httpx.AsyncClient, extra: dict[str, Any], field: str
) -> None:
    body = {"spec": xor_spec(), "dataset": "xor", "model_name": "m", "kind": "lr_range_test"}
    response = await idle_client.post("/v1/jobs", json={**body, **extra})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field


async def test_range_options_need_the_range_test_kind(idle_client: httpx.AsyncClient) -> None:
    body = {"spec": xor_spec(), "dataset": "xor", "model_name": "m", "lr_range": {}}
    response = await idle_client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "lr_range"
