"""Batch predictions over ASGI, with the embedded runner running the batch_predict job."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from jobs_helpers import TERMINAL, job_settings, wait_for_job, xor_spec
from service_helpers import bearer
from sqlalchemy import select

from service import auth
from service.config import Settings
from service.db import Database
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
