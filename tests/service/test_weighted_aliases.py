"""Weighted aliases: traffic split by weight, shadow versions, per-version metrics."""

from __future__ import annotations

import math
from collections import Counter
from functools import cache
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client.parser import text_string_to_metric_families
from service_helpers import bearer
from serving_helpers import XOR_X, XOR_Y, db, regression_model_file, upload_model, xor_model_file

from nn_core.serialize import save_model
from nn_core.spec import build_model
from nn_core.training import train
from service import auth
from service.app import create_app
from service.config import Settings

pytestmark = pytest.mark.anyio

INSTANCES = [[0, 0], [0, 1], [1, 0], [1, 1]]
PREDICT = "/v1/models/xor:predict"
ALIAS = "/v1/models/xor/aliases/production"


@cache
def other_xor_file() -> bytes:
    """A second XOR classifier, trained differently: its probabilities differ from v1's."""
    model = build_model(
        {
            "input_dim": 2,
            "layers": [
                {"type": "dense", "units": 4, "activation": "tanh"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.05},
            "training": {"epochs": 20, "batch_size": 8, "seed": 3},
        }
    )
    train(model, XOR_X, XOR_Y)
    return save_model(model)


@pytest.fixture
def alice(app: FastAPI) -> dict[str, str]:
    return bearer(auth.create_key(db(app), "alice").key)


@pytest.fixture
async def xor(client: httpx.AsyncClient, alice: dict[str, str]) -> dict[int, Any]:
    """Versions 1 and 2 of "xor" (different models); version -> its own probabilities."""
    own = {}
    for number, data in ((1, xor_model_file()), (2, other_xor_file())):
        assert (await upload_model(client, alice, "xor", data)).status_code == 201
        answer = await _predict(client, alice, version=number)
        own[number] = answer["predictions"]
    assert own[1] != own[2]
    return own


async def _predict(client: httpx.AsyncClient, headers: dict[str, str], **ref: Any) -> Any:
    response = await client.post(PREDICT, headers=headers, json={"instances": INSTANCES, **ref})
    assert response.status_code == 200, response.text
    return response.json()


async def _put(client: httpx.AsyncClient, headers: dict[str, str], body: Any) -> httpx.Response:
    return await client.put(ALIAS, headers=headers, json=body)


async def _samples(client: httpx.AsyncClient, name: str) -> dict[frozenset[Any], float]:
    text = (await client.get("/metrics")).text
    return {
        frozenset(sample.labels.items()): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_a_90_10_split_lands_within_binomial_bounds_and_names_who_answered(
    client: httpx.AsyncClient, alice: dict[str, str], xor: dict[int, Any]
) -> None:
    split = [{"version": 1, "weight": 90}, {"version": 2, "weight": 10}]
    put = await _put(client, alice, {"traffic": split})
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1 and put.json()["traffic"] == split

    n = 2000
    answered: Counter[int] = Counter()
    for _ in range(n):
        body = await _predict(client, alice, alias="production")
        answered[body["version"]] += 1
        assert body["predictions"] == xor[body["version"]]  # the named version answered
    sd = math.sqrt(n * 0.1 * 0.9)
    assert abs(answered[2] - n * 0.1) <= 4 * sd, answered
    assert answered[1] + answered[2] == n

    requests = await _samples(client, "nns_model_requests_total")
    for version in (1, 2):
        labels = {"model": "xor", "version": str(version), "route": "/v1/models/{name}:predict"}
        assert requests[frozenset(labels.items())] == answered[version] + 1  # + the fixture's
    latency = await _samples(client, "nns_model_request_duration_seconds_count")
    assert sum(latency.values()) == sum(requests.values())

    shown = (await client.get("/v1/models/xor", headers=alice)).json()
    assert shown["aliases"] == {"production": 1}
    assert shown["traffic"] == {"production": {"traffic": split, "shadow": None}}
    listed = (await client.get("/v1/models", headers=alice)).json()["models"][0]
    assert listed["traffic"] == shown["traffic"]
    alias = (await client.get(ALIAS, headers=alice)).json()
    assert alias["traffic"] == split and alias["shadow"] is None


async def test_v2_infer_honours_a_split_and_names_the_version(
    client: httpx.AsyncClient, alice: dict[str, str], xor: dict[int, Any]
) -> None:
    split = [{"version": 1, "weight": 1}, {"version": 2, "weight": 1}]
    assert (await _put(client, alice, {"traffic": split})).status_code == 200
    body = {"inputs": [{"name": "input", "shape": [4, 2], "datatype": "FP32", "data": INSTANCES}]}
    seen: set[str] = set()
    for _ in range(60):  # both halves miss 60 draws with probability 2**-59
        response = await client.post(
            "/v2/models/xor/versions/production/infer", headers=alice, json=body
        )
        assert response.status_code == 200, response.text
        answer = response.json()
        version = answer["model_version"]
        seen.add(version)
        outputs = {o["name"]: o["data"] for o in answer["outputs"]}
        own = [p["probabilities"][c] for p in xor[int(version)] for c in ("no", "yes")]
        assert outputs["probabilities"] == pytest.approx(own, abs=1e-6)
    assert seen == {"1", "2"}


async def test_moving_the_alias_takes_effect_on_the_next_request_in_every_process(
    settings: Settings, client: httpx.AsyncClient, alice: dict[str, str], xor: dict[int, Any]
) -> None:
    # A second API process on the same database, with its own model cache.
    other = create_app(settings)
    transport = httpx.ASGITransport(app=other)
    async with (
        other.router.lifespan_context(other),
        httpx.AsyncClient(transport=transport, base_url="http://other") as second,
    ):
        assert (await _put(client, alice, {"version": 1})).status_code == 200
        assert (await _predict(second, alice, alias="production"))["version"] == 1
        moved = await _put(client, alice, {"traffic": [{"version": 2, "weight": 5}]})
        assert moved.status_code == 200 and moved.json()["version"] == 2
        for served in (client, second):
            body = await _predict(served, alice, alias="production")
            assert body["version"] == 2 and body["predictions"] == xor[2]
        assert (await _put(client, alice, {"version": 1})).status_code == 200
        assert (await _predict(second, alice, alias="production"))["version"] == 1
        assert (await client.get(ALIAS, headers=alice)).json()["traffic"] == [
            {"version": 1, "weight": 100}
        ]


async def test_a_shadow_is_recorded_and_never_returned(
    client: httpx.AsyncClient, alice: dict[str, str], xor: dict[int, Any]
) -> None:
    put = await _put(client, alice, {"version": 1, "shadow": {"version": 2}})
    assert put.status_code == 200, put.text
    assert put.json()["shadow"] == 2 and put.json()["version"] == 1
    for _ in range(3):
        body = await _predict(client, alice, alias="production")
        assert body["version"] == 1 and body["predictions"] == xor[1]
    infer = {"inputs": [{"name": "input", "shape": [4, 2], "datatype": "FP32", "data": INSTANCES}]}
    v2 = await client.post("/v2/models/xor/versions/production/infer", headers=alice, json=infer)
    assert v2.status_code == 200 and v2.json()["model_version"] == "1"

    labels = {"model": "xor", "version": "1", "shadow_version": "2"}
    outcomes = await _samples(client, "nns_shadow_labels_total")
    agree = outcomes.get(frozenset({**labels, "outcome": "agree"}.items()), 0.0)
    disagree = outcomes.get(frozenset({**labels, "outcome": "disagree"}.items()), 0.0)
    same = sum(
        a["label"] == b["label"] for a, b in zip(xor[1], xor[2], strict=True)
    )  # as the versions answer on their own
    assert (agree, disagree) == (4 * same, 4 * (4 - same))
    differences = await _samples(client, "nns_shadow_abs_difference_sum")
    counts = await _samples(client, "nns_shadow_abs_difference_count")
    assert counts[frozenset(labels.items())] == 4
    expected = sum(
        abs(a["probabilities"][c] - b["probabilities"][c])
        for a, b in zip(xor[1], xor[2], strict=True)
        for c in ("no", "yes")
    ) / (2 * len(INSTANCES))
    assert differences[frozenset(labels.items())] == pytest.approx(4 * expected, rel=1e-6)


async def test_a_failing_shadow_is_counted_and_the_answer_unharmed(
    client: httpx.AsyncClient, alice: dict[str, str], xor: dict[int, Any]
) -> None:
    # Version 3 takes one input, not two: it cannot predict what the alias is sent.
    assert (await upload_model(client, alice, "xor", regression_model_file())).status_code == 201
    assert (await _put(client, alice, {"version": 2, "shadow": {"version": 3}})).status_code == 200
    body = await _predict(client, alice, alias="production")
    assert body["version"] == 2 and body["predictions"] == xor[2]
    errors = await _samples(client, "nns_shadow_errors_total")
    labels = {"model": "xor", "version": "2", "shadow_version": "3"}
    assert errors[frozenset(labels.items())] == 1


async def test_versions_in_a_split_or_shadow_cannot_be_deleted(
    client: httpx.AsyncClient, alice: dict[str, str], xor: dict[int, Any]
) -> None:
    split = [{"version": 1, "weight": 3}, {"version": 2, "weight": 1}]
    assert (await _put(client, alice, {"traffic": split})).status_code == 200
    refused = await client.delete("/v1/models/xor/versions/2", headers=alice)
    assert refused.status_code == 409 and "production" in refused.text
    assert (await _put(client, alice, {"version": 1, "shadow": {"version": 2}})).status_code == 200
    assert (await client.delete("/v1/models/xor/versions/2", headers=alice)).status_code == 409
    assert (await _put(client, alice, {"version": 1})).status_code == 200
    assert (await client.delete("/v1/models/xor/versions/2", headers=alice)).status_code == 204


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (
            {"traffic": [{"version": 1, "weight": 90}, {"version": 9, "weight": 10}]},
            "body.traffic.1.version",
        ),
        (
            {"traffic": [{"version": 1, "weight": 1}, {"version": 1, "weight": 2}]},
            "body.traffic.1.version",
        ),
        (
            {"traffic": [{"version": 1, "weight": 1}, {"version": 2, "weight": 0}]},
            "body.traffic.1.weight",
        ),
        ({"traffic": [{"version": 1, "weight": -5}]}, "body.traffic.0.weight"),
        ({"traffic": [{"version": 1, "weight": 1.5}]}, "body.traffic.0.weight"),
        ({"traffic": [{"version": 1, "weight": True}]}, "body.traffic.0.weight"),
        ({"traffic": [{"version": 1}]}, "body.traffic.0.weight"),
        ({"traffic": [{"version": 1, "weight": 1, "extra": 1}]}, "body.traffic.0.extra"),
        ({"traffic": []}, "body.traffic"),
        ({"traffic": [{"version": v, "weight": 1} for v in range(1, 12)]}, "body.traffic"),
        ({"traffic": [{"version": 1, "weight": 1}], "version": 1}, "body.traffic"),
        ({}, "body.version"),
        ({"version": 1, "shadow": {"version": 7}}, "body.shadow.version"),
        ({"version": 1, "shadow": {}}, "body.shadow.version"),
        ({"version": 1, "shadow": 2}, "body.shadow"),
    ],
)
async def test_bad_bodies_answer_422_naming_the_field(
    client: httpx.AsyncClient,
    alice: dict[str, str],
    xor: dict[int, Any],
    body: Any,
    field: str,
) -> None:
    response = await _put(client, alice, body)
    assert response.status_code == 422, response.text
    fields = [d["field"] for d in response.json()["error"]["details"]]
    assert field in fields, fields
    assert (await client.get(ALIAS, headers=alice)).status_code == 404  # nothing stored
