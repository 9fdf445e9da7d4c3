"""Explanations over HTTP: POST /v1/models/{name}:explain, the MNIST saliency map and the
spam words, on a real app with real models trained by nn_core."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from flagship_helpers import drawn_seven, png_bytes, synthetic_digits
from service_helpers import bearer
from serving_helpers import (
    db,
    regression_model_file,
    spam_model_file,
    upload_model,
    xor_model_file,
)

from nn_core.explain import integrated_gradients
from nn_core.presets import preset_spec
from nn_core.serialize import load_model, save_model
from nn_core.spec import build_model
from nn_core.training import train
from service import auth

pytestmark = pytest.mark.anyio

XOR = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
SEVEN_PNG = png_bytes(drawn_seven())


@pytest.fixture
async def alice(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    headers = bearer(auth.create_key(db(app), "alice").key)
    for name, data in (("xor", xor_model_file()), ("line", regression_model_file())):
        response = await upload_model(client, headers, name, data)
        assert response.status_code == 201, response.text
    return headers


def _field(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    field: str = response.json()["error"]["details"][0]["field"]
    return field


async def _explain(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, **body: Any
) -> httpx.Response:
    return await client.post(f"/v1/models/{name}:explain", headers=headers, json=body)


async def test_integrated_gradients_with_the_prediction(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await _explain(client, alice, "xor", instances=XOR)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"], body["method"], body["steps"]) == (
        "xor",
        1,
        "integrated_gradients",
        64,
    )
    predicted = await client.post("/v1/models/xor:predict", headers=alice, json={"instances": XOR})
    explanations = body["explanations"]
    for explanation, prediction in zip(explanations, predicted.json()["predictions"], strict=True):
        assert explanation["label"] == prediction["label"] == explanation["target"]
        assert explanation["probabilities"] == pytest.approx(prediction["probabilities"])
        assert explanation["output"] == pytest.approx(
            prediction["probabilities"][prediction["label"]], rel=1e-5
        )
        assert len(explanation["attributions"]) == 2
        change = explanation["output"] - explanation["baseline_output"]
        gap = sum(explanation["attributions"]) - change
        assert explanation["completeness_gap"] == pytest.approx(gap, abs=1e-9)
        assert abs(gap) <= 0.01 * abs(change) + 1e-6
    assert [e["label"] for e in explanations] == ["no", "yes", "yes", "no"]
    # The same numbers as nn_core's own, in the model's raw input units.
    expected = integrated_gradients(load_model(xor_model_file()), np.array(XOR))
    got = np.array([e["attributions"] for e in explanations])
    np.testing.assert_allclose(got, expected.attributions, rtol=1e-6, atol=1e-9)


async def test_gradient_x_input_for_a_chosen_class_and_baseline(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await _explain(
        client, alice, "xor", instances=[[1, 0]], method="gradient_x_input", target="no"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["method"] == "gradient_x_input" and "steps" not in body
    (explanation,) = body["explanations"]
    assert explanation["target"] == "no" and explanation["label"] == "yes"
    assert explanation["output"] == pytest.approx(explanation["probabilities"]["no"], rel=1e-5)
    assert "completeness_gap" not in explanation and "baseline_output" not in explanation
    # From the baseline [1, 0] itself nothing moved: every attribution is 0.
    same = await _explain(client, alice, "xor", instances=[[1, 0]], baseline=[1, 0], steps=8)
    (still,) = same.json()["explanations"]
    assert still["attributions"] == [0.0, 0.0] and still["completeness_gap"] == pytest.approx(0)


async def test_regression_explains_an_output_value(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    response = await _explain(client, alice, "line", instances=[[0.5], [-1.0]], steps=4)
    assert response.status_code == 200, response.text
    explanations = response.json()["explanations"]
    for x, explanation in zip((0.5, -1.0), explanations, strict=True):
        assert explanation["target"] == 0 and "label" not in explanation
        assert explanation["output"] == pytest.approx(explanation["values"][0], rel=1e-5)
        # y = 2x + 1 learned: from x = 0 the value moved by about 2x, all of it x's doing.
        assert explanation["attributions"][0] == pytest.approx(2 * x, rel=0.05)
        assert explanation["completeness_gap"] == pytest.approx(0, abs=1e-5)
    assert _field(await _explain(client, alice, "line", instances=[[1]], target=1)) == "target"


async def test_versions_and_aliases(
    app: FastAPI, client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    assert (await upload_model(client, alice, "xor", xor_model_file())).status_code == 201
    put = await client.put("/v1/models/xor/aliases/production", headers=alice, json={"version": 1})
    assert put.status_code == 200, put.text
    latest = await _explain(client, alice, "xor", instances=[[1, 1]])
    assert latest.json()["version"] == 2
    by_alias = await _explain(client, alice, "xor", instances=[[1, 1]], alias="production")
    assert by_alias.json()["version"] == 1
    by_number = await _explain(client, alice, "xor", instances=[[1, 1]], version=1)
    assert by_number.json()["version"] == 1
    assert (await _explain(client, alice, "xor", instances=[[1, 1]], version=9)).status_code == 404
    missing_alias = await _explain(client, alice, "xor", instances=[[1, 1]], alias="nope")
    assert missing_alias.status_code == 404
    assert (await _explain(client, alice, "nothing", instances=[[1, 1]])).status_code == 404
    # Another owner's model is not there for bob.
    bob = bearer(auth.create_key(db(app), "bob").key)
    assert (await _explain(client, bob, "xor", instances=[[1, 1]])).status_code == 404


async def test_bad_input_names_the_field(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"instances": [[1, 2, 3]]}, "instances"),
        ({"instances": [[1, float("nan")]]}, "instances[0]"),
        ({"instances": [[1, 1]], "target": "maybe"}, "target"),
        ({"instances": [[1, 1]], "baseline": [1]}, "baseline"),
        ({"instances": [[1, 1]], "steps": 0}, "body.steps"),
        ({"instances": [[1, 1]], "method": "shap"}, "body.method"),
        ({"instances": [[1, 1]] * 33}, "body.instances"),
        ({"instances": [[1, 1]], "version": 1, "alias": "production"}, "body.alias"),
    ]
    for body, field in cases:
        if any(isinstance(v, float) and v != v for row in body["instances"] for v in row):
            response = await client.post(
                "/v1/models/xor:explain",
                headers={**alice, "Content-Type": "application/json"},
                content=b'{"instances": [[1, NaN]]}',
            )
        else:
            response = await _explain(client, alice, "xor", **body)
        assert _field(response) == field, (body, response.text)


async def test_text_models_answer_422_naming_instances(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    assert (await upload_model(client, alice, "spam", spam_model_file())).status_code == 201
    response = await _explain(client, alice, "spam", instances=["win a prize"])
    assert _field(response) == "instances"
    assert "/v1/spam/score" in response.json()["error"]["message"]


# ----------------------------------------------------------------------------- MNIST


@cache
def digit_reader_file() -> bytes:
    """The mnist-mlp preset (small) trained until it reads the synthetic digits confidently."""
    spec = preset_spec("mnist-mlp")
    spec["layers"][0]["units"], spec["layers"][1]["units"] = 32, 16
    spec["training"].update(epochs=8, batch_size=32)
    model = build_model(spec)
    train(model, *synthetic_digits(1000))
    return save_model(model)


async def test_mnist_saliency_puts_the_mass_on_the_ink(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    assert (await upload_model(client, alice, "mnist", digit_reader_file())).status_code == 201
    x, y = synthetic_digits(6, seed=11)
    plain = await client.post("/v1/mnist/predict", headers=alice, json={"instances": x.tolist()})
    assert all("saliency" not in p for p in plain.json()["predictions"])
    response = await client.post(
        "/v1/mnist/predict", headers=alice, json={"instances": x.tolist(), "explain": True}
    )
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    black = load_model(digit_reader_file()).predict(np.zeros((1, 784)))[0]
    for image, digit, prediction in zip(x, y, predictions, strict=True):
        assert prediction["digit"] == digit
        saliency = np.array(prediction["saliency"])
        assert saliency.shape == (28, 28)
        ink = np.zeros((28, 28), dtype=bool)
        ink[2 * digit + 4 : 2 * digit + 8, 4:24] = True  # the band that makes the digit
        assert (image.reshape(28, 28)[ink] == 255).all()
        mass = np.abs(saliency)
        assert mass[ink].sum() > 0.5 * mass.sum(), (mass[ink].sum(), mass.sum())
        # Integrated gradients from a black image: they add up to the change in probability.
        change = prediction["probabilities"][digit] - float(black[digit])
        assert saliency.sum() == pytest.approx(change, abs=0.01 * abs(change) + 1e-4)


async def test_mnist_saliency_from_a_png_upload(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    assert (await upload_model(client, alice, "mnist", digit_reader_file())).status_code == 201
    response = await client.post(
        "/v1/mnist/predict",
        headers=alice,
        data={"explain": "true"},
        files={"file": ("seven.png", SEVEN_PNG, "image/png")},
    )
    assert response.status_code == 200, response.text
    (prediction,) = response.json()["predictions"]
    assert np.array(prediction["saliency"]).shape == (28, 28)
    too_many = await client.post(
        "/v1/mnist/predict",
        headers=alice,
        json={"instances": [[0.0] * 784] * 33, "explain": True},
    )
    assert _field(too_many) == "instances"


# ----------------------------------------------------------------------------- spam


@cache
def prize_spam_model_file() -> bytes:
    """Spam that says "win" and "prize"; ham about lunch and meetings."""
    spam = ["win a prize today", "you win cash prize", "claim your prize win", "win win prize"]
    ham = ["lunch at noon today", "meeting moved to friday", "see you at lunch", "call me"]
    texts = np.array((spam + ham) * 5, dtype=object)
    labels = np.array((["spam"] * 4 + ["ham"] * 4) * 5)
    model = build_model(
        {
            "preprocess": [{"type": "text_features", "n_features": 1024}],
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 1, "activation": "sigmoid"},
            ],
            "loss": "binary_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.05},
            "training": {"epochs": 40, "batch_size": 4, "seed": 0},
        }
    )
    train(model, texts, labels)
    return save_model(model)


async def test_spam_lists_the_words_that_pushed_the_score(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    assert (await upload_model(client, alice, "spam", prize_spam_model_file())).status_code == 201
    texts = ["you can win a big prize", "lunch at noon"]
    plain = await client.post("/v1/spam/score", headers=alice, json={"texts": texts})
    assert all("top_features" not in r for r in plain.json()["results"])
    response = await client.post(
        "/v1/spam/score", headers=alice, json={"texts": texts, "explain": True, "top_k": 5}
    )
    assert response.status_code == 200, response.text
    spammy, hammy = response.json()["results"]
    assert spammy["label"] == "spam" and hammy["label"] == "ham"
    top = spammy["top_features"]
    assert 0 < len(top) <= 5
    weights = [abs(f["weight"]) for f in top]
    assert weights == sorted(weights, reverse=True)
    pushing = {key for f in top if f["weight"] > 0 for key in f["feature"].split(" | ")}
    assert {"win", "prize"} <= pushing, top
    # In the ham message, its own words pull the score down.
    assert any(f["weight"] < 0 for f in hammy["top_features"]), hammy
    default_k = await client.post(
        "/v1/spam/score", headers=alice, json={"text": texts[0], "explain": True}
    )
    assert 5 < len(default_k.json()["results"][0]["top_features"]) <= 10
    bad = await client.post(
        "/v1/spam/score", headers=alice, json={"text": "x", "explain": True, "top_k": 0}
    )
    assert _field(bad) == "body.top_k"
