"""Predictions: TF-Serving :predict and Open Inference V2, hostile inputs, the rate limit."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from service_helpers import bearer, make_settings
from serving_helpers import (
    db,
    regression_model_file,
    spam_model_file,
    upload_model,
    xor_model_file,
)

from nn_core.spec import build_model
from service import auth, predictor
from service.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def alice(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    headers = bearer(auth.create_key(db(app), "alice").key)
    for name, data in [
        ("xor", xor_model_file()),
        ("spam", spam_model_file()),
        ("line", regression_model_file()),
    ]:
        response = await upload_model(client, headers, name, data)
        assert response.status_code == 201, response.text
    return headers


def _error_field(response: httpx.Response) -> str:
    field: str = response.json()["error"]["details"][0]["field"]
    return field


def _v2_error(response: httpx.Response) -> str:
    """The message of an error in the Open Inference Protocol's shape, {"error": "..."}."""
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    message: str = body["error"]
    return message


async def _raw(client: httpx.AsyncClient, headers: dict[str, str], path: str, body: str) -> Any:
    return await client.post(
        path, headers={**headers, "Content-Type": "application/json"}, content=body
    )


# ----------------------------------------------------------------------------- :predict


async def test_predict_classifier(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    response = await client.post(
        "/v1/models/xor:predict", headers=alice, json={"instances": [[0, 0], [0, 1], [1, 1]]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == ("xor", 1)
    labels = [p["label"] for p in body["predictions"]]
    assert labels == ["no", "yes", "no"]
    for prediction in body["predictions"]:
        assert set(prediction) == {"label", "probabilities"}
        assert set(prediction["probabilities"]) == {"no", "yes"}
        assert abs(sum(prediction["probabilities"].values()) - 1.0) < 1e-5


async def test_predict_text_and_regression(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    spam = await client.post(
        "/v1/models/spam:predict",
        headers=alice,
        json={"instances": ["win a free prize now", "see you later friend"]},
    )
    assert spam.status_code == 200, spam.text
    first, second = spam.json()["predictions"]
    assert (first["label"], second["label"]) == ("spam", "ham")
    assert first["probabilities"]["spam"] > 0.5 > second["probabilities"]["spam"]

    numbers_to_text = await client.post(
        "/v1/models/spam:predict", headers=alice, json={"instances": [1, 2]}
    )
    assert numbers_to_text.status_code == 422
    assert _error_field(numbers_to_text) == "instances[0]"

    line = await client.post(
        "/v1/models/line:predict", headers=alice, json={"instances": [[0.0], [1.0]]}
    )
    assert line.status_code == 200
    values = [p["values"][0] for p in line.json()["predictions"]]
    assert abs(values[0] - 1.0) < 0.3 and abs(values[1] - 3.0) < 0.3
    scalar_rows = await client.post(
        "/v1/models/line:predict", headers=alice, json={"instances": [0.0, 1.0]}
    )
    assert scalar_rows.status_code == 200


async def test_predict_picks_versions(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    await upload_model(client, alice, "xor", xor_model_file())
    latest = await client.post(
        "/v1/models/xor:predict", headers=alice, json={"instances": [[0, 0]]}
    )
    assert latest.json()["version"] == 2
    pinned = await client.post(
        "/v1/models/xor:predict", headers=alice, json={"instances": [[0, 0]], "version": 1}
    )
    assert pinned.json()["version"] == 1
    both = await client.post(
        "/v1/models/xor:predict",
        headers=alice,
        json={"instances": [[0, 0]], "version": 1, "alias": "production"},
    )
    assert both.status_code == 422
    missing = await client.post(
        "/v1/models/xor:predict", headers=alice, json={"instances": [[0, 0]], "version": 5}
    )
    assert missing.status_code == 404 and _error_field(missing) == "version"
    unknown = await client.post("/v1/models/nope:predict", headers=alice, json={"instances": [[0]]})
    assert unknown.status_code == 404 and _error_field(unknown) == "model"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"instances": [[NaN, 1]]}', "instances[0]"),
        ('{"instances": [[0, 1], [Infinity, 1]]}', "instances[1]"),
        ('{"instances": [[0, 1], [1, -Infinity]]}', "instances[1]"),
        ('{"instances": [[0, null]]}', "instances[0]"),
        ('{"instances": [[0, 1e39]]}', "instances[0]"),
        ('{"instances": [[0, 1, 2]]}', "instances"),
        ('{"instances": [[0, 1], [1]]}', "instances"),
        ('{"instances": [["a", "b"]]}', "instances[0]"),
        ('{"instances": [{"x": 1}]}', "instances[0]"),
        ('{"instances": [0, 1]}', "instances[0]"),
        ('{"instances": []}', "body.instances"),
        ('{"instances": [[0, 1]], "version": "1"}', "body.version"),
        ('{"instances": [[0, 1]], "extra": true}', "body.extra"),
        ('{"instances": [[0, 1]', "body"),
        ("[1, 2]", "body"),
    ],
)
async def test_predict_bad_input_is_422_naming_the_field(
    client: httpx.AsyncClient, alice: dict[str, str], body: str, field: str
) -> None:
    response = await _raw(client, alice, "/v1/models/xor:predict", body)
    assert response.status_code == 422, response.text
    assert _error_field(response) == field


async def test_predict_reads_json_bodies_as_fastapi_does(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    """:predict reads its own body: JSON with no Content-Type or any application/*+json is
    accepted, anything else answers 415 naming content-type, and an empty body 422."""
    body = '{"instances": [[0, 1]]}'
    path = "/v1/models/xor:predict"
    for media in (None, "application/json; charset=utf-8", "application/vnd.nns+json"):
        headers = alice if media is None else {**alice, "Content-Type": media}
        answered = await client.post(path, headers=headers, content=body)
        assert answered.status_code == 200, (media, answered.text)
        assert answered.json()["predictions"][0]["label"] in ("no", "yes")
    form = await client.post(path, headers={**alice, "Content-Type": "text/plain"}, content=body)
    assert form.status_code == 415 and _error_field(form) == "content-type"
    empty = await _raw(client, alice, path, "")
    assert empty.status_code == 422 and _error_field(empty) == "body"
    broken = await _raw(client, alice, path, '{"instances": [[0, 1]')
    assert "not valid JSON" in broken.json()["error"]["message"]


async def test_predict_asks_for_the_key_before_reading_the_body(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    """Without a key, a broken body is not examined: 401, not 422."""
    response = await _raw(client, {}, "/v1/models/xor:predict", '{"instances": [[0, 1]')
    assert response.status_code == 401


async def test_predict_documents_its_body_and_security(client: httpx.AsyncClient) -> None:
    """The body and key :predict read themselves are documented as FastAPI documents them."""
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/models/{name}:predict"]["post"]
    assert operation["security"] == [{"HTTPBearer": []}, {"APIKeyHeader": []}]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/PredictRequest"}
    request = document["components"]["schemas"]["PredictRequest"]
    assert request["required"] == ["instances"] and "default" not in request["properties"]["alias"]
    assert set(document["components"]["securitySchemes"]) == {"HTTPBearer", "APIKeyHeader"}


# ----------------------------------------------------------------------------- v2


async def test_v2_health_needs_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/v2/health/live")).json() == {"live": True}
    assert (await client.get("/v2/health/ready")).json() == {"ready": True}
    assert (await client.get("/v2")).json()["name"] == "nn-service"
    assert (await client.get("/v2/models/xor")).status_code == 401
    assert (await client.get("/v2/models/xor/ready")).status_code == 401


async def test_v2_metadata_and_ready(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    meta = await client.get("/v2/models/xor", headers=alice)
    assert meta.status_code == 200, meta.text
    assert meta.json() == {
        "name": "xor",
        "versions": ["1"],
        "platform": "nn-core",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 2]}],
        "outputs": [
            {"name": "probabilities", "datatype": "FP32", "shape": [-1, 2]},
            {"name": "label", "datatype": "BYTES", "shape": [-1]},
        ],
    }
    text = (await client.get("/v2/models/spam/versions/1", headers=alice)).json()
    assert text["inputs"] == [{"name": "input", "datatype": "BYTES", "shape": [-1]}]
    line = (await client.get("/v2/models/line", headers=alice)).json()
    assert line["outputs"] == [{"name": "predictions", "datatype": "FP32", "shape": [-1, 1]}]

    ready = await client.get("/v2/models/xor/ready", headers=alice)
    assert ready.json() == {"name": "xor", "ready": True}
    assert (await client.get("/v2/models/xor/versions/1/ready", headers=alice)).status_code == 200
    assert (await client.get("/v2/models/xor/versions/2/ready", headers=alice)).status_code == 404
    assert (await client.get("/v2/models/nope/ready", headers=alice)).status_code == 404


def _infer_body(data: Any, shape: list[int], datatype: str = "FP32", **extra: Any) -> Any:
    return {
        "id": "req-1",
        "inputs": [{"name": "input", "shape": shape, "datatype": datatype, "data": data}],
        **extra,
    }


async def test_v2_infer_flat_and_nested(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    flat = await client.post(
        "/v2/models/xor/infer", headers=alice, json=_infer_body([0, 0, 0, 1], [2, 2])
    )
    assert flat.status_code == 200, flat.text
    body = flat.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("xor", "1", "req-1")
    probabilities, label = body["outputs"]
    assert probabilities["name"] == "probabilities" and probabilities["shape"] == [2, 2]
    assert probabilities["datatype"] == "FP32" and len(probabilities["data"]) == 4
    assert probabilities["parameters"] == {"classes": '["no", "yes"]'}
    assert label == {
        "name": "label",
        "shape": [2],
        "datatype": "BYTES",
        "parameters": None,
        "data": ["no", "yes"],
    }

    nested = await client.post(
        "/v2/models/xor/versions/1/infer",
        headers=alice,
        json=_infer_body([[0, 0], [0, 1]], [2, 2], "INT32", outputs=[{"name": "label"}]),
    )
    assert nested.status_code == 200, nested.text
    assert [o["name"] for o in nested.json()["outputs"]] == ["label"]
    assert nested.json()["outputs"][0]["data"] == ["no", "yes"]

    text = await client.post(
        "/v2/models/spam/infer",
        headers=alice,
        json=_infer_body(["win a free prize now", "see you later"], [2], "BYTES"),
    )
    assert text.status_code == 200, text.text
    assert text.json()["outputs"][1]["data"] == ["spam", "ham"]

    line = await client.post(
        "/v2/models/line/infer", headers=alice, json=_infer_body([0.0, 1.0], [2, 1], "FP64")
    )
    assert line.status_code == 200
    assert line.json()["outputs"][0]["name"] == "predictions"
    assert line.json()["outputs"][0]["shape"] == [2, 1]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_infer_body([0, 0, 0], [2, 2]), "inputs[0].data"),
        (_infer_body([0, 0, 0], [1, 3]), "inputs[0].shape"),
        (_infer_body([0, 0], [2]), "inputs[0].shape"),
        (_infer_body(["a", "b"], [1, 2], "BYTES"), "inputs[0].datatype"),
        (_infer_body([0, 1], [1, 2], "FLOAT"), "body.inputs.0.datatype"),
        (_infer_body([0, 1], [1, -2]), "body.inputs.0.shape.1"),
        (_infer_body([0, 1000], [1, 2], "INT8"), "inputs[0].data[1]"),
        (_infer_body([0, 0.5], [1, 2], "INT32"), "inputs[0].data[1]"),
        (_infer_body([0, 1e39], [1, 2], "FP32"), "inputs[0].data[1]"),
        (_infer_body([0, "x"], [1, 2]), "inputs[0].data"),
        (_infer_body([[0, 1], [1]], [2, 2]), "inputs[0].data"),
        (_infer_body([0, 1], [1, 2], outputs=[{"name": "logits"}]), "outputs[0].name"),
        ({"inputs": []}, "body.inputs"),
        (
            {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP32", "data": [0, 1]}]},
            "inputs[0].name",
        ),
        (
            {"inputs": [_infer_body([0, 1], [1, 2])["inputs"][0]] * 2},
            "inputs",
        ),
    ],
)
async def test_v2_bad_tensors_are_422(
    client: httpx.AsyncClient, alice: dict[str, str], body: Any, field: str
) -> None:
    response = await client.post("/v2/models/xor/infer", headers=alice, json=body)
    assert response.status_code == 422, response.text
    assert f"{field}: " in _v2_error(response)


async def test_v2_nan_literal_and_text_shape(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    raw = '{"inputs": [{"name": "input", "shape": [1, 2], "datatype": "FP32", "data": [NaN, 1]}]}'
    response = await _raw(client, alice, "/v2/models/xor/infer", raw)
    assert response.status_code == 422
    assert _v2_error(response).startswith("inputs[0].data[0]: ")
    text = await client.post(
        "/v2/models/spam/infer", headers=alice, json=_infer_body(["a", 1], [2], "BYTES")
    )
    assert text.status_code == 422 and _v2_error(text).startswith("inputs[0].data[1]: ")
    count = await client.post(
        "/v2/models/spam/infer", headers=alice, json=_infer_body(["a"], [2], "BYTES")
    )
    assert count.status_code == 422 and _v2_error(count).startswith("inputs[0].data: ")


async def test_v2_unknown_model_and_version(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    body = _infer_body([0, 1], [1, 2])
    nope = await client.post("/v2/models/nope/infer", headers=alice, json=body)
    assert nope.status_code == 404 and _v2_error(nope) == "model 'nope' not found"
    wrong = await client.post("/v2/models/xor/versions/3/infer", headers=alice, json=body)
    assert wrong.status_code == 404 and "version 3" in _v2_error(wrong)
    alias = await client.post("/v2/models/xor/versions/production/infer", headers=alice, json=body)
    assert alias.status_code == 404 and "alias 'production'" in _v2_error(alias)
    await client.put("/v1/models/xor/aliases/production", headers=alice, json={"version": 1})
    ok = await client.post("/v2/models/xor/versions/production/infer", headers=alice, json=body)
    assert ok.status_code == 200 and ok.json()["model_version"] == "1"


# ----------------------------------------------------------------------------- rate limit


async def test_rate_limit_is_per_key_with_retry_after(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path / "data", predict_rate_limit=2)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        alice = bearer(auth.create_key(db(application), "alice").key)
        bob = bearer(auth.create_key(db(application), "bob").key)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            await upload_model(client, alice, "xor", xor_model_file())
            body = {"instances": [[0, 1]]}
            for _ in range(2):
                ok = await client.post("/v1/models/xor:predict", headers=alice, json=body)
                assert ok.status_code == 200
            limited = await client.post(
                "/v2/models/xor/infer", headers=alice, json=_infer_body([0, 1], [1, 2])
            )
            assert limited.status_code == 429
            assert "rate limit" in _v2_error(limited).lower()
            assert int(limited.headers["retry-after"]) >= 1
            # Other keys have their own bucket; non-prediction routes are not limited.
            other = await client.post("/v1/models/xor:predict", headers=bob, json=body)
            assert other.status_code == 404
            assert (await client.get("/v1/models/xor", headers=alice)).status_code == 200


# ----------------------------------------------------------------------------- OpenAPI


async def test_openapi_documents_routes_and_errors(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    paths = schema["paths"]
    predict = paths["/v1/models/{name}:predict"]["post"]
    assert {"401", "404", "413", "422", "429", "503"} <= set(predict["responses"])
    infer = paths["/v2/models/{name}/infer"]["post"]
    assert {"401", "404", "422", "429"} <= set(infer["responses"])
    upload = paths["/v1/datasets"]["post"]
    assert "multipart/form-data" in upload["requestBody"]["content"]
    assert {"401", "409", "413", "422"} <= set(upload["responses"])
    mine = [p for p in paths if p.startswith(("/v1/datasets", "/v1/models"))]
    for path in mine:
        for method, operation in paths[path].items():
            assert {"401", "404", "422"} <= set(operation["responses"]), (method, path)


async def test_small_predictions_run_on_the_event_loop_and_big_ones_in_a_thread() -> None:
    """A trip through the thread pool costs more than a small prediction; a big one must
    not stall the event loop (every other request waits on it)."""
    model = build_model(
        {
            "input_dim": 784,
            "layers": [{"type": "dense", "units": 10, "activation": "softmax"}],
            "loss": "categorical_crossentropy",
        }
    )
    loop_thread = threading.current_thread()
    assert await predictor.compute(model, 1, threading.current_thread) is loop_thread
    assert await predictor.compute(model, 500, threading.current_thread) is not loop_thread
