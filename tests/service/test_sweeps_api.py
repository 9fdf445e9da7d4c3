"""Sweeps through the API with the embedded runner: real trial jobs in real child processes.

Trials train XOR for a few epochs, so a whole sweep takes seconds. Validation errors name
the path at fault.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from jobs_helpers import job_settings, slow_spec, xor_spec
from sqlalchemy import select
from sweeps_helpers import finished, wait_for_sweep

from service.config import Settings
from service.db import Database
from service.models import SweepTrial

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(database_url, tmp_path / "data", max_jobs_per_key=3, max_epochs=500)


def sweep_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "dataset": "xor",
        "model_name": "xor-sweep",
        "spec": xor_spec(epochs=4),
        "search_space": {
            "optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
            "layers[0].units": {"type": "int", "low": 2, "high": 16},
            "layers[:-1].activation": {"type": "categorical", "choices": ["tanh", "relu"]},
        },
        "objective": {"metric": "accuracy", "direction": "maximize"},
        "n_trials": 4,
        "max_parallel": 2,
        "sampler": "tpe",
        "pruner": "none",
        "seed": 7,
    }
    body.update(overrides)
    return body


@pytest.mark.both_backends
async def test_sweep_runs_its_trials_as_jobs_and_registers_the_best(
    admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    response = await admin_client.post("/v1/sweeps", json=sweep_body())
    assert response.status_code == 202, response.text
    sweep_id = response.json()["id"]
    assert response.headers["location"] == f"/v1/sweeps/{sweep_id}"
    assert len(response.json()["trials"]) == 2  # max_parallel trials queued at once

    done = await wait_for_sweep(admin_client, sweep_id, finished)
    assert done["status"] == "succeeded", done
    assert [t["number"] for t in done["trials"]] == [0, 1, 2, 3]
    assert done["counts"]["complete"] == 4
    for trial in done["trials"]:
        assert set(trial["params"]) == set(sweep_body()["search_space"])
        assert trial["job_status"] == "succeeded"
        assert sorted(trial["intermediate_values"]) == ["1", "2", "3", "4"]
        assert trial["value"] == trial["intermediate_values"]["4"]
    best = done["best_trial"]
    assert best["value"] == max(t["value"] for t in done["trials"])
    assert best["model_version"]["model_name"] == "xor-sweep"
    assert best["model_version"]["version"] == 1
    assert done["importances"] is not None
    assert set(done["importances"]) == set(sweep_body()["search_space"])

    # Trials are ordinary jobs, marked with their sweep.
    jobs = (await admin_client.get(done["links"]["jobs"])).json()["items"]
    assert len(jobs) == 4
    assert (await admin_client.get("/v1/jobs")).json()["total"] == 4
    assert (await admin_client.get("/v1/jobs?sweep_id=sweep_other")).json()["total"] == 0
    assert {j["hyperparameters"]["sweep_id"] for j in jobs} == {sweep_id}
    best_job = next(j for j in jobs if j["id"] == best["job_id"])
    assert best_job["model_version"]["version"] == 1
    trial_params = {j["hyperparameters"]["trial"]: j["hyperparameters"]["params"] for j in jobs}
    for trial in done["trials"]:
        assert trial_params[trial["number"]] == trial["params"]
        # The params were applied to the job's spec: every hidden layer got the activation.
        job = next(j for j in jobs if j["id"] == trial["job_id"])
        assert job["spec"]["layers"][0]["activation"] == trial["params"]["layers[:-1].activation"]
        assert job["spec"]["layers"][0]["units"] == trial["params"]["layers[0].units"]
        assert job["spec"]["layers"][1]["activation"] == "softmax"

    # The version carries the sweep and the params; it serves predictions.
    version = (await admin_client.get("/v1/models/xor-sweep/versions/1")).json()
    assert version["job_id"] == best["job_id"]
    assert (version["sweep_id"], version["sweep_params"]) == (sweep_id, best["params"])
    predicted = await admin_client.post(
        "/v1/models/xor-sweep:predict", json={"instances": [[0.5, -0.5]]}
    )
    assert predicted.status_code == 200, predicted.text
    database = Database(settings)
    try:
        with database.session() as session:
            kept = session.scalars(select(SweepTrial.weights)).all()
            assert kept == [None] * 4  # registered, so no trial keeps weights
    finally:
        database.dispose()


async def test_weak_trials_are_pruned_at_once(admin_client: httpx.AsyncClient) -> None:
    """The first trial (a good learning rate) sets the bar; the second, with a learning rate
    too small to learn anything, is stopped by the median pruner after its first epoch."""
    body = sweep_body(
        spec=xor_spec(epochs=30),
        search_space={"optimizer.lr": {"type": "float", "low": 1e-9, "high": 0.1, "log": True}},
        initial_trials=[{"optimizer.lr": 0.05}, {"optimizer.lr": 1e-9}],
        objective={"metric": "loss", "direction": "minimize"},
        n_trials=2,
        max_parallel=1,
        pruner={"name": "median", "n_startup_trials": 1},
    )
    response = await admin_client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    done = await wait_for_sweep(admin_client, response.json()["id"], finished)
    assert done["status"] == "succeeded", done
    good, weak = done["trials"]
    assert good["state"] == "complete" and good["epoch"] == 30
    assert weak["state"] == "pruned", weak
    assert weak["epoch"] == 1 and sorted(weak["intermediate_values"]) == ["1"]
    assert weak["job_status"] == "cancelled"
    assert "pruned" in weak["failure_reason"]
    assert done["counts"] == {
        "running": 0,
        "complete": 1,
        "pruned": 1,
        "failed": 0,
        "cancelled": 0,
    }
    assert done["best_trial"]["number"] == 0


async def test_cancel_stops_new_trials_and_running_ones(admin_client: httpx.AsyncClient) -> None:
    body = sweep_body(spec=slow_spec(epochs=300), n_trials=10, max_parallel=2)
    response = await admin_client.post("/v1/sweeps", json=body)
    sweep_id = response.json()["id"]
    await wait_for_sweep(
        admin_client,
        sweep_id,
        lambda s: sum(t["job_status"] == "running" and t["epoch"] >= 1 for t in s["trials"]) == 2,
    )
    cancelled = await admin_client.post(f"/v1/sweeps/{sweep_id}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["cancel_requested"] is True
    done = await wait_for_sweep(admin_client, sweep_id, finished)
    assert done["status"] == "cancelled"
    assert len(done["trials"]) == 2
    assert {t["state"] for t in done["trials"]} == {"cancelled"}
    assert {t["job_status"] for t in done["trials"]} == {"cancelled"}
    assert all(t["epoch"] < 300 for t in done["trials"])
    again = await admin_client.post(f"/v1/sweeps/{sweep_id}/cancel")
    assert again.json()["status"] == "cancelled"
    jobs = (await admin_client.get("/v1/jobs")).json()
    assert jobs["total"] == 2


def _space(path: str, **definition: Any) -> dict[str, Any]:
    return {"search_space": {path: definition}}


FLOAT_01 = {"type": "float", "low": 0.1, "high": 1}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (_space("optimizer.nope[0].x", type="int", low=1, high=2), "optimizer.nope[0].x"),
        (_space("layers[5].units", type="int", low=1, high=2), "layers[5].units"),
        (_space("layers[0].units", type="int", low=9, high=2), "layers[0].units.high"),
        (_space("layers[0].units", type="int", low=1.5, high=2), "layers[0].units.low"),
        (
            _space("layers[0].activation", type="categorical", choices=["tanh", "nope"]),
            "layers[0].activation",
        ),
        (_space("optimizer.lr", type="float", low=0, high=1, log=True), "optimizer.lr.low"),
        (_space("optimizer.lr", type="gaussian"), "optimizer.lr.type"),
        ({"sampler": "grid", **_space("optimizer.lr", **FLOAT_01)}, "optimizer.lr.step"),
        (_space("training.epochs", type="int", low=1, high=10**6), "training.epochs"),
        ({"pruner": "sometimes"}, "pruner"),
        ({"pruner": {"name": "median", "patience": 3}}, "pruner.patience"),
        ({"objective": {"metric": "val_accuracy"}}, "objective.metric"),
        ({"objective": {"metric": "f1"}}, "objective.metric"),
        ({"initial_trials": [{"optimizer.lr": 5.0}]}, "initial_trials[0].optimizer.lr"),
        ({"max_parallel": 4}, "max_parallel"),
        ({"dataset": "no-such-dataset"}, "dataset"),
        ({"spec": "no-such-preset"}, "spec"),
    ],
)
async def test_bad_sweeps_answer_422_naming_the_path(
    idle_client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = sweep_body(search_space={"optimizer.lr": {"type": "float", "low": 0.01, "high": 0.1}})
    body.update(change)
    response = await idle_client.post("/v1/sweeps", json=body)
    assert 400 <= response.status_code < 500, response.text
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert field in fields or f"search_space.{field}" in fields, response.json()
    assert (await idle_client.get("/v1/sweeps")).json()["total"] == 0


async def test_unknown_sweep_is_404(idle_client: httpx.AsyncClient) -> None:
    for response in (
        await idle_client.get("/v1/sweeps/sweep_nope"),
        await idle_client.post("/v1/sweeps/sweep_nope/cancel"),
        await idle_client.get("/v1/sweeps/sweep_nope/events"),
    ):
        assert response.status_code == 404, response.text
        assert response.json()["error"]["details"][0]["field"] == "sweep_id"


async def test_trials_of_an_uploaded_dataset_carry_its_lineage(
    admin_client: httpx.AsyncClient,
) -> None:
    rows = b"".join(f"{i % 7},{(i * 3) % 5},{'a' if i % 2 else 'b'}\n".encode() for i in range(60))
    upload = await admin_client.post(
        "/v1/datasets",
        files={"file": ("pairs.csv", b"x,y,label\n" + rows)},
        data={"name": "pairs"},
    )
    assert upload.status_code in (200, 201), upload.text
    body = sweep_body(
        dataset="pairs",
        spec=xor_spec(epochs=2),
        search_space={"optimizer.lr": {"type": "float", "low": 0.01, "high": 0.1}},
        n_trials=2,
    )
    response = await admin_client.post("/v1/sweeps", json=body)
    assert response.status_code == 202, response.text
    done = await wait_for_sweep(admin_client, response.json()["id"], finished)
    assert done["status"] == "succeeded", done
    jobs = (await admin_client.get(done["links"]["jobs"])).json()["items"]
    assert {j["dataset_id"] for j in jobs} == {upload.json()["id"]}
    assert {j["dataset_sha256"] for j in jobs} == {upload.json()["sha256"]}
