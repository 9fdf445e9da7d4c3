"""/v1/models: upload/download round trip, listings, aliases, deletes, cache, isolation."""

from __future__ import annotations

import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from service_helpers import bearer, make_settings
from serving_helpers import (
    db,
    register_job_version,
    regression_model_file,
    upload_model,
    xor_model_file,
)
from sqlalchemy import func, select

from service import auth
from service.app import create_app
from service.models import Model, ModelAlias, ModelVersion
from service.registry.cache import ModelCache

pytestmark = pytest.mark.anyio


@pytest.fixture
def alice(app: FastAPI) -> dict[str, str]:
    return bearer(auth.create_key(db(app), "alice").key)


@pytest.fixture
def bob(app: FastAPI) -> dict[str, str]:
    return bearer(auth.create_key(db(app), "bob").key)


def _counts(app: FastAPI) -> tuple[int, int]:
    with db(app).session() as session:
        models = session.scalar(select(func.count()).select_from(Model)) or 0
        versions = session.scalar(select(func.count()).select_from(ModelVersion)) or 0
    return int(models), int(versions)


def _cache(app: FastAPI) -> ModelCache:
    cache: ModelCache = app.state.model_cache
    return cache


async def _predict(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, **body: object
) -> httpx.Response:
    payload = {"instances": [[0, 0], [0, 1]], **body}
    return await client.post(f"/v1/models/{name}:predict", headers=headers, json=payload)


# ----------------------------------------------------------------------------- upload/download


