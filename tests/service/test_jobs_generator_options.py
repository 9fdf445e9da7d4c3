"""n_samples and noise on a job for a synthetic dataset: used for training, refused elsewhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jobs_helpers import job_settings, wait_for_job, xor_spec
from sqlalchemy import select

from service.config import Settings
from service.models import ModelVersion

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return job_settings(sqlite_url, tmp_path / "data")


def _body(**extra: Any) -> dict[str, Any]:
    return {"spec": xor_spec(epochs=2), "dataset": "spiral", "model_name": "spiral", **extra}


async def test_synthetic_job_trains_on_the_requested_size_and_noise(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    response = await admin_client.post("/v1/jobs", json=_body(n_samples=150, noise=0.3))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["hyperparameters"] == {"n_samples": 150, "noise": 0.3}
    done = await wait_for_job(admin_client, job["id"], lambda j: j["status"] == "succeeded")
    with app.state.db.session() as session:
        version = session.scalar(
            select(ModelVersion).where(ModelVersion.id == done["model_version"]["id"])
        )
        assert version is not None
        assert version.metrics["test"]["n_samples"] == 30  # 20% of the 150 generated points


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"dataset": "mnist", "n_samples": 100}, "n_samples"),
        ({"dataset": "sms-spam", "noise": 0.1}, "noise"),
        ({"noise": -0.1}, "noise"),
        ({"noise": 2.0}, "noise"),
        ({"n_samples": 5}, "n_samples"),
    ],
)
async def test_generator_options_are_refused_where_they_do_not_apply(
    admin_client: httpx.AsyncClient, extra: dict[str, Any], field: str
) -> None:
    response = await admin_client.post("/v1/jobs", json=_body(**extra))
    assert response.status_code == 422, response.text
    assert field in str(response.json()["error"]), response.text
