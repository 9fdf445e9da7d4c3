"""Batch predictions over ASGI, with the embedded runner running the batch_predict job."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from jobs_helpers import TERMINAL, job_settings, parse_events, wait_for_job, xor_spec
from service_helpers import bearer
from serving_helpers import upload_model, xor_model_file
from sqlalchemy import select

from nn_core.serialize import save_model
from nn_core.spec import build_model
from nn_core.training import train
from service import auth, cli_jobs
from service.config import Settings
from service.db import Database
from service.jobs import batch_retention
from service.models import WebhookDelivery

pytestmark = pytest.mark.anyio

CHUNK_ROWS = 7  # smaller than the dataset: the batch is written in several chunks


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return job_settings(
        database_url,
        tmp_path / "data",
        batch_chunk_rows=CHUNK_ROWS,
        webhook_allow_hosts="127.0.0.1",
    )


def _rows() -> list[list[float]]:
    grid = np.random.default_rng(3).uniform(-1, 1, size=(40, 2)).round(4)
    return grid.tolist()


def _csv(rows: list[list[float]]) -> bytes:
    lines = ["x1,x2,label"]
    lines += [f"{a},{b},{'yes' if a * b > 0 else 'no'}" for a, b in rows]
    return ("\n".join(lines) + "\n").encode()


def _finished(job: dict[str, Any]) -> bool:
    return job["status"] in TERMINAL


async def _trained_model(client: httpx.AsyncClient) -> list[list[float]]:
    """Upload the dataset and train `xor-net` on it; the dataset's rows in stored order."""
    rows = _rows()
    files = {"file": ("pts.csv", _csv(rows))}
    uploaded = await client.post("/v1/datasets", files=files, data={"label_column": "label"})
    assert uploaded.status_code == 201, uploaded.text
    body = {"spec": xor_spec(epochs=3), "dataset": "pts", "model_name": "xor-net"}
    job = (await client.post("/v1/jobs", json=body)).json()
    done = await wait_for_job(client, job["id"], _finished)
    assert done["status"] == "succeeded", done["failure_reason"]
    return rows


async def _batch(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    response = await client.post("/v1/batch-predictions", json=body)
    assert response.status_code == 202, response.text
    assert response.headers["Location"] == f"/v1/batch-predictions/{response.json()['id']}"
    await wait_for_job(client, response.json()["id"], _finished)
    batch = (await client.get(response.headers["Location"])).json()
    assert batch["status"] == "succeeded", batch["failure_reason"]
    return batch


async def test_a_batch_gives_predicts_labels_and_probabilities_for_every_row(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    rows = await _trained_model(admin_client)
    hook = {"url": "http://127.0.0.1:9/hook", "events": ["batch_prediction.finished"]}
    assert (await admin_client.post("/v1/webhooks", json=hook)).status_code == 201
    predicted = await admin_client.post("/v1/models/xor-net:predict", json={"instances": rows})
    expected = predicted.json()["predictions"]

    batch = await _batch(admin_client, model="xor-net", dataset="pts")
    assert batch["progress"] == {"rows_done": 40, "total_rows": 40, "percent": 100.0}
    assert batch["rows"] == 40 and batch["version"] == 1 and batch["format"] == "csv"
    assert batch["columns"] == ["row", "label", "p_no", "p_yes"]
    result = await admin_client.get(batch["links"]["result"])
    assert result.status_code == 200
    assert result.headers["content-type"].startswith("text/csv")
    assert "attachment" in result.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(result.text)))
    assert [int(r["row"]) for r in table] == list(range(40))
    for got, want in zip(table, expected, strict=True):
        assert got["label"] == want["label"]
        for cls, p in want["probabilities"].items():
            assert float(got[f"p_{cls}"]) == pytest.approx(p, abs=1e-6)

    points = (await admin_client.get(f"/v1/jobs/{batch['id']}/metrics")).json()
    assert [p["epoch"] for p in points["items"]] == [7, 14, 21, 28, 35, 40]

    database: Database = app.state.db
    with database.session() as session:
        sent = session.scalars(select(WebhookDelivery.payload)).all()
    assert [p["data"]["batch_prediction_id"] for p in sent] == [batch["id"]]
    assert sent[0]["type"] == "batch_prediction.finished" and sent[0]["data"]["rows"] == 40

    packed = await _batch(admin_client, model="xor-net", version=1, dataset="pts", format="npz")
    download = await admin_client.get(packed["links"]["result"])
    with np.load(io.BytesIO(download.content), allow_pickle=False) as arrays:
        assert sorted(arrays.files) == ["labels", "probabilities"]
        assert arrays["labels"].tolist() == [p["label"] for p in expected]
        want = [[p["probabilities"][c] for c in ("no", "yes")] for p in expected]
        np.testing.assert_allclose(arrays["probabilities"], want, atol=1e-6)

    test_split = await _batch(admin_client, model="xor-net", dataset="pts", split="test")
    assert 0 < test_split["rows"] < 40


