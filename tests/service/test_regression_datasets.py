"""The Playground's regression sets (plane, multi-gaussian) as built-in datasets: listed as
regression, trained by name with an identity output and MSE, drawn from a checkpoint
(GET /v1/jobs/{id}/network) and answering real values on :predict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from jobs_helpers import job_settings, wait_for_job

from service.config import Settings

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(sqlite_url: str, tmp_path: Path) -> Settings:
    return job_settings(sqlite_url, tmp_path / "data", checkpoint_every=2)


def regression_spec(epochs: int, batch_size: int, hidden: int = 4) -> dict[str, Any]:
    """What the Playground submits for a regression set: one identity output unit, MSE."""
    return {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": hidden, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "identity"},
        ],
        "loss": "mse",
        "optimizer": {"name": "adam", "lr": 0.03},
        "training": {"epochs": epochs, "batch_size": batch_size, "seed": 1},
    }


def _done(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


async def test_regression_sets_are_listed_as_regression(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/v1/datasets")
    assert response.status_code == 200, response.text
    by_name = {d["name"]: d for d in response.json()["datasets"]}
    for name in ("plane", "multi-gaussian"):
        assert by_name[name]["task"] == "regression"
        assert by_name[name]["n_features"] == 2 and by_name[name]["classes"] == []
        assert by_name[name]["available"] is True


async def test_plane_job_succeeds_and_predicts_real_values(
    admin_client: httpx.AsyncClient,
) -> None:
    body = {
        "spec": regression_spec(epochs=40, batch_size=8),
        "dataset": "plane",
        "model_name": "plane-net",
        "n_samples": 400,
        "noise": 0.0,
    }
    response = await admin_client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job = await wait_for_job(admin_client, response.json()["id"], _done, timeout=120)
    assert job["status"] == "succeeded", job
    test = job["test_metrics"]
    assert test["n_samples"] == 80 and "accuracy" not in test
    assert test["loss"] == pytest.approx(test["mse"], rel=1e-4)
    assert test["r2"] > 0.95  # the plane is linear: easy for any net

    points = [[3.0, 1.0], [-2.0, -4.0], [0.5, -0.5]]
    predicted = await admin_client.post("/v1/models/plane-net:predict", json={"instances": points})
    assert predicted.status_code == 200, predicted.text
    predictions = predicted.json()["predictions"]
    assert all(set(p) == {"values"} and len(p["values"]) == 1 for p in predictions)
    values = [p["values"][0] for p in predictions]
    assert all(isinstance(v, float) for v in values)
    np.testing.assert_allclose(values, [(a + b) / 10 for a, b in points], atol=0.1)


async def test_network_of_a_regression_job_ends_in_one_identity_unit(
    admin_client: httpx.AsyncClient,
) -> None:
    body = {
        "spec": regression_spec(epochs=60, batch_size=1, hidden=3),
        "dataset": "multi-gaussian",
        "model_name": "bumps",
        "noise": 0.1,
    }
    response = await admin_client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    await wait_for_job(admin_client, job_id, lambda j: j["progress"]["epoch"] >= 3)

    net_response = await admin_client.get(f"/v1/jobs/{job_id}/network")
    assert net_response.status_code == 200, net_response.text
    net = net_response.json()
    assert [(layer["units"], layer["activation"]) for layer in net["layers"]] == [
        (3, "tanh"),
        (1, "identity"),
    ]
    # Evaluated by hand, the weights give the checkpoint's own real-valued prediction.
    point = [-4.0, 2.5]
    h = np.array(point)
    for layer in net["layers"]:
        z = h @ np.array(layer["weights"]) + np.array(layer["biases"])
        h = np.tanh(z) if layer["activation"] == "tanh" else z
    preview = await admin_client.post(f"/v1/jobs/{job_id}/predict", json={"instances": [point]})
    assert preview.status_code == 200, preview.text
    if preview.json()["epoch"] == net["epoch"]:  # no newer checkpoint in between
        assert preview.json()["predictions"][0]["values"] == pytest.approx(h, abs=1e-4)

    await admin_client.post(f"/v1/jobs/{job_id}/cancel")
    await wait_for_job(admin_client, job_id, _done)
