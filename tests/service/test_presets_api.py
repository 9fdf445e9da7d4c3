"""Named presets: GET /v1/presets, and `"spec": "<name>"` in a training job with overrides."""

from __future__ import annotations

import httpx
import pytest

from nn_core.presets import PRESETS
from nn_core.spec import normalize_spec
from service.config import Settings

pytestmark = pytest.mark.anyio


def test_every_preset_is_a_valid_spec_within_the_default_limits() -> None:
    for preset in PRESETS.values():
        spec = normalize_spec(
            preset.spec, max_params=Settings.model_fields["max_model_params"].default
        )
        assert spec["training"]["epochs"] <= 1000


async def test_list_presets(idle_client: httpx.AsyncClient) -> None:
    response = await idle_client.get("/v1/presets")
    assert response.status_code == 200, response.text
    listed = {p["name"]: p for p in response.json()["presets"]}
    assert set(listed) == {"mnist-mlp", "spam-mlp"}
    mnist = listed["mnist-mlp"]["spec"]
    assert [layer["units"] for layer in mnist["layers"]] == [512, 256, 10]
    assert mnist["preprocess"] == [{"type": "scale", "factor": 1 / 255}]
    assert mnist["schedule"]["name"] == "cosine" and mnist["optimizer"]["lr"] == 1e-3
    spam = listed["spam-mlp"]["spec"]
    assert spam["preprocess"][0] == {"type": "text_features", "n_features": 4096}
    assert spam["layers"][0]["dropout"] == 0.3 and spam["loss"] == "binary_crossentropy"
    assert all(p["description"] for p in listed.values())
    assert (await idle_client.get("/v1/presets", headers={"Authorization": ""})).status_code == 401


async def test_a_preset_with_overrides(idle_client: httpx.AsyncClient) -> None:
    response = await idle_client.post(
        "/v1/jobs",
        json={
            "spec": "mnist-mlp",
            "dataset": "fashion-mnist",
            "model_name": "mnist",
            "epochs": 3,
            "batch_size": 64,
            "learning_rate": 0.01,
            "seed": 7,
        },
    )
    assert response.status_code == 202, response.text
    job = response.json()
    spec = job["spec"]
    assert [layer["units"] for layer in spec["layers"]] == [512, 256, 10]
    assert spec["preprocess"][0]["type"] == "scale"
    assert spec["training"]["epochs"] == 3 and job["progress"]["total_epochs"] == 3
    assert spec["training"]["batch_size"] == 64 and spec["training"]["seed"] == 7
    assert spec["optimizer"]["name"] == "adam" and spec["optimizer"]["lr"] == 0.01
    assert spec["schedule"]["name"] == "cosine"
    assert job["hyperparameters"]["preset"] == "mnist-mlp"


async def test_a_preset_without_overrides_keeps_its_values(idle_client: httpx.AsyncClient) -> None:
    body = {"spec": "spam-mlp", "dataset": "sms-spam", "model_name": "spam"}
    response = await idle_client.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    training = response.json()["spec"]["training"]
    assert (training["epochs"], training["batch_size"]) == (30, 32)


@pytest.mark.parametrize(
    ("spec", "field"),
    [("mnist", "spec"), ("MNIST-MLP", "spec"), ("", "body.spec"), (7, "body.spec")],
)
async def test_unknown_presets_name_the_field_and_the_choices(
    idle_client: httpx.AsyncClient, spec: object, field: str
) -> None:
    body = {"spec": spec, "dataset": "xor", "model_name": "m"}
    response = await idle_client.post("/v1/jobs", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["details"][0]["field"] == field
    if field == "spec":
        assert "mnist-mlp" in error["message"] and "spam-mlp" in error["message"]


async def test_an_override_beyond_the_limits_names_the_request_field(
    idle_client: httpx.AsyncClient,
) -> None:
    body = {"spec": "spam-mlp", "dataset": "sms-spam", "model_name": "spam", "epochs": 10**6}
    response = await idle_client.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "epochs"
