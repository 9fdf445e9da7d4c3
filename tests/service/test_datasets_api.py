"""/v1/datasets: catalog listing, uploads of every format, malformed files, limits, isolation."""

from __future__ import annotations

import gzip
import io
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from service_helpers import bearer, make_settings
from sqlalchemy import func, select

from nn_core.datasets.idx import encode_idx
from service import auth
from service.app import create_app
from service.config import Settings
from service.datasets_store import DatasetUnavailableError, load_training_data
from service.db import Database
from service.errors import NotFound
from service.models import Dataset

pytestmark = pytest.mark.anyio


def _db(app: FastAPI) -> Database:
    database: Database = app.state.db
    return database


@pytest.fixture
def alice(app: FastAPI) -> dict[str, str]:
    return bearer(auth.create_key(_db(app), "alice").key)


@pytest.fixture
def bob(app: FastAPI) -> dict[str, str]:
    return bearer(auth.create_key(_db(app), "bob").key)


def _count(app: FastAPI) -> int:
    with _db(app).session() as session:
        return int(session.scalar(select(func.count()).select_from(Dataset)) or 0)


async def _upload(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    files: dict[str, tuple[str, bytes]],
    **fields: str,
) -> httpx.Response:
    return await client.post("/v1/datasets", headers=headers, files=files, data=fields)


def _field_named(response: httpx.Response, field: str) -> str:
    details = response.json()["error"]["details"]
    fields = [d["field"] for d in details]
    assert field in fields, (field, response.json())
    return str(next(d["message"] for d in details if d["field"] == field))


IRIS_CSV = b"a,b,species\n" + b"".join(
    f"{i},{i * 0.5},{'setosa' if i % 3 else 'virginica'}\n".encode() for i in range(30)
)


# ----------------------------------------------------------------------------- catalog


