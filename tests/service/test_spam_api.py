"""POST /v1/spam/score and the per-version threshold (PATCH /v1/models/{name}/versions/{v})."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from jobs_helpers import wait_for_job
from service_helpers import bearer
from serving_helpers import (
    db,
    regression_model_file,
    spam_model_file,
    upload_model,
    xor_model_file,
)
from shared_data import SMS_SPAM, SMS_SPAM_MISSING

from nn_core.datasets.catalog import load_dataset
from nn_core.serialize import load_model
from service import auth
from service.config import Settings

pytestmark = pytest.mark.anyio

PATH = "/v1/spam/score"
TEXTS = ["win a free prize now", "see you later friend", "free money win win"]


@pytest.fixture
async def alice(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    headers = bearer(auth.create_key(db(app), "alice").key)
    response = await upload_model(client, headers, "spam", spam_model_file())
    assert response.status_code == 201, response.text
    return headers


def _field(response: httpx.Response) -> str:
    field: str = response.json()["error"]["details"][0]["field"]
    return field


def _spam_probability(model_file: bytes, texts: list[str]) -> np.ndarray:
    """What nn_core itself answers for the raw texts (the model featurizes them)."""
    out: np.ndarray = load_model(model_file).predict(np.array(texts, dtype=object))[:, 0]
    return out


async def test_score_one_and_many(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    one = await client.post(PATH, headers=alice, json={"text": TEXTS[0]})
    assert one.status_code == 200, one.text
    body = one.json()
    assert (body["model"], body["version"], body["threshold"]) == ("spam", 1, 0.5)
    assert body["results"][0]["label"] == "spam"
    many = await client.post(PATH, headers=alice, json={"texts": TEXTS})
    results = many.json()["results"]
    assert [r["label"] for r in results] == ["spam", "ham", "spam"]
    expected = _spam_probability(spam_model_file(), TEXTS)
    np.testing.assert_allclose([r["spam_probability"] for r in results], expected, rtol=1e-6)


async def test_threshold_from_request_then_version_then_default(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    p = float(_spam_probability(spam_model_file(), [TEXTS[0]])[0])
    strict = min(1.0, p + 0.01)
    patched = await client.patch(
        "/v1/models/spam/versions/1", headers=alice, json={"threshold": strict}
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["threshold"] == strict
    shown = await client.get("/v1/models/spam/versions/latest", headers=alice)
    assert shown.json()["threshold"] == strict

    by_version = (await client.post(PATH, headers=alice, json={"text": TEXTS[0]})).json()
    assert by_version["threshold"] == strict and by_version["results"][0]["label"] == "ham"
    by_request = await client.post(PATH, headers=alice, json={"text": TEXTS[0], "threshold": 0.2})
    assert by_request.json()["threshold"] == 0.2
    assert by_request.json()["results"][0]["label"] == "spam"

    await client.patch("/v1/models/spam/versions/1", headers=alice, json={"threshold": None})
    restored = (await client.post(PATH, headers=alice, json={"text": TEXTS[0]})).json()
    assert restored["threshold"] == 0.5 and restored["results"][0]["label"] == "spam"


async def test_threshold_patch_errors(
    app: FastAPI, client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    url = "/v1/models/spam/versions/1"
    for bad in ({"threshold": 1.5}, {"threshold": -0.1}, {"threshold": "high"}, {}):
        response = await client.patch(url, headers=alice, json=bad)
        assert response.status_code == 422 and _field(response) == "body.threshold", bad
    extra = await client.patch(url, headers=alice, json={"threshold": 0.5, "weights": 1})
    assert extra.status_code == 422 and _field(extra) == "body.weights"
    await upload_model(client, alice, "line", regression_model_file())
    regression = await client.patch(
        "/v1/models/line/versions/1", headers=alice, json={"threshold": 0.5}
    )
    assert regression.status_code == 422 and _field(regression) == "body.threshold"
    missing = await client.patch("/v1/models/spam/versions/7", headers=alice, json={"threshold": 0})
    assert missing.status_code == 404
    bob = bearer(auth.create_key(db(app), "bob").key)
    foreign = await client.patch(url, headers=bob, json={"threshold": 0.9})
    assert foreign.status_code == 404 and _field(foreign) == "model"


BAD: list[tuple[dict[str, Any], int, str]] = [
    ({"text": "a", "texts": ["b"]}, 422, "texts"),
    ({}, 422, "text"),
    ({"texts": []}, 422, "body.texts"),
    ({"texts": ["ok", 3]}, 422, "body.texts.1"),
    ({"text": None}, 422, "text"),
    ({"text": "a", "threshold": 2}, 422, "body.threshold"),
    ({"text": "a", "threshold": "NaN"}, 422, "body.threshold"),
    ({"text": "a", "model": "nope"}, 404, "model"),
    ({"text": "a", "version": 3}, 404, "version"),
    ({"text": "a", "alias": "production"}, 404, "alias"),
    ({"text": "a", "version": 1, "alias": "x"}, 422, "body.alias"),
    ({"text": "a", "texts_": []}, 422, "body.texts_"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD)
async def test_bad_requests_name_the_field(
    client: httpx.AsyncClient, alice: dict[str, str], body: dict[str, Any], status: int, field: str
) -> None:
    response = await client.post(PATH, headers=alice, json=body)
    assert response.status_code == status, response.text
    assert _field(response) == field


async def test_a_model_that_is_not_a_text_classifier(
    app: FastAPI, client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    await upload_model(client, alice, "xor", xor_model_file())
    response = await client.post(PATH, headers=alice, json={"text": "hi", "model": "xor"})
    assert response.status_code == 422 and _field(response) == "model"
    assert (await client.post(PATH, json={"text": "hi"})).status_code == 401
    bob = bearer(auth.create_key(db(app), "bob").key)
    foreign = await client.post(PATH, headers=bob, json={"text": "hi"})
    assert foreign.status_code == 404 and _field(foreign) == "model"


@pytest.fixture
def sms_spam(settings: Settings) -> Path:
    """The shared SMS Spam copy, put where the catalog looks (no network needed)."""
    if not SMS_SPAM.is_file():
        pytest.skip(SMS_SPAM_MISSING)
    target = settings.data_dir / "datasets" / "sms-spam" / "SMSSpamCollection"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(SMS_SPAM, target)
    return target


async def test_spam_preset_job_scores_raw_text_exactly_as_nn_core(
    client: httpx.AsyncClient, admin_key: str, sms_spam: Path
) -> None:
    """spam-mlp trained by a job on sms-spam; the route's probabilities for raw held-out
    messages equal nn_core's own predict on the downloaded model file (the featurizer is
    part of the artifact, so nothing is re-implemented on the serving side)."""
    client.headers.update(bearer(admin_key))
    submit = await client.post(
        "/v1/jobs",
        json={"spec": "spam-mlp", "dataset": "sms-spam", "model_name": "spam", "epochs": 2},
    )
    assert submit.status_code == 202, submit.text
    assert submit.json()["spec"]["preprocess"][0]["type"] == "text_features"
    job = await wait_for_job(
        client, submit.json()["id"], lambda j: j["status"] in ("succeeded", "failed"), 180
    )
    assert job["status"] == "succeeded", job
    version = (await client.get("/v1/models/spam/versions/1")).json()
    assert version["metrics"]["test"]["accuracy"] > 0.9

    held_out = load_dataset("sms-spam", sms_spam.parent.parent, download=False).X_test
    texts = [str(t) for t in held_out[:40]] + ["WINNER!! Claim your £1000 prize: call 09061701461"]
    response = await client.post(PATH, json={"texts": texts})
    assert response.status_code == 200, response.text
    scored = [r["spam_probability"] for r in response.json()["results"]]
    weights = (await client.get("/v1/models/spam/versions/1/download")).content
    np.testing.assert_allclose(scored, _spam_probability(weights, texts), rtol=1e-6, atol=1e-7)
    assert response.json()["results"][-1]["label"] == "spam"