async def test_upload_download_round_trip_then_predict(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    data = xor_model_file()
    created = await upload_model(client, alice, "xor", data)
    assert created.status_code == 201, created.text
    body = created.json()
    assert created.headers["location"] == "/v1/models/xor/versions/1"
    assert (body["model"], body["version"], body["job_id"]) == ("xor", 1, None)
    assert body["input_dim"] == 2
    assert body["loss"] == "categorical_crossentropy"
    assert body["size_bytes"] == len(data)

    download = await client.get("/v1/models/xor/versions/1/download", headers=alice)
    assert download.status_code == 200
    assert download.headers["content-type"] == "application/octet-stream"
    assert 'filename="xor-v1.npz"' in download.headers["content-disposition"]
    assert download.content == data

    # The downloaded file uploads again as the next version.
    again = await upload_model(client, alice, "xor", download.content)
    assert again.json()["version"] == 2

    predicted = await _predict(client, alice, "xor")
    assert predicted.status_code == 200, predicted.text
    assert [p["label"] for p in predicted.json()["predictions"]] == ["no", "yes"]
    assert predicted.json()["version"] == 2


async def test_broken_model_files_store_nothing(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    data = xor_model_file()
    object_npz = io.BytesIO()
    np.savez(object_npz, __meta__=np.array([{"x": 1}], dtype=object))
    for broken in (b"not a model", data[: len(data) // 2], object_npz.getvalue()):
        response = await upload_model(client, alice, "xor", broken)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "file"
    empty = await client.post(
        "/v1/models/xor/versions", headers=alice, files={"file": ("m.npz", b"")}
    )
    assert empty.status_code == 422
    assert _counts(app) == (0, 0)


async def test_model_over_the_parameter_limit_is_refused(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path / "data", max_model_params=10)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        headers = bearer(auth.create_key(db(application), "alice").key)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await upload_model(client, headers, "big", xor_model_file())
        assert response.status_code == 422, response.text
        assert "parameters" in response.json()["error"]["message"]
        assert _counts(application) == (0, 0)


async def test_invalid_model_name_on_upload(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await upload_model(client, alice, "bad name!", xor_model_file())
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "name"


async def test_oversized_model_upload_is_413(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path / "data", max_upload_bytes=500)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        headers = bearer(auth.create_key(db(application), "alice").key)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await upload_model(client, headers, "xor", xor_model_file())
        assert response.status_code == 413
        assert response.json()["error"]["type"] == "payload_too_large"
        assert _counts(application) == (0, 0)


# ----------------------------------------------------------------------------- listings


async def test_list_and_detail_show_metrics_jobs_and_aliases(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    metrics = {"test_accuracy": 1.0, "confusion_matrix": [[20, 0], [0, 20]]}
    register_job_version(app, "alice", "xor", xor_model_file(), metrics)
    register_job_version(app, "alice", "xor", xor_model_file(), {"test_accuracy": 0.9})
    moved = await client.put(
        "/v1/models/xor/aliases/production", headers=alice, json={"version": 1}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["version"] == 1

    listed = await client.get("/v1/models", headers=alice)
    assert listed.status_code == 200
    [summary] = listed.json()["models"]
    assert summary["name"] == "xor" and summary["n_versions"] == 2
    assert summary["latest_version"]["version"] == 2
    assert summary["aliases"] == {"production": 1}

    detail = (await client.get("/v1/models/xor", headers=alice)).json()
    first, second = detail["versions"]
    assert first["metrics"] == metrics
    assert first["job_id"].startswith("job_")
    assert first["aliases"] == ["production"] and second["aliases"] == []
    assert first["created_at"]

    version = (await client.get("/v1/models/xor/versions/1", headers=alice)).json()
    assert version["spec"]["input_dim"] == 2
    by_alias = await client.get("/v1/models/xor/versions/production", headers=alice)
    assert by_alias.json()["version"] == 1
    latest = await client.get("/v1/models/xor/versions/latest/download", headers=alice)
    assert latest.status_code == 200
    assert "xor-v2.npz" in latest.headers["content-disposition"]
    missing = await client.get("/v1/models/xor/versions/9", headers=alice)
    assert missing.status_code == 404
    assert missing.json()["error"]["details"][0]["field"] == "version"


# ----------------------------------------------------------------------------- aliases


async def test_aliases_move_and_select_versions(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    await upload_model(client, alice, "m", xor_model_file())
    await upload_model(client, alice, "m", regression_model_file())
    put = await client.put("/v1/models/m/aliases/production", headers=alice, json={"version": 1})
    assert put.status_code == 200
    first = await _predict(client, alice, "m", alias="production")
    assert first.json()["version"] == 1
    assert "probabilities" in first.json()["predictions"][0]

    moved = await client.put("/v1/models/m/aliases/production", headers=alice, json={"version": 2})
    assert moved.json()["version"] == 2
    regression = await client.post(
        "/v1/models/m:predict", headers=alice, json={"instances": [[0.5]], "alias": "production"}
    )
    assert regression.json()["version"] == 2
    assert "values" in regression.json()["predictions"][0]
    with db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(ModelAlias)) == 1

    for alias, body, field in [
        ("1abc", {"version": 1}, "path.alias"),
        ("latest", {"version": 1}, "alias"),
        ("staging", {"version": 7}, "body.version"),
        ("staging", {"version": "one"}, "body.version"),
        ("staging", {}, "body.version"),
    ]:
        bad = await client.put(f"/v1/models/m/aliases/{alias}", headers=alice, json=body)
        assert bad.status_code == 422, (alias, body, bad.text)
        assert bad.json()["error"]["details"][0]["field"] == field

    assert (
        await client.delete("/v1/models/m/aliases/production", headers=alice)
    ).status_code == 204
    gone = await client.delete("/v1/models/m/aliases/production", headers=alice)
    assert gone.status_code == 404
    unknown = await _predict(client, alice, "m", alias="production")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["details"][0]["field"] == "alias"


# ----------------------------------------------------------------------------- deletes


async def test_delete_version_refused_while_aliased(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    await upload_model(client, alice, "m", xor_model_file())
    await upload_model(client, alice, "m", xor_model_file())
    await client.put("/v1/models/m/aliases/production", headers=alice, json={"version": 2})
    refused = await client.delete("/v1/models/m/versions/2", headers=alice)
    assert refused.status_code == 409
    assert "production" in refused.json()["error"]["message"]
    assert (await client.delete("/v1/models/m/versions/1", headers=alice)).status_code == 204
    assert (await client.get("/v1/models/m/versions/1", headers=alice)).status_code == 404
    assert _counts(app) == (1, 1)
    assert (await client.delete("/v1/models/m", headers=alice)).status_code == 204
    assert (await client.get("/v1/models/m", headers=alice)).status_code == 404
    assert _counts(app) == (0, 0)
    with db(app).session() as session:
        assert session.scalar(select(func.count()).select_from(ModelAlias)) == 0


async def test_delete_invalidates_the_loader_cache(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str]
) -> None:
    await upload_model(client, alice, "m", xor_model_file())
    assert (await _predict(client, alice, "m")).status_code == 200
    assert (await _predict(client, alice, "m")).status_code == 200
    cache = _cache(app)
    assert len(cache) == 1 and cache.misses == 1 and cache.hits == 1

    assert (await client.delete("/v1/models/m", headers=alice)).status_code == 204
    assert len(cache) == 0
    assert (await _predict(client, alice, "m")).status_code == 404

    # A new model under the same name (possibly reusing row ids) is never served stale.
    await upload_model(client, alice, "m", regression_model_file())
    fresh = await client.post("/v1/models/m:predict", headers=alice, json={"instances": [[1.0]]})
    assert fresh.status_code == 200, fresh.text
    assert abs(fresh.json()["predictions"][0]["values"][0] - 3.0) < 0.3

    assert (await client.delete("/v1/models/m/versions/1", headers=alice)).status_code == 204
    assert len(cache) == 0


def test_cache_is_bounded_lru() -> None:
    from nn_core.serialize import load_model

    model = load_model(xor_model_file())
    cache = ModelCache(max_entries=2)
    from datetime import UTC, datetime

    now = datetime.now(UTC)
    for key in (1, 2, 3):
        cache.get_or_load((key, now), lambda: model)
    assert len(cache) == 2 and (1, now) not in cache and (3, now) in cache
    small = ModelCache(max_entries=10, max_bytes=1)
    small.get_or_load((1, now), lambda: model)
    small.get_or_load((2, now), lambda: model)
    assert len(small) == 1  # over the byte budget: only the newest is kept


# ----------------------------------------------------------------------------- isolation


async def test_other_owner_sees_nothing(
    client: httpx.AsyncClient, app: FastAPI, alice: dict[str, str], bob: dict[str, str]
) -> None:
    await upload_model(client, alice, "secret", xor_model_file())
    await client.put("/v1/models/secret/aliases/production", headers=alice, json={"version": 1})
    infer_body = {
        "inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [0, 1]}]
    }
    attempts = [
        client.get("/v1/models/secret", headers=bob),
        client.get("/v1/models/secret/versions/1", headers=bob),
        client.get("/v1/models/secret/versions/1/download", headers=bob),
        _predict(client, bob, "secret"),
        client.put("/v1/models/secret/aliases/production", headers=bob, json={"version": 1}),
        client.delete("/v1/models/secret/aliases/production", headers=bob),
        client.delete("/v1/models/secret/versions/1", headers=bob),
        client.delete("/v1/models/secret", headers=bob),
        client.get("/v2/models/secret", headers=bob),
        client.get("/v2/models/secret/ready", headers=bob),
        client.post("/v2/models/secret/infer", headers=bob, json=infer_body),
    ]
    for attempt in attempts:
        response = await attempt
        assert response.status_code == 404, (response.request.url, response.text)
    assert (await client.get("/v1/models", headers=bob)).json() == {"models": []}

    # Bob's upload under the same name is his own model, alice's stays untouched.
    mine = await upload_model(client, bob, "secret", regression_model_file())
    assert mine.json()["version"] == 1
    assert _counts(app) == (2, 2)
    mine_predicted = await client.post(
        "/v1/models/secret:predict", headers=bob, json={"instances": [[1.0]]}
    )
    assert "values" in mine_predicted.json()["predictions"][0]
    alices = await _predict(client, alice, "secret", alias="production")
    assert alices.json()["predictions"][0]["label"] == "no"


async def test_models_need_a_key(client: httpx.AsyncClient) -> None:
    for response in [
        await client.get("/v1/models"),
        await client.post("/v1/models/m:predict", json={"instances": [[0, 0]]}),
        await client.get("/v2/models/m"),
        await client.post("/v1/models/m/versions", files={"file": ("m.npz", b"x")}),
    ]:
        assert response.status_code == 401, response.request.url
