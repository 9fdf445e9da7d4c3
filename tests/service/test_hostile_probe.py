"""Findings of a hostile probe: values the service took that it must refuse, naming the field.

Each refusal is a 4xx whose details name the field, and nothing is stored by it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from service_helpers import make_settings
from serving_helpers import db, upload_model, xor_model_file
from sqlalchemy import func, select

from service.config import Settings
from service.models import Dataset, TrainingJob

pytestmark = pytest.mark.anyio

#: Small enough that a modest CSV passes it (each value counts 8 bytes, as float64).
MAX_DATASET_BYTES = 1_000_000


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return make_settings(database_url, tmp_path / "data", max_dataset_bytes=MAX_DATASET_BYTES)


@pytest.fixture
async def xor_client(admin_client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The admin client, owning model "xor" and the upload "pts"."""
    assert (await upload_model(admin_client, {}, "xor", xor_model_file())).status_code == 201
    csv = "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40))
    uploaded = await admin_client.post(
        "/v1/datasets", files={"file": ("pts.csv", csv.encode())}, data={"label_column": "y"}
    )
    assert uploaded.status_code == 201, uploaded.text
    return admin_client


def _count(app: FastAPI, table: Any) -> int:
    with db(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def _fields(response: httpx.Response) -> list[str]:
    return [d["field"] for d in response.json()["error"]["details"]]


def _spec(**training: Any) -> dict[str, Any]:
    return {
        "input_dim": 2,
        "layers": [{"type": "dense", "units": 2, "activation": "softmax"}],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.05},
        "training": {"epochs": 1, **training},
    }


@pytest.mark.parametrize(
    ("raw_field", "field"),
    [
        ('"batch_size": 1000000000000', "body.batch_size"),
        ('"learning_rate": 1e308', "body.learning_rate"),
        ('"learning_rate": 1e4', "body.learning_rate"),
        ('"learning_rate": NaN', "body.learning_rate"),
        ('"learning_rate": Infinity', "body.learning_rate"),
        ('"learning_rate": -Infinity', "body.learning_rate"),
        ('"seed": 18446744073709551616', "body.seed"),
    ],
)
async def test_absurd_job_overrides_are_422_naming_the_field(
    app: FastAPI, xor_client: httpx.AsyncClient, raw_field: str, field: str
) -> None:
    """Raw JSON: Python's parser takes NaN and Infinity, so the service must refuse them."""
    body = json.dumps({"dataset": "pts", "model_name": "xor", "spec": _spec()})
    raw = body[:-1] + ", " + raw_field + "}"
    response = await xor_client.post(
        "/v1/jobs", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]
    assert _count(app, TrainingJob) == 0


async def test_absurd_spec_batch_size_is_422_naming_it(
    app: FastAPI, xor_client: httpx.AsyncClient
) -> None:
    body = {"dataset": "pts", "model_name": "xor", "spec": _spec(batch_size=10**12)}
    response = await xor_client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    assert _fields(response) == ["spec.training.batch_size"]
    assert _count(app, TrainingJob) == 0


async def test_the_largest_documented_overrides_are_accepted(xor_client: httpx.AsyncClient) -> None:
    body = {
        "dataset": "pts",
        "model_name": "xor",
        "spec": _spec(),
        "batch_size": 1_000_000,
        "learning_rate": 1e3,
    }
    response = await xor_client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text


async def test_openapi_states_the_override_bounds(xor_client: httpx.AsyncClient) -> None:
    document = (await xor_client.get("/openapi.json")).json()
    props = document["components"]["schemas"]["JobSubmit"]["properties"]
    assert props["learning_rate"]["anyOf"][0]["maximum"] == 1e3
    assert props["batch_size"]["anyOf"][0]["maximum"] == 1_000_000


@pytest.mark.parametrize(
    ("instances", "bad"),
    [
        ([["1", "0"]], 0),
        ([[True, False]], 0),
        ([[0.5, 1.0], [0.5, True]], 1),
        ([[0.5, None]], 0),
        ([{}], 0),
        (["a string for a numeric model"], 0),
        ([[[0.5, "1"]]], 0),
    ],
)
@pytest.mark.parametrize("route", [":predict", ":explain"])
async def test_non_numbers_in_instances_are_422_naming_the_instance(
    xor_client: httpx.AsyncClient, instances: list[Any], bad: int, route: str
) -> None:
    response = await xor_client.post(f"/v1/models/xor{route}", json={"instances": instances})
    assert response.status_code == 422, response.text
    assert _fields(response) == [f"instances[{bad}]"]


