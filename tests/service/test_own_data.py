"""People's own files: headerless CSV, label by index, gzip/zip, their own test split, the
service's split as CSV, SHA-256 lineage on datasets, jobs and versions, and clear 4xx."""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import re
import zipfile
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from jobs_helpers import TERMINAL, wait_for_job
from sqlalchemy import func, select

from service.db import Database
from service.models import Dataset

pytestmark = pytest.mark.anyio


def _rows(n: int, seed: int, flip: int = 0) -> list[list[float]]:
    """Headerless rows, the label first (as in the MNIST CSVs): class 1 when x0 + x1 > 0.
    The first `flip` rows get the wrong label, so accuracy on them is not 1 by chance."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (n, 4)).round(3)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    y[:flip] = 1 - y[:flip]
    return [[int(label), *features] for label, features in zip(y, x.tolist(), strict=True)]


def _csv(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    lines = ([",".join(header)] if header else []) + [",".join(map(str, r)) for r in rows]
    return ("\n".join(lines) + "\n").encode()


async def _upload(
    client: httpx.AsyncClient, files: dict[str, tuple[str, bytes]], **fields: str
) -> httpx.Response:
    return await client.post("/v1/datasets", files=files, data=fields)


def _error_field(response: httpx.Response, field: str) -> str:
    assert 400 <= response.status_code < 500, response.text
    details = response.json()["error"]["details"]
    messages = [d["message"] for d in details if d["field"] == field]
    assert messages, (field, response.json())
    return str(messages[0])


def _count(app: FastAPI) -> int:
    database: Database = app.state.db
    with database.session() as session:
        return int(session.scalar(select(func.count()).select_from(Dataset)) or 0)


def _read_split(response: httpx.Response) -> list[dict[str, str]]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


# ----------------------------------------------------------------------------- reading


async def test_headerless_gzip_csv_label_by_index_sha256_and_split_download(
    idle_client: httpx.AsyncClient,
) -> None:
    rows = _rows(50, seed=1)
    packed = gzip.compress(_csv(rows))
    response = await _upload(idle_client, {"file": ("mnist_like.csv.gz", packed)}, label_column="0")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "mnist_like"
    assert body["header"] is False  # detected: the first row is numbers like the rest
    assert body["label_column"] == "0"
    assert body["feature_names"] == ["1", "2", "3", "4"]
    assert body["compression"] == "gzip"
    assert body["sha256"] == hashlib.sha256(packed).hexdigest()  # of the bytes as sent
    assert body["test_split"] == "fraction"
    assert (body["n_rows"], body["n_train"] + body["n_test"]) == (50, 50)

    train = _read_split(await idle_client.get("/v1/datasets/mnist_like/split/train"))
    test = _read_split(await idle_client.get(f"/v1/datasets/{body['id']}/split/test"))
    assert (len(train), len(test)) == (body["n_train"], body["n_test"])
    assert list(test[0]) == ["row", "1", "2", "3", "4", "0"]
    seen = sorted(int(r["row"]) for r in train + test)
    assert seen == list(range(50))
    for line in test:  # each row is the uploaded row it names, label last
        original = rows[int(line["row"])]
        assert [float(line[k]) for k in ("1", "2", "3", "4")] == original[1:]
        assert int(line["0"]) == original[0]
    # The same rows every time (seeded), and a job's test_fraction override is downloadable.
    again = _read_split(await idle_client.get("/v1/datasets/mnist_like/split/test"))
    assert again == test
    half = _read_split(
        await idle_client.get("/v1/datasets/mnist_like/split/test?test_fraction=0.5")
    )
    assert len(half) == 25


async def test_header_detection_can_be_overridden_and_zip_is_unpacked(
    idle_client: httpx.AsyncClient,
) -> None:
    rows = _rows(20, seed=2)
    numeric_header = _csv(rows, header=["9", "8", "7", "6", "5"])
    guessed = await _upload(idle_client, {"file": ("n.csv", numeric_header)}, name="guessed")
    assert guessed.status_code == 201, guessed.text  # numeric names read as a data row ...
    assert (guessed.json()["header"], guessed.json()["n_rows"]) == (False, 21)
    fixed = await _upload(
        idle_client, {"file": ("n.csv", numeric_header)}, header="true", label_column="9"
    )
    assert fixed.status_code == 201, fixed.text
    assert fixed.json()["header"] is True
    assert fixed.json()["feature_names"] == ["8", "7", "6", "5"]

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("spambase/spambase.data.csv", _csv([[*r[1:], r[0]] for r in rows]))
    zipped = await _upload(idle_client, {"file": ("spambase.zip", archive.getvalue())})
    assert zipped.status_code == 201, zipped.text
    assert zipped.json()["compression"] == "zip"
    assert zipped.json()["format"] == "csv"  # told from the member's name
    assert zipped.json()["label_column"] == "4"  # omitted: the last column


async def test_text_gz_upload(idle_client: httpx.AsyncClient) -> None:
    lines = "".join(f"{'spam' if i % 3 else 'ham'}\tmessage {i}\n" for i in range(12))
    response = await _upload(idle_client, {"file": ("sms.tsv.gz", gzip.compress(lines.encode()))})
    assert response.status_code == 201, response.text
    assert (response.json()["format"], response.json()["task"]) == ("text", "text")
    test = _read_split(await idle_client.get("/v1/datasets/sms/split/test"))
    assert list(test[0]) == ["row", "text", "label"]
    assert all(r["text"] == f"message {r['row']}" for r in test)


@pytest.mark.parametrize(
    ("files", "fields", "field", "message"),
    [
        ({"file": ("d.csv", b"a,label\n1,0\n2,caf\xe9\n")}, {}, "file", "line 3 .*0xe9"),
        ({"file": ("d.csv.gz", gzip.compress(b"a,label\n1,0\n" * 200)[:40])}, {}, "file", "gzip"),
        ({"file": ("d.zip", b"PK\x03\x04" + b"\x00" * 30)}, {}, "file", "zip"),
        ({"file": ("d.csv", b"1,2,0\n3,4,1\n5,6\n")}, {}, "file", "line 3 has 2 fields"),
        ({"file": ("d.csv", b"a,b,y\n1,2,0\n3,x,1\n")}, {}, "file.b", "line 3, column 1"),
        ({"file": ("d.csv", b"1,2,0\n3,4,0\n5,6,0\n")}, {}, "file", "one class only"),
        ({"file": ("d.csv", b"1,2,0\n3,4,1\n")}, {"test_fraction": "0.2"}, "test_fraction", ""),
        ({"file": ("d.csv", b"1,2,0\n3,4,1\n")}, {"label_column": "5"}, "label_column", "0 to 2"),
    ],
)
async def test_malformed_files_are_4xx_naming_field_and_line(
    app: FastAPI,
    idle_client: httpx.AsyncClient,
    files: dict[str, tuple[str, bytes]],
    fields: dict[str, str],
    field: str,
    message: str,
) -> None:
    response = await _upload(idle_client, files, **fields)
    assert response.status_code in (400, 422), response.text
    assert re.search(message, _error_field(response, field)), response.text
    assert _count(app) == 0


async def test_zip_with_several_files_is_refused(idle_client: httpx.AsyncClient) -> None:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("train.csv", b"1,2,0\n")
        zf.writestr("test.csv", b"1,2,0\n")
    response = await _upload(idle_client, {"file": ("both.zip", archive.getvalue())})
    assert "2 data files" in _error_field(response, "file")


# ----------------------------------------------------------------------------- own test split


async def test_own_test_file_is_kept_as_is(idle_client: httpx.AsyncClient) -> None:
    train, test = _csv(_rows(30, seed=3)), _csv(_rows(7, seed=4))
    files = {"file": ("train.csv", train), "test_file": ("test.csv", test)}
    refused = await _upload(idle_client, files, label_column="0", test_fraction="0.3")
    assert "test_file" in _error_field(refused, "test_fraction")
    response = await _upload(idle_client, files, label_column="0", name="mine")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["n_rows"], body["n_train"], body["n_test"]) == (37, 30, 7)
    assert body["test_split"] == "test_file"
    assert body["sha256"] == hashlib.sha256(train).hexdigest()
    assert body["test_sha256"] == hashlib.sha256(test).hexdigest()
    split = _read_split(await idle_client.get("/v1/datasets/mine/split/test"))
    assert [int(r["row"]) for r in split] == list(range(7))  # rows of the test file
    assert [int(r["0"]) for r in split] == [r[0] for r in _rows(7, seed=4)]
    overridden = await idle_client.get("/v1/datasets/mine/split/test?test_fraction=0.5")
    _error_field(overridden, "test_fraction")

    bad_cell = _csv([[0, 1, 2, 3, "x"], [1, 1, 2, 3, 4]])
    response = await _upload(
        idle_client, {**files, "test_file": ("t.csv", bad_cell)}, label_column="0", name="b"
    )
    assert "line 1, column 4" in _error_field(response, "test_file.4")
    unknown = _csv([[7, 1, 2, 3, 4]])
    response = await _upload(
        idle_client, {**files, "test_file": ("t.csv", unknown)}, label_column="0", name="c"
    )
    assert "[7]" in _error_field(response, "test_file")
    narrow = _csv([[1, 1, 2]])
    response = await _upload(
        idle_client, {**files, "test_file": ("t.csv", narrow)}, label_column="0", name="d"
    )
    _error_field(response, "test_file")


async def test_test_dataset_named_at_submit(idle_client: httpx.AsyncClient) -> None:
    train_bytes = _csv(_rows(30, seed=5))
    train = await _upload(
        idle_client, {"file": ("t.csv", train_bytes)}, label_column="0", test_fraction="0"
    )
    assert train.status_code == 201, train.text
    assert (train.json()["test_split"], train.json()["n_test"]) == ("none", 0)
    test_bytes = _csv(_rows(9, seed=6))
    held = await _upload(
        idle_client, {"file": ("h.csv", test_bytes)}, label_column="0", test_fraction="0"
    )
    wide = await _upload(idle_client, {"file": ("w.csv", b"1,2,0\n3,4,1\n")}, test_fraction="0")
    assert held.status_code == wide.status_code == 201

    job: dict[str, Any] = {"dataset": "t", "model_name": "m", "spec": _spec()}
    missing = await idle_client.post("/v1/jobs", json=job)
    assert "test_fraction 0" in _error_field(missing, "test_dataset")
    narrow = await idle_client.post("/v1/jobs", json={**job, "test_dataset": "w"})
    assert "features" in _error_field(narrow, "test_dataset")
    unknown = await idle_client.post("/v1/jobs", json={**job, "test_dataset": "nope"})
    assert unknown.status_code == 404
    both = await idle_client.post(
        "/v1/jobs", json={**job, "test_dataset": "h", "test_fraction": 0.2}
    )
    _error_field(both, "test_fraction")
    on_builtin = await idle_client.post(
        "/v1/jobs", json={**job, "dataset": "xor", "test_dataset": "h"}
    )
    _error_field(on_builtin, "test_dataset")

    submitted = await idle_client.post("/v1/jobs", json={**job, "test_dataset": "h"})
    assert submitted.status_code == 202, submitted.text
    shown = (await idle_client.get(submitted.headers["location"])).json()
    assert shown["dataset_sha256"] == hashlib.sha256(train_bytes).hexdigest()
    assert shown["test_dataset"] == "h"
    assert shown["test_sha256"] == hashlib.sha256(test_bytes).hexdigest()
    assert "test_dataset" not in shown["hyperparameters"]
    # The lineage outlives the datasets.
    assert (await idle_client.delete("/v1/datasets/t")).status_code == 204
    after = (await idle_client.get(submitted.headers["location"])).json()
    assert after["dataset_sha256"] == shown["dataset_sha256"]


async def test_split_of_builtin_or_unknown(idle_client: httpx.AsyncClient) -> None:
    assert (await idle_client.get("/v1/datasets/xor/split/test")).status_code == 409
    assert (await idle_client.get("/v1/datasets/nope/split/test")).status_code == 404
    assert (await idle_client.get("/v1/datasets/xor/split/other")).status_code == 422


# ----------------------------------------------------------------------------- end to end


def _spec() -> dict[str, Any]:
    return {
        "input_dim": 4,
        "layers": [
            {"type": "dense", "units": 8, "activation": "tanh"},
            {"type": "dense", "units": 2, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.05},
        "training": {"epochs": 30, "batch_size": 16, "seed": 1},
    }


async def test_job_is_tested_on_exactly_the_uploaded_test_rows(
    admin_client: httpx.AsyncClient,
) -> None:
    test_rows = _rows(15, seed=8, flip=3)  # three wrong labels: accuracy tells these rows apart
    train_gz = gzip.compress(_csv(_rows(80, seed=7)))
    test_gz = gzip.compress(_csv(test_rows))
    uploaded = await _upload(
        admin_client,
        {"file": ("own.csv.gz", train_gz), "test_file": ("own-test.csv.gz", test_gz)},
        label_column="0",
    )
    assert uploaded.status_code == 201, uploaded.text
    submitted = await admin_client.post(
        "/v1/jobs", json={"dataset": "own", "model_name": "own", "spec": _spec()}
    )
    assert submitted.status_code == 202, submitted.text
    job = await wait_for_job(
        admin_client, submitted.json()["id"], lambda j: j["status"] in TERMINAL, timeout=120
    )
    assert job["status"] == "succeeded", job
    assert job["dataset_sha256"] == hashlib.sha256(train_gz).hexdigest()
    assert job["test_sha256"] == hashlib.sha256(test_gz).hexdigest()

    version = (await admin_client.get("/v1/models/own/versions/1")).json()
    assert version["dataset_sha256"] == job["dataset_sha256"]
    assert version["test_sha256"] == job["test_sha256"]
    assert version["metrics"]["n_test"] == 15
    predicted = await admin_client.post(
        "/v1/models/own:predict", json={"instances": [row[1:] for row in test_rows]}
    )
    assert predicted.status_code == 200, predicted.text
    labels = [p["label"] for p in predicted.json()["predictions"]]
    accuracy = np.mean([label == row[0] for label, row in zip(labels, test_rows, strict=True)])
    assert version["metrics"]["test"]["accuracy"] == pytest.approx(float(accuracy))
