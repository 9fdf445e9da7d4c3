"""The jobs API over httpx's ASGITransport, with the embedded runner training for real.

Each test gets a fresh database of each backend (SQLite file, Postgres schema); jobs run in
real subprocesses started by the app's runner.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from jobs_helpers import job_settings, parse_events, slow_spec, wait_for_job, xor_spec
from service_helpers import bearer
from sqlalchemy import select
from sqlalchemy.orm import undefer
from waiting import until

from nn_core.serialize import load_model
from service import auth
from service.config import Settings
from service.db import Database
from service.models import Checkpoint, MetricPoint, Model, ModelVersion

pytestmark = pytest.mark.anyio


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(database_url, tmp_path / "data", max_jobs_per_key=3, max_epochs=500)


def _db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


async def _submit(admin_client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    payload = {"spec": xor_spec(), "dataset": "xor", "model_name": "xor-net", **body}
    response = await admin_client.post("/v1/jobs", json=payload)
    assert response.status_code == 202, response.text
    job: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    return job


def _done(job: dict[str, Any]) -> bool:
    return job["status"] in ("succeeded", "failed", "cancelled")


async def test_job_trains_streams_and_registers_a_model_version(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    job = await _submit(admin_client, epochs=5)
    assert job["status"] == "queued"
    assert job["progress"] == {"epoch": 0, "total_epochs": 5, "percent": 0.0}
    assert job["spec"]["training"]["epochs"] == 5  # the override, in the normalized spec
    assert job["spec"]["layers"][0]["initializer"]  # defaults filled in

    # The SSE stream ends by itself when the job ends (else this request would hang).
    stream = await admin_client.get(f"/v1/jobs/{job['id']}/events")
    assert stream.status_code == 200
    assert stream.headers["content-type"].startswith("text/event-stream")
    events = parse_events(stream.text)
    assert events[0]["event"] == "snapshot"
    assert events[-1]["event"] == "end"
    assert events[-1]["data"]["status"] == "succeeded"
    progress = [e for e in events if e["event"] == "progress"]
    assert [e["id"] for e in progress] == [str(e["data"]["epoch"]) for e in progress]
    first = events[0]["data"]["progress"]["epoch"]
    assert [e["data"]["epoch"] for e in progress] == list(range(first + 1, 6))

    done = (await admin_client.get(f"/v1/jobs/{job['id']}")).json()
    assert done["status"] == "succeeded"
    assert done["progress"] == {"epoch": 5, "total_epochs": 5, "percent": 100.0}
    assert done["metrics"]["epoch"] == 5 and done["metrics"]["accuracy"] > 0.5
    assert done["failure_reason"] is None and done["finished_at"] is not None
    assert done["model_version"]["model_name"] == "xor-net"
    assert done["model_version"]["version"] == 1

    with _db(app).session() as session:
        version = session.scalar(
            select(ModelVersion)
            .options(undefer(ModelVersion.weights))
            .where(ModelVersion.id == done["model_version"]["id"])
        )
        assert version is not None
        assert version.job_id == job["id"]
        assert version.spec == done["spec"]
        test = version.metrics["test"]
        assert test["n_samples"] == 200 and sum(map(sum, test["confusion_matrix"])) == 200
        assert 0.0 <= test["accuracy"] <= 1.0 and "roc_auc" in test
        assert version.metrics["final_epoch"]["epoch"] == 5
        model = load_model(version.weights)
        assert model.predict_labels([[0.5, 0.5], [-0.5, 0.5]]).shape == (2,)
        # Finished jobs keep their history but no checkpoint.
        assert session.scalars(select(Checkpoint)).all() == []

    # The same model name again: version 2 of the same model.
    second = await _submit(admin_client, epochs=2)
    finished = await wait_for_job(admin_client, second["id"], _done)
    assert finished["model_version"]["version"] == 2
    with _db(app).session() as session:
        assert len(session.scalars(select(Model)).all()) == 1


async def test_metrics_history_is_paginated(admin_client: httpx.AsyncClient) -> None:
    job = await _submit(admin_client, epochs=7)
    await wait_for_job(admin_client, job["id"], _done)
    seen: list[int] = []
    after = 0
    while True:
        page = (
            await admin_client.get(f"/v1/jobs/{job['id']}/metrics?limit=3&after_epoch={after}")
        ).json()
        assert page["total"] == 7
        seen += [item["epoch"] for item in page["items"]]
        assert all(item["loss"] is not None for item in page["items"])
        if page["next_after_epoch"] is None:
            break
        after = page["next_after_epoch"]
    assert seen == list(range(1, 8))
    bad = await admin_client.get(f"/v1/jobs/{job['id']}/metrics?limit=0")
    assert bad.status_code == 422


async def test_last_event_id_replays_missed_epochs(admin_client: httpx.AsyncClient) -> None:
    job = await _submit(admin_client, epochs=6)
    await wait_for_job(admin_client, job["id"], _done)
    replay = parse_events(
        (
            await admin_client.get(f"/v1/jobs/{job['id']}/events", headers={"Last-Event-ID": "3"})
        ).text
    )
    kinds = [e["event"] for e in replay]
    assert kinds == ["snapshot", *["progress"] * 3, *["diagnostics"] * 3, "end"]
    assert [e["id"] for e in replay if e["event"] == "progress"] == ["4", "5", "6"]
    assert [e["data"]["epoch"] for e in replay if e["event"] == "diagnostics"] == [4, 5, 6]
    fresh = parse_events((await admin_client.get(f"/v1/jobs/{job['id']}/events")).text)
    assert [e["event"] for e in fresh] == ["snapshot", "end"]


async def test_list_filters_and_pages_newest_first(idle_client: httpx.AsyncClient) -> None:
    ids = [(await _submit(idle_client, model_name=f"m{i}"))["id"] for i in range(3)]
    await idle_client.post(f"/v1/jobs/{ids[0]}/cancel")

    page = (await idle_client.get("/v1/jobs?limit=2")).json()
    assert [j["id"] for j in page["items"]] == [ids[2], ids[1]]
    assert page["total"] == 3 and page["next_offset"] == 2
    rest = (await idle_client.get("/v1/jobs?limit=2&offset=2")).json()
    assert [j["id"] for j in rest["items"]] == [ids[0]] and rest["next_offset"] is None

    queued = (await idle_client.get("/v1/jobs?status=queued")).json()
    assert {j["id"] for j in queued["items"]} == {ids[1], ids[2]}
    both = (await idle_client.get("/v1/jobs?status=queued&status=cancelled")).json()
    assert both["total"] == 3
    bad = await idle_client.get("/v1/jobs?status=sleeping")
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "query.status.0"


async def test_cancel_queued_job_is_immediate_and_idempotent(
    idle_client: httpx.AsyncClient,
) -> None:
    job = await _submit(idle_client)
    first = await idle_client.post(f"/v1/jobs/{job['id']}/cancel")
    assert first.status_code == 200
    assert first.json()["status"] == "cancelled" and first.json()["cancel_requested"]
    again = await idle_client.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 200 and again.json() == first.json()


async def test_cancel_running_job(app: FastAPI, admin_client: httpx.AsyncClient) -> None:
    job = await _submit(admin_client, spec=slow_spec(epochs=200))
    await wait_for_job(admin_client, job["id"], lambda j: j["progress"]["epoch"] >= 1)
    response = await admin_client.post(f"/v1/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] in ("cancelling", "cancelled")
    events = parse_events((await admin_client.get(f"/v1/jobs/{job['id']}/events")).text)
    assert events[-1]["event"] == "end" and events[-1]["data"]["status"] == "cancelled"
    done = (await admin_client.get(f"/v1/jobs/{job['id']}")).json()
    assert done["model_version"] is None and done["progress"]["epoch"] < 200
    # A terminal job is returned unchanged.
    again = await admin_client.post(f"/v1/jobs/{job['id']}/cancel")
    assert again.status_code == 200 and again.json() == done
    # Its process is gone (reaped by the runner's next tick).
    await until(lambda: not app.state.runner.process_ids(), 10, "the runner to reap the process")


async def test_diverging_job_fails_with_a_reason(admin_client: httpx.AsyncClient) -> None:
    spec = xor_spec(epochs=20)
    spec["layers"][0]["activation"] = "relu"
    spec["optimizer"] = {"name": "sgd", "lr": 1e9}
    job = await _submit(admin_client, spec=spec)
    done = await wait_for_job(admin_client, job["id"], _done)
    assert done["status"] == "failed"
    assert "diverged" in done["failure_reason"]
    assert "optimizer.lr" in done["failure_reason"] and "epoch 1" in done["failure_reason"]
    assert done["model_version"] is None


async def test_data_that_does_not_fit_fails_naming_the_field(
    admin_client: httpx.AsyncClient,
) -> None:
    spec = xor_spec()
    spec["input_dim"] = 3  # XOR has 2 features
    done = await wait_for_job(admin_client, (await _submit(admin_client, spec=spec))["id"], _done)
    assert done["status"] == "failed"
    assert "X: expected 3 features per row, got 2" in done["failure_reason"]


def _field(response: httpx.Response) -> str:
    details = response.json()["error"]["details"]
    assert details, response.text
    field: str = details[0]["field"]
    return field


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        (
            lambda b: b["spec"]["layers"][1].update(activation="bogus"),
            422,
            "spec.layers[1].activation",
        ),
        (lambda b: b["spec"].update(loss="nope"), 422, "spec.loss"),
        (lambda b: b["spec"]["layers"][0].update(units=200_000), 422, "spec.layers[0].units"),
        (lambda b: b["spec"].update(layers=[b["spec"]["layers"][0]] * 65), 422, "spec.layers"),
        (
            lambda b: b["spec"].update(
                input_dim=4000,
                layers=[
                    {"type": "dense", "units": 4000, "activation": "relu"},
                    {"type": "dense", "units": 2, "activation": "softmax"},
                ],
            ),
            422,
            "spec.layers",
        ),
        (lambda b: b.update(epochs=501), 422, "epochs"),
        (lambda b: b["spec"]["training"].update(epochs=10_000), 422, "spec.training.epochs"),
        (lambda b: b.update(learning_rate=-1), 422, "body.learning_rate"),
        (lambda b: b.update(model_name="bad name/../x"), 422, "body.model_name"),
        (lambda b: b.update(model_name=".."), 422, "body.model_name"),
        (lambda b: b.update(model_name="x" * 65), 422, "body.model_name"),
        (lambda b: b.update(dataset="no-such-dataset"), 404, "dataset"),
        (lambda b: b.update(surprise=1), 422, "body.surprise"),
        (lambda b: b.update(spec=[1, 2]), 422, "body.spec"),
    ],
)
async def test_bad_submissions_name_the_field(
    idle_client: httpx.AsyncClient, change: Any, status: int, field: str
) -> None:
    body: dict[str, Any] = {"spec": xor_spec(), "dataset": "xor", "model_name": "m"}
    change(body)
    response = await idle_client.post("/v1/jobs", json=body)
    assert response.status_code == status, response.text
    assert _field(response) == field
    assert (await idle_client.get("/v1/jobs")).json()["total"] == 0


async def test_deep_spec_is_refused(idle_client: httpx.AsyncClient) -> None:
    spec = xor_spec()
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(20):
        node["x"] = {}
        node = node["x"]
    spec["training"]["early_stopping"] = deep
    response = await idle_client.post(
        "/v1/jobs", json={"spec": spec, "dataset": "xor", "model_name": "m"}
    )
    assert response.status_code == 422
    assert _field(response).startswith("spec.training.early_stopping.x")


@pytest.mark.both_backends  # Postgres serializes concurrent submissions with an advisory lock
async def test_per_key_job_limit(idle_client: httpx.AsyncClient, settings: Settings) -> None:
    for _ in range(settings.max_jobs_per_key):
        await _submit(idle_client)
    refused = await idle_client.post(
        "/v1/jobs", json={"spec": xor_spec(), "dataset": "xor", "model_name": "m"}
    )
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "too_many_jobs"
    assert "limit is 3" in refused.json()["error"]["message"]
    assert refused.headers["retry-after"]
    # Cancelling one frees a slot.
    first = (await idle_client.get("/v1/jobs?limit=1")).json()["items"][0]
    await idle_client.post(f"/v1/jobs/{first['id']}/cancel")
    await _submit(idle_client)


async def test_another_owners_job_is_404(app: FastAPI, admin_client: httpx.AsyncClient) -> None:
    job = await _submit(admin_client, epochs=1)
    other = auth.create_key(_db(app), "bob").key
    headers = bearer(other)
    for method, path in [
        ("GET", ""),
        ("GET", "/metrics"),
        ("GET", "/events"),
        ("POST", "/cancel"),
    ]:
        response = await admin_client.request(
            method, f"/v1/jobs/{job['id']}{path}", headers=headers
        )
        assert response.status_code == 404, (path, response.text)
        assert response.json()["error"]["type"] == "not_found"
    assert (await admin_client.get("/v1/jobs", headers=headers)).json()["total"] == 0
    missing = await admin_client.get("/v1/jobs/job_0000000000000000")
    assert missing.status_code == 404 and _field(missing) == "job_id"
    await wait_for_job(admin_client, job["id"], _done)


async def test_requests_need_a_key(admin_client: httpx.AsyncClient) -> None:
    response = await admin_client.get("/v1/jobs", headers={"Authorization": ""})
    assert response.status_code == 401


async def test_history_is_stored_once_per_epoch(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    job = await _submit(admin_client, epochs=4)
    await wait_for_job(admin_client, job["id"], _done)
    with _db(app).session() as session:
        epochs = session.scalars(
            select(MetricPoint.epoch)
            .where(MetricPoint.job_id == job["id"])
            .order_by(MetricPoint.epoch)
        ).all()
    assert epochs == [1, 2, 3, 4]


async def test_openapi_documents_the_job_routes(admin_client: httpx.AsyncClient) -> None:
    schema = (await admin_client.get("/openapi.json")).json()
    paths = schema["paths"]
    for path, method in [
        ("/v1/jobs", "post"),
        ("/v1/jobs", "get"),
        ("/v1/jobs/{job_id}", "get"),
        ("/v1/jobs/{job_id}/metrics", "get"),
        ("/v1/jobs/{job_id}/cancel", "post"),
        ("/v1/jobs/{job_id}/events", "get"),
    ]:
        responses = paths[path][method]["responses"]
        for status in ("400", "401", "404", "409", "413", "422"):
            assert status in responses, (path, method, status)
    assert "202" in paths["/v1/jobs"]["post"]["responses"]
    assert "429" in paths["/v1/jobs"]["post"]["responses"]
    assert "text/event-stream" in str(paths["/v1/jobs/{job_id}/events"]["get"]["responses"]["200"])


async def test_non_finite_numbers_are_refused(idle_client: httpx.AsyncClient) -> None:
    spec = '{"input_dim": 2, "layers": [{"type": "dense", "units": 2, "activation": "softmax"}]'
    cases = [
        (
            '"loss": "categorical_crossentropy", "optimizer": {"name": "adam", "lr": NaN}}',
            "",
            "spec.optimizer.lr",
        ),
        ('"loss": "categorical_crossentropy"}', ', "learning_rate": 1e309', "body.learning_rate"),
    ]
    for spec_end, extra, field in cases:
        body = f'{{"spec": {spec}, {spec_end}, "dataset": "xor", "model_name": "m"{extra}}}'
        response = await idle_client.post(
            "/v1/jobs", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, response.text
        assert _field(response) == field