async def test_numbers_in_instances_are_still_predicted(xor_client: httpx.AsyncClient) -> None:
    response = await xor_client.post(
        "/v1/models/xor:predict", json={"instances": [[0, 1], [1.0, 1], [0.0, 0.0]]}
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["predictions"]) == 3


@pytest.mark.parametrize("name", [".", "..", "....", "ds_mine"])
async def test_dataset_names_of_dots_or_an_id_prefix_are_422(
    app: FastAPI, admin_client: httpx.AsyncClient, name: str
) -> None:
    csv = "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(10))
    response = await admin_client.post(
        "/v1/datasets", files={"file": ("pts.csv", csv.encode())}, data={"name": name}
    )
    assert response.status_code == 422, response.text
    assert _fields(response) == ["body.name"]
    assert _count(app, Dataset) == 0


async def test_dot_in_a_dataset_name_is_fine(admin_client: httpx.AsyncClient) -> None:
    csv = "a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(10))
    response = await admin_client.post(
        "/v1/datasets", files={"file": ("pts.csv", csv.encode())}, data={"name": "v1.2"}
    )
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("route", "url", "data"),
    [
        ("/v1/datasets", "/v1/datasets", {"name": "empty"}),
        ("/v1/models/{name}/versions", "/v1/models/empty/versions", {}),
    ],
)
async def test_an_empty_file_is_422_naming_it_as_the_document_says(
    app: FastAPI, admin_client: httpx.AsyncClient, route: str, url: str, data: dict[str, str]
) -> None:
    response = await admin_client.post(url, files={"file": ("x.npz", b"")}, data=data)
    assert response.status_code == 422, response.text
    assert any("file" in field for field in _fields(response)), response.text
    assert _count(app, Dataset) == 0
    document = (await admin_client.get("/openapi.json")).json()
    body = document["paths"][route]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert body["schema"]["properties"]["file"]["minLength"] == 1


async def test_oversized_csv_is_413_naming_the_limit(
    app: FastAPI, admin_client: httpx.AsyncClient
) -> None:
    """500k values (4 MB as float64) against a 1 MB limit: refused while reading, at a line
    in the first half of the file, and nothing stored."""
    rows = 100_000
    csv = "a,b,c,d,y\n" + "".join(f"{i},1,2,3,{i % 2}\n" for i in range(rows))
    response = await admin_client.post("/v1/datasets", files={"file": ("big.csv", csv.encode())})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert _fields(response) == ["file"]
    assert "NNS_MAX_DATASET_BYTES" in error["message"]
    assert f"{MAX_DATASET_BYTES:,}-byte limit" in error["message"]
    stopped_at = int(error["message"].split("by line ")[1].split(" ")[0])
    assert stopped_at < rows // 2
    assert _count(app, Dataset) == 0


async def test_a_wide_csv_header_parses_quickly(admin_client: httpx.AsyncClient) -> None:
    """40k columns took 15 s when each name was counted over the whole header (quadratic);
    the bound is generous (a loaded machine), the linear check itself is in
    tests/nn_core/test_csv_linear.py."""
    columns = 40_000
    header = ",".join(f"c{j}" for j in range(columns)) + ",y\n"
    body = "".join(",".join("1" for _ in range(columns)) + f",{i % 2}\n" for i in range(2))
    started = time.perf_counter()
    response = await admin_client.post(
        "/v1/datasets",
        files={"file": ("wide.csv", (header + body).encode())},
        data={"test_fraction": "0"},
    )
    elapsed = time.perf_counter() - started
    print(f"40k-column CSV upload answered {response.status_code} in {elapsed:.2f} s")
    assert response.status_code == 201, response.text
    assert response.json()["n_features"] == columns
    assert elapsed < 10


async def test_a_webhook_host_label_too_long_for_idna_is_422(
    admin_client: httpx.AsyncClient,
) -> None:
    """A URL the document allows whose host has a 64+ character label (it was a 500)."""
    body = {"url": "https://" + "0" * 300 + "/hook", "events": ["job.succeeded"]}
    response = await admin_client.post("/v1/webhooks", json=body)
    assert response.status_code == 422, response.text
    assert _fields(response) == ["url"]