async def test_catalog_is_listed_with_availability(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await client.get("/v1/datasets", headers=alice)
    assert response.status_code == 200, response.text
    by_name = {d["name"]: d for d in response.json()["datasets"]}
    assert {"xor", "circle", "gauss", "spiral", "mnist", "sms-spam"} <= set(by_name)
    assert by_name["xor"]["available"] is True
    assert by_name["xor"]["source"] == "builtin"
    assert by_name["xor"]["n_features"] == 2
    assert by_name["mnist"]["available"] is False  # nothing downloaded in a test data dir
    assert by_name["sms-spam"]["task"] == "text"
    assert by_name["sms-spam"]["n_features"] is None

    detail = await client.get("/v1/datasets/spiral", headers=alice)
    assert detail.status_code == 200
    assert detail.json()["classes"] == [0, 1]


async def test_listing_needs_a_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v1/datasets")).status_code == 401


async def test_unknown_dataset_is_404(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    response = await client.get("/v1/datasets/no-such-set", headers=alice)
    assert response.status_code == 404
    assert response.json()["error"]["details"][0]["field"] == "dataset"


# ----------------------------------------------------------------------------- formats


async def test_csv_upload_metadata_and_location(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await _upload(
        client, alice, {"file": ("iris.csv", IRIS_CSV)}, label_column="species"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/datasets/{body['id']}"
    assert body["name"] == "iris"
    assert body["format"] == "csv"
    assert body["task"] == "classification"
    assert (body["n_rows"], body["n_features"]) == (30, 2)
    assert body["classes"] == ["setosa", "virginica"]
    assert body["class_balance"] == {"setosa": 20, "virginica": 10}
    assert body["test_fraction"] == 0.2
    assert (body["n_train"], body["n_test"]) == (24, 6)
    assert body["size_bytes"] > 0

    again = await client.get(response.headers["location"], headers=alice)
    assert again.json() == body
    by_name = await client.get("/v1/datasets/iris", headers=alice)
    assert by_name.json()["id"] == body["id"]


async def test_npz_upload_images_flattened(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    buffer = io.BytesIO()
    rng = np.random.default_rng(0)
    np.savez(buffer, X=rng.random((40, 4, 4)).astype(np.float32), y=np.arange(40) % 4)
    response = await _upload(
        client, alice, {"file": ("blobs.npz", buffer.getvalue())}, test_fraction="0.25"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["format"], body["n_rows"], body["n_features"]) == ("npz", 40, 16)
    assert body["classes"] == [0, 1, 2, 3]
    assert body["class_balance"] == {"0": 10, "1": 10, "2": 10, "3": 10}
    assert (body["n_train"], body["n_test"]) == (32, 8)


async def test_npz_float_targets_are_regression(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, X=np.arange(20.0).reshape(10, 2), y=np.linspace(0, 1, 10))
    response = await _upload(client, alice, {"file": ("reg.npz", buffer.getvalue())})
    assert response.status_code == 201, response.text
    assert response.json()["task"] == "regression"
    assert response.json()["classes"] is None


async def test_idx_pair_upload(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    images = np.random.default_rng(1).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    labels = (np.arange(50) % 10).astype(np.uint8)
    response = await _upload(
        client,
        alice,
        {
            "file": ("train-images-idx3-ubyte.gz", encode_idx(images, compress=True)),
            "labels": ("train-labels-idx1-ubyte", encode_idx(labels)),
        },
        name="digits",
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["format"], body["n_rows"], body["n_features"]) == ("idx", 50, 784)
    assert body["classes"] == list(range(10))
    assert set(body["class_balance"].values()) == {5}


async def test_text_upload(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    lines = ["label\ttext"] + [
        f"{'spam' if i % 4 == 0 else 'ham'}\tmessage number {i} WIN NOW" for i in range(40)
    ]
    response = await _upload(
        client, alice, {"file": ("sms.txt", "\n".join(lines).encode())}, name="sms"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["task"], body["format"], body["n_rows"]) == ("text", "text", 40)
    assert body["n_features"] is None
    assert body["class_balance"] == {"ham": 30, "spam": 10}


async def test_format_field_overrides_the_file_name(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await _upload(
        client, alice, {"file": ("data.bin", IRIS_CSV)}, format="csv", label_column="species"
    )
    assert response.status_code == 201, response.text
    unknown = await _upload(client, alice, {"file": ("data.bin", IRIS_CSV)}, name="x")
    assert unknown.status_code == 422
    _field_named(unknown, "body.format")


# ----------------------------------------------------------------------------- malformed


async def test_bad_csv_cell_names_column_and_line(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    bad = b"a,b,y\n1,2,0\n3,oops,1\n"
    response = await _upload(client, alice, {"file": ("bad.csv", bad)}, label_column="y")
    assert response.status_code == 422, response.text
    message = _field_named(response, "file.b")
    assert "line 3" in message and "oops" in message
    assert _count(app) == 0


async def test_unknown_label_column_and_the_default(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    response = await _upload(client, alice, {"file": ("d.csv", IRIS_CSV)}, label_column="nope")
    assert response.status_code == 422
    assert "species" in _field_named(response, "label_column")
    assert _count(app) == 0
    omitted = await _upload(client, alice, {"file": ("d.csv", IRIS_CSV)})
    assert omitted.status_code == 201, omitted.text
    assert omitted.json()["label_column"] == "species"  # the last column


async def test_npz_object_array_refused(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, X=np.zeros((4, 2)), y=np.array([{"a": 1}] * 4, dtype=object))
    response = await _upload(client, alice, {"file": ("evil.npz", buffer.getvalue())})
    assert response.status_code == 422, response.text
    assert "object" in _field_named(response, "file.y")
    assert _count(app) == 0


async def test_npz_nan_and_not_a_zip(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, X=np.array([[1.0], [np.nan], [2.0]]), y=np.array([0, 1, 0]))
    nan = await _upload(client, alice, {"file": ("nan.npz", buffer.getvalue())})
    assert nan.status_code == 422
    assert "row 1" in _field_named(nan, "file.X")
    junk = await _upload(client, alice, {"file": ("junk.npz", b"not a zip at all")})
    assert junk.status_code == 422
    _field_named(junk, "file")
    assert _count(app) == 0


async def test_truncated_idx_and_wrong_magic(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    images = encode_idx(np.zeros((10, 28, 28), dtype=np.uint8))
    labels = encode_idx(np.zeros(10, dtype=np.uint8))
    truncated = await _upload(
        client, alice, {"file": ("i.idx", images[:-100]), "labels": ("l.idx", labels)}
    )
    assert truncated.status_code == 422
    assert "truncated" in _field_named(truncated, "file")

    wrong_magic = await _upload(
        client, alice, {"file": ("i.idx", b"\x01\x02" + images[2:]), "labels": ("l.idx", labels)}
    )
    assert wrong_magic.status_code == 422
    assert "magic" in _field_named(wrong_magic, "file")

    corrupt_gzip = gzip.compress(images)[:-20]
    bad_gz = await _upload(
        client, alice, {"file": ("i.gz", corrupt_gzip), "labels": ("l.idx", labels)}
    )
    assert bad_gz.status_code == 422

    mismatch = await _upload(
        client,
        alice,
        {"file": ("i.idx", images), "labels": ("l.idx", encode_idx(np.zeros(9, np.uint8)))},
    )
    assert mismatch.status_code == 422
    _field_named(mismatch, "labels")

    no_labels = await _upload(client, alice, {"file": ("i.idx", images)})
    assert no_labels.status_code == 422
    _field_named(no_labels, "labels")
    assert _count(app) == 0


async def test_text_without_tabs(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    response = await _upload(client, alice, {"file": ("t.txt", b"ham\thello\nno tab here\n")})
    assert response.status_code == 422
    assert "line 2" in _field_named(response, "file")
    assert _count(app) == 0


async def test_bad_form_fields(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    files = {"file": ("iris.csv", IRIS_CSV)}
    for fields, field in [
        ({"label_column": "species", "test_fraction": "1.5"}, "body.test_fraction"),
        ({"label_column": "species", "test_fraction": "nan"}, "body.test_fraction"),
        ({"label_column": "species", "format": "xlsx"}, "body.format"),
        ({"label_column": "species", "name": "../../etc/passwd"}, "body.name"),
        ({"label_column": "species", "colour": "red"}, "body.colour"),
    ]:
        response = await _upload(client, alice, files, **fields)
        assert response.status_code == 422, (fields, response.text)
        _field_named(response, field)
    not_a_file = await client.post("/v1/datasets", headers=alice, data={"file": "text"})
    assert not_a_file.status_code == 422
    _field_named(not_a_file, "body.file")
    assert _count(app) == 0


async def test_split_that_leaves_test_empty(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    tiny = b"x,y\n1,a\n2,b\n"
    response = await _upload(client, alice, {"file": ("t.csv", tiny)}, label_column="y")
    assert response.status_code == 422
    _field_named(response, "test_fraction")


async def test_duplicate_and_reserved_names(
    client: httpx.AsyncClient, alice: dict[str, str], bob: dict[str, str]
) -> None:
    files = {"file": ("iris.csv", IRIS_CSV)}
    assert (await _upload(client, alice, files, label_column="species")).status_code == 201
    again = await _upload(client, alice, files, label_column="species")
    assert again.status_code == 409
    # Names are per owner.
    assert (await _upload(client, bob, files, label_column="species")).status_code == 201
    builtin = await _upload(client, alice, files, label_column="species", name="xor")
    assert builtin.status_code == 409


# ----------------------------------------------------------------------------- limits


async def test_upload_over_the_limit_is_413_json(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path / "data", max_upload_bytes=10_000)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        headers = bearer(auth.create_key(_db(application), "alice").key)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            big = b"a,y\n" + b"1,0\n" * 5000
            response = await _upload(client, headers, {"file": ("big.csv", big)}, label_column="y")
            assert response.status_code == 413, response.text
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["error"]["type"] == "payload_too_large"

            # Streamed without a Content-Length: the limit still holds mid-stream.
            async def chunks() -> AsyncIterator[bytes]:
                boundary = b"--xyz\r\n"
                yield boundary
                yield b'Content-Disposition: form-data; name="file"; filename="s.csv"\r\n\r\n'
                for _ in range(100):
                    yield b"1,0\n" * 100
                yield b"\r\n--xyz--\r\n"

            streamed = await client.post(
                "/v1/datasets",
                headers={**headers, "Content-Type": "multipart/form-data; boundary=xyz"},
                content=chunks(),
            )
            assert streamed.status_code == 413, streamed.text
            assert streamed.json()["error"]["type"] == "payload_too_large"

            small = await _upload(
                client,
                headers,
                {"file": ("s.csv", b"a,y\n1,0\n2,1\n3,0\n4,1\n")},
                label_column="y",
                test_fraction="0.5",
            )
            assert small.status_code == 201, small.text
            with _db(application).session() as session:
                assert session.scalar(select(func.count()).select_from(Dataset)) == 1


async def test_json_routes_keep_the_small_body_limit(
    client: httpx.AsyncClient, settings: Settings, alice: dict[str, str]
) -> None:
    body = b"x" * (settings.max_body_bytes + 1)
    response = await client.post(
        "/v1/models/m:predict", headers={**alice, "Content-Type": "application/json"}, content=body
    )
    assert response.status_code == 413


# ----------------------------------------------------------------------------- isolation


async def test_other_owner_gets_404(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str], bob: dict[str, str]
) -> None:
    created = await _upload(client, alice, {"file": ("iris.csv", IRIS_CSV)}, label_column="species")
    dataset_id = created.json()["id"]
    assert (await client.get(f"/v1/datasets/{dataset_id}", headers=bob)).status_code == 404
    assert (await client.get("/v1/datasets/iris", headers=bob)).status_code == 404
    assert (await client.delete(f"/v1/datasets/{dataset_id}", headers=bob)).status_code == 404
    listed = (await client.get("/v1/datasets", headers=bob)).json()["datasets"]
    assert all(d["source"] == "builtin" for d in listed)
    with _db(app).session() as session, pytest.raises(NotFound):
        load_training_data(session, app.state.settings, "bob", dataset_id)
    assert _count(app) == 1


async def test_delete(client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]) -> None:
    created = await _upload(client, alice, {"file": ("iris.csv", IRIS_CSV)}, label_column="species")
    dataset_id = created.json()["id"]
    assert (await client.delete("/v1/datasets/xor", headers=alice)).status_code == 409
    assert (await client.delete(f"/v1/datasets/{dataset_id}", headers=alice)).status_code == 204
    assert (await client.get(f"/v1/datasets/{dataset_id}", headers=alice)).status_code == 404
    assert (await client.delete(f"/v1/datasets/{dataset_id}", headers=alice)).status_code == 404
    assert _count(app) == 0


# ----------------------------------------------------------------------------- training data


async def test_load_training_data_splits_uploads_stratified(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    created = await _upload(client, alice, {"file": ("iris.csv", IRIS_CSV)}, label_column="species")
    dataset_id = created.json()["id"]
    with _db(app).session() as session:
        data = load_training_data(session, app.state.settings, "alice", dataset_id)
        again = load_training_data(session, app.state.settings, "alice", "iris")
    assert data.dataset_id == dataset_id and data.source == "upload"
    assert data.X_train.shape == (24, 2) and data.X_test.shape == (6, 2)
    assert sorted(data.y_test.tolist()) == ["setosa"] * 4 + ["virginica"] * 2
    assert data.y_train.dtype.kind == "U"
    np.testing.assert_array_equal(data.X_test, again.X_test)  # fixed seed
    assert data.metadata["feature_names"] == ["a", "b"]
    assert data.metadata["label_column"] == "species"


async def test_load_training_data_builtin_and_unavailable(app: FastAPI) -> None:
    settings = app.state.settings
    with _db(app).session() as session:
        xor = load_training_data(session, settings, "anyone", "xor")
        assert xor.dataset_id is None and xor.X_train.shape[1] == 2
        with pytest.raises(DatasetUnavailableError) as caught:
            load_training_data(session, settings, "anyone", "mnist", download=False)
    error = caught.value
    assert error.status == 503
    assert "train-images-idx3-ubyte.gz" in error.message
    assert str(settings.data_dir) in error.details[0].message
    assert "sha256" in error.details[0].message


async def test_uploads_may_exceed_the_json_body_limit(tmp_path: Path, database_url: str) -> None:
    """The upload routes carry their own (larger) limit; JSON routes keep the small one."""
    settings = make_settings(
        database_url, tmp_path / "data", max_body_bytes=1000, max_upload_bytes=200_000
    )
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        headers = bearer(auth.create_key(_db(application), "alice").key)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            big = b"a,y\n" + b"".join(f"{i},{i % 2}\n".encode() for i in range(5000))
            assert 20_000 < len(big) < 200_000
            response = await _upload(client, headers, {"file": ("big.csv", big)}, label_column="y")
            assert response.status_code == 201, response.text
            assert response.json()["n_rows"] == 5000
            json_body = {"instances": [[0.0] * 500]}
            too_big = await client.post("/v1/models/m:predict", headers=headers, json=json_body)
            assert too_big.status_code == 413
            assert too_big.json()["error"]["type"] == "payload_too_large"