async def test_another_owners_batch_is_a_404_and_built_ins_work(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    await _trained_model(admin_client)
    batch = await _batch(admin_client, model="xor-net", dataset="pts")
    bob = bearer(auth.create_key(app.state.db, "bob").key)
    for url in (batch["links"]["self"], batch["links"]["result"]):
        response = await admin_client.get(url, headers=bob)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["details"][0]["field"] == "batch_id"
    unknown = await admin_client.post(
        "/v1/batch-predictions", json={"model": "xor-net", "dataset": "nope"}
    )
    assert unknown.status_code == 404
    assert unknown.json()["error"]["details"][0]["field"] == "dataset"
    builtin = await _batch(admin_client, model="xor-net", dataset="xor", split="train")
    assert builtin["rows"] == builtin["progress"]["total_rows"] > 0  # known once loaded
    a_job = await admin_client.get(f"/v1/batch-predictions/{batch['id']}x")
    assert a_job.status_code == 404


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"dataset": "xor"}, "body.model"),
        ({"model": "m"}, "body.dataset"),
        ({"model": "m", "dataset": "xor", "format": "xls"}, "body.format"),
        ({"model": "m", "dataset": "xor", "split": "val"}, "body.split"),
        ({"model": "m", "dataset": "xor", "version": 0}, "body.version"),
        ({"model": "m", "dataset": "xor", "surprise": 1}, "body.surprise"),
    ],
)
async def test_a_bad_body_is_a_422_naming_the_field(
    idle_client: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    response = await idle_client.post("/v1/batch-predictions", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == field


async def test_an_unknown_model_is_a_404_naming_the_model(idle_client: httpx.AsyncClient) -> None:
    response = await idle_client.post(
        "/v1/batch-predictions", json={"model": "ghost", "dataset": "xor"}
    )
    assert response.status_code == 404, response.text
    assert response.json()["error"]["details"][0]["field"] == "model"


# ----------------------------------------------------------------------------- job views


async def _xor_batch(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    """A batch on the built-in xor dataset by an uploaded (not trained here) model `m`."""
    uploaded = await upload_model(client, {}, "m", xor_model_file())
    assert uploaded.status_code == 201, uploaded.text
    return await _batch(client, model="m", dataset="xor", **body)


async def test_the_job_views_report_a_batch_as_batch_predict(
    admin_client: httpx.AsyncClient,
) -> None:
    batch = await _xor_batch(admin_client, split="test")
    listed = (await admin_client.get("/v1/jobs")).json()["items"]
    (item,) = [job for job in listed if job["id"] == batch["id"]]
    one = (await admin_client.get(f"/v1/jobs/{batch['id']}")).json()
    events = parse_events((await admin_client.get(f"/v1/jobs/{batch['id']}/events")).text)
    end = events[-1]
    assert end["event"] == "end"
    for job in (item, one, end["data"]):
        assert job["kind"] == "batch_predict"
        assert job["model_name"] == "m" and job["model_version"] is None
        assert job["batch"] == {
            "version": 1,
            "split": "test",
            "format": "csv",
            "rows": batch["rows"],
            "url": batch["links"]["self"],
            "result": batch["links"]["result"],
        }
    out = io.StringIO()
    status = cli_jobs.outcome(one, cli_jobs.ProgressView(out, tty=False))
    assert status == cli_jobs.EXIT_SUCCEEDED
    assert out.getvalue() == (
        f"batch prediction {batch['id']} succeeded: {batch['rows']} rows by m version 1; "
        f"download {batch['links']['result']}\n"
    )


async def test_a_trained_job_is_still_kind_train(idle_client: httpx.AsyncClient) -> None:
    body = {"spec": xor_spec(epochs=1), "dataset": "xor", "model_name": "t"}
    job = (await idle_client.post("/v1/jobs", json=body)).json()
    assert job["kind"] == "train" and job["batch"] is None
    refused = await idle_client.post("/v1/jobs", json={**body, "kind": "batch_predict"})
    assert refused.status_code == 422  # batches are submitted at /v1/batch-predictions


# ----------------------------------------------------------------------------- retention


def _files(settings: Settings) -> list[str]:
    folder = batch_retention.result_dir(settings)
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


async def test_expired_results_are_removed_and_their_download_is_gone(
    app: FastAPI, admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    batch = await _xor_batch(admin_client)
    assert _files(settings) == [f"{batch['id']}.csv"]
    finished = datetime.fromisoformat(batch["finished_at"])
    assert datetime.fromisoformat(batch["expires_at"]) == finished + timedelta(hours=168)
    assert batch["expired"] is False
    orphan = batch_retention.result_dir(settings) / "job_0123456789abcdef.csv"
    orphan.write_text("row,label\n")  # a file whose job is gone

    database: Database = app.state.db
    assert batch_retention.expire_results(database, settings, finished + timedelta(hours=1)) == 1
    assert _files(settings) == [f"{batch['id']}.csv"]  # not expired yet: kept
    assert (await admin_client.get(batch["links"]["result"])).status_code == 200

    later = finished + timedelta(hours=168, seconds=1)
    assert batch_retention.expire_results(database, settings, later) == 1
    assert _files(settings) == []
    gone = await admin_client.get(batch["links"]["result"])
    assert gone.status_code == 410, gone.text
    assert gone.json()["error"]["type"] == "result_expired"
    assert "expired" in gone.json()["error"]["message"]
    view = (await admin_client.get(batch["links"]["self"])).json()
    assert view["expired"] is True and view["status"] == "succeeded"
    assert batch_retention.expire_results(database, settings, later) == 0  # idle: nothing left


async def test_delete_removes_the_file_and_the_job(
    app: FastAPI, admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    batch = await _xor_batch(admin_client, format="npz")
    assert _files(settings) == [f"{batch['id']}.npz"]
    bob = bearer(auth.create_key(app.state.db, "bob").key)
    other = await admin_client.delete(batch["links"]["self"], headers=bob)
    assert other.status_code == 404 and _files(settings) == [f"{batch['id']}.npz"]
    deleted = await admin_client.delete(batch["links"]["self"])
    assert deleted.status_code == 204, deleted.text
    assert _files(settings) == []
    for url in (batch["links"]["self"], batch["links"]["result"], f"/v1/jobs/{batch['id']}"):
        assert (await admin_client.get(url)).status_code == 404
    assert (await admin_client.delete(batch["links"]["self"])).status_code == 404


async def test_a_live_batch_cannot_be_deleted_until_cancelled(
    idle_client: httpx.AsyncClient,
) -> None:
    assert (await upload_model(idle_client, {}, "m", xor_model_file())).status_code == 201
    queued = await idle_client.post("/v1/batch-predictions", json={"model": "m", "dataset": "xor"})
    batch = queued.json()
    listed = (await idle_client.get("/v1/jobs")).json()["items"]
    assert [job["kind"] for job in listed] == ["batch_predict"]
    refused = await idle_client.delete(batch["links"]["self"])
    assert refused.status_code == 409, refused.text
    assert batch["links"]["job"] + "/cancel" in refused.json()["error"]["message"]
    assert (await idle_client.post(batch["links"]["job"] + "/cancel")).status_code == 200
    assert (await idle_client.delete(batch["links"]["self"])).status_code == 204


def _multilabel_model_file() -> bytes:
    """Two inputs, three independent sigmoid outputs: a model batches do not support."""
    model = build_model(
        {
            "input_dim": 2,
            "layers": [{"type": "dense", "units": 3, "activation": "sigmoid"}],
            "loss": "binary_crossentropy",
            "training": {"epochs": 1, "seed": 0},
        }
    )
    x = np.random.default_rng(0).uniform(-1, 1, size=(30, 2))
    train(model, x, (x[:, :1] > np.array([[-0.5, 0.0, 0.5]])).astype(np.int64))
    return save_model(model)


async def test_a_failed_batch_leaves_no_partial_file(
    app: FastAPI, admin_client: httpx.AsyncClient, settings: Settings
) -> None:
    """It fails writing its first chunk, after the partial file was opened."""
    uploaded = await upload_model(admin_client, {}, "tags", _multilabel_model_file())
    assert uploaded.status_code == 201, uploaded.text
    response = await admin_client.post(
        "/v1/batch-predictions", json={"model": "tags", "dataset": "xor"}
    )
    assert response.status_code == 202, response.text
    job = await wait_for_job(admin_client, response.json()["id"], _finished)
    assert job["status"] == "failed" and "multi-label" in job["failure_reason"]
    assert batch_retention.result_dir(settings).is_dir()
    assert _files(settings) == []
    # A process killed mid-write cannot clean up; the cleanup pass does once the job ended.
    leftover = batch_retention.result_dir(settings) / f"{job['id']}.csv.partial"
    leftover.write_text("row,label\n0,")
    assert batch_retention.expire_results(app.state.db, settings) == 1
    assert _files(settings) == []
