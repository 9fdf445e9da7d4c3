"""A binary classifier's decision threshold: the version's own (PATCH), else 0.5, and a
per-request threshold wins, on every prediction route."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from service_helpers import bearer
from serving_helpers import (
    binary_model_file,
    db,
    regression_model_file,
    upload_model,
    xor_model_file,
)

from service import auth

pytestmark = pytest.mark.anyio

#: Near the boundary x0 = x1 of binary_model_file: a probability well inside (0, 1).
EDGE = [0.15, 0.0]


@pytest.fixture
async def alice(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    headers = bearer(auth.create_key(db(app), "alice").key)
    for name, data in [
        ("binary", binary_model_file()),
        ("xor", xor_model_file()),
        ("line", regression_model_file()),
    ]:
        assert (await upload_model(client, headers, name, data)).status_code == 201
    return headers


async def _predict(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> Any:
    response = await client.post(
        "/v1/models/binary:predict", headers=headers, json={"instances": [EDGE], **body}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _infer(client: httpx.AsyncClient, headers: dict[str, str], **body: Any) -> Any:
    tensor = {"name": "input", "shape": [1, 2], "datatype": "FP32", "data": EDGE}
    response = await client.post(
        "/v2/models/binary/infer", headers=headers, json={"inputs": [tensor], **body}
    )
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    return response.json(), outputs["label"]["data"][0], outputs["probabilities"]["data"][1]


async def _patch(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    threshold: float | None,
    name: str = "binary",
) -> httpx.Response:
    return await client.patch(
        f"/v1/models/{name}/versions/1", headers=headers, json={"threshold": threshold}
    )


async def test_predict_follows_the_version_threshold_and_the_request_wins(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    default = await _predict(client, alice)
    p = default["predictions"][0]["probabilities"]["yes"]
    assert 0.05 < p < 0.95, p
    assert default["threshold"] == 0.5
    assert default["predictions"][0]["label"] == ("yes" if p >= 0.5 else "no")

    above, below = (p + 1) / 2, p / 2
    assert (await _patch(client, alice, above)).status_code == 200
    stored = await _predict(client, alice)
    assert stored["predictions"][0]["label"] == "no" and stored["threshold"] == above
    assert stored["predictions"][0]["probabilities"]["yes"] == pytest.approx(p)
    request_wins = await _predict(client, alice, threshold=below)
    assert request_wins["predictions"][0]["label"] == "yes" and request_wins["threshold"] == below

    assert (await _patch(client, alice, below)).status_code == 200
    assert (await _predict(client, alice))["predictions"][0]["label"] == "yes"
    assert (await _patch(client, alice, None)).status_code == 200
    assert (await _predict(client, alice))["threshold"] == 0.5


async def test_v2_infer_follows_the_version_threshold_and_the_parameter_wins(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    body, label, p = await _infer(client, alice)
    assert body["parameters"] == {"threshold": 0.5}
    assert label == ("yes" if p >= 0.5 else "no")

    above, below = (p + 1) / 2, p / 2
    assert (await _patch(client, alice, above)).status_code == 200
    body, label, _ = await _infer(client, alice)
    assert label == "no" and body["parameters"] == {"threshold": pytest.approx(above)}
    body, label, _ = await _infer(client, alice, parameters={"threshold": below})
    assert label == "yes" and body["parameters"] == {"threshold": pytest.approx(below)}


async def test_softmax_over_two_classes_has_a_threshold_too(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    """The second class is the positive one: at threshold 0 every row is it, at 1 none."""
    rows = {"instances": [[0, 0], [0, 1], [1, 0], [1, 1]]}
    assert (await _patch(client, alice, 0.0, "xor")).status_code == 200
    labels = await client.post("/v1/models/xor:predict", headers=alice, json=rows)
    assert [p["label"] for p in labels.json()["predictions"]] == ["yes"] * 4
    per_request = {**rows, "threshold": 1.0}
    labels = await client.post("/v1/models/xor:predict", headers=alice, json=per_request)
    assert [p["label"] for p in labels.json()["predictions"]] == ["no"] * 4


async def test_only_binary_classifiers_take_a_threshold(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    patched = await _patch(client, alice, 0.7, "line")
    assert patched.status_code == 422
    assert patched.json()["error"]["details"][0]["field"] == "body.threshold"

    predicted = await client.post(
        "/v1/models/line:predict", headers=alice, json={"instances": [[1.0]], "threshold": 0.7}
    )
    assert predicted.status_code == 422
    assert predicted.json()["error"]["details"][0]["field"] == "threshold"
    assert (
        "threshold"
        not in (
            await client.post("/v1/models/line:predict", headers=alice, json={"instances": [[1.0]]})
        ).json()
    )

    tensor = {"name": "input", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}
    inferred = await client.post(
        "/v2/models/line/infer",
        headers=alice,
        json={"inputs": [tensor], "parameters": {"threshold": 0.7}},
    )
    assert inferred.status_code == 422
    assert inferred.json()["error"].startswith("parameters.threshold: ")
    for bad_parameter in (1.5, "high", True):
        inferred = await client.post(
            "/v2/models/binary/infer",
            headers=alice,
            json={
                "inputs": [{**tensor, "shape": [1, 2], "data": EDGE}],
                "parameters": {"threshold": bad_parameter},
            },
        )
        assert inferred.status_code == 422, bad_parameter
        assert inferred.json()["error"].startswith("parameters.threshold: ")

    for bad in (1.5, -0.1, "high", True):
        response = await client.post(
            "/v1/models/binary:predict", headers=alice, json={"instances": [EDGE], "threshold": bad}
        )
        assert response.status_code == 422, bad
