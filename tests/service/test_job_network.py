"""GET /v1/jobs/{id}/network: a running job's latest checkpoint, layer by layer, as JSON."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from jobs_helpers import job_settings, wait_for_job
from service_helpers import bearer
from serving_helpers import db

from service import auth as keys
from service.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return job_settings(sqlite_url, tmp_path / "data", checkpoint_every=2)


def featured_spec() -> dict[str, Any]:
    return {
        "input_dim": 2,
        "preprocess": [{"type": "features", "columns": ["x1^2", "x2^2", "x1*x2"]}],
        "layers": [
            {"type": "dense", "units": 3, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.01},
        "training": {"epochs": 60, "batch_size": 1, "seed": 1},
    }


async def test_network_of_a_running_job_then_other_owner_404_and_409_when_done(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    body = {"spec": featured_spec(), "dataset": "circle", "model_name": "net"}
    job = (await admin_client.post("/v1/jobs", json=body)).json()
    await wait_for_job(admin_client, job["id"], lambda j: j["progress"]["epoch"] >= 3)

    response = await admin_client.get(f"/v1/jobs/{job['id']}/network")
    assert response.status_code == 200, response.text
    net = response.json()
    assert net["job_id"] == job["id"] and net["epoch"] >= 2 and net["input_dim"] == 2
    assert net["features"] == ["x1^2", "x2^2", "x1*x2"]
    assert [(layer["units"], layer["activation"]) for layer in net["layers"]] == [
        (3, "tanh"),
        (2, "softmax"),
    ]
    assert np.array(net["layers"][0]["weights"]).shape == (3, 3)
    assert np.array(net["layers"][1]["weights"]).shape == (3, 2)
    assert len(net["layers"][1]["biases"]) == 2

    # The weights are the checkpoint's: evaluated by hand they give its predictions.
    point = [1.5, -2.0]
    h = np.array([point[0] ** 2, point[1] ** 2, point[0] * point[1]])
    for layer in net["layers"]:
        z = h @ np.array(layer["weights"]) + np.array(layer["biases"])
        h = np.tanh(z) if layer["activation"] == "tanh" else np.exp(z) / np.exp(z).sum()
    preview = await admin_client.post(f"/v1/jobs/{job['id']}/predict", json={"instances": [point]})
    if preview.json().get("epoch") == net["epoch"]:  # no newer checkpoint in between
        probabilities = preview.json()["predictions"][0]["probabilities"]
        assert [probabilities[k] for k in sorted(probabilities)] == pytest.approx(h, abs=1e-4)

    alice = bearer(keys.create_key(db(app), "alice").key)
    other = await admin_client.get(f"/v1/jobs/{job['id']}/network", headers=alice)
    assert other.status_code == 404

    await admin_client.post(f"/v1/jobs/{job['id']}/cancel")
    await wait_for_job(admin_client, job["id"], lambda j: j["status"] == "cancelled")
    gone = await admin_client.get(f"/v1/jobs/{job['id']}/network")
    assert gone.status_code == 409 and gone.json()["error"]["type"] == "no_checkpoint"


async def test_unknown_job_is_404(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/v1/jobs/job_nope/network")
    assert response.status_code == 404
