"""POST /v1/mnist/predict: instances, 28x28 arrays, base64 PNGs and multipart PNG uploads."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from flagship_helpers import b64, digit_model_file, drawn_seven, png_bytes, synthetic_digits
from jobs_helpers import wait_for_job
from service_helpers import bearer, make_settings
from serving_helpers import db, upload_model, xor_model_file
from shared_data import FASHION_MISSING

from nn_core.serialize import load_model
from service import auth
from service.app import create_app
from service.config import Settings
from service.digit_image import MAX_PIXELS, png_to_mnist

pytestmark = pytest.mark.anyio

PATH = "/v1/mnist/predict"
SEVEN = png_bytes(drawn_seven())


@pytest.fixture
async def alice(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    headers = bearer(auth.create_key(db(app), "alice").key)
    response = await upload_model(client, headers, "mnist", digit_model_file())
    assert response.status_code == 201, response.text
    return headers


def _field(response: httpx.Response) -> str:
    field: str = response.json()["error"]["details"][0]["field"]
    return field


def _probabilities(response: httpx.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array([p["probabilities"] for p in response.json()["predictions"]])


async def test_flat_and_28x28_instances(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    x, _ = synthetic_digits(4, seed=5)
    instances = [x[0].tolist(), x[1].reshape(28, 28).tolist(), x[2].tolist()]
    response = await client.post(PATH, headers=alice, json={"instances": instances})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == ("mnist", 1)
    expected = load_model(digit_model_file()).predict(x[:3])
    for prediction, row in zip(body["predictions"], expected, strict=True):
        assert set(prediction) == {"digit", "probabilities"}
        assert len(prediction["probabilities"]) == 10
        assert prediction["digit"] == int(np.argmax(row))
        np.testing.assert_allclose(prediction["probabilities"], row, rtol=1e-5, atol=1e-7)


async def test_png_forms_agree_with_the_converted_instance(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    instance = png_to_mnist(SEVEN, "png").tolist()
    expected = _probabilities(
        await client.post(PATH, headers=alice, json={"instances": [instance]})
    )
    one = await client.post(PATH, headers=alice, json={"png": b64(SEVEN)})
    data_url = f"data:image/png;base64,{b64(SEVEN)}"
    many = await client.post(PATH, headers=alice, json={"pngs": [b64(SEVEN), data_url]})
    upload = await client.post(
        PATH, headers=alice, files={"file": ("seven.png", SEVEN, "image/png")}
    )
    np.testing.assert_allclose(_probabilities(one), expected, rtol=1e-6)
    np.testing.assert_allclose(_probabilities(many), np.vstack([expected, expected]), rtol=1e-6)
    np.testing.assert_allclose(_probabilities(upload), expected, rtol=1e-6)


async def test_model_version_and_alias(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    for name in ("mnist", "digits"):
        response = await upload_model(client, alice, name, digit_model_file())
        assert response.status_code == 201
    put = await client.put(
        "/v1/models/mnist/aliases/production", headers=alice, json={"version": 1}
    )
    assert put.status_code == 200
    instance = {"instances": [[0.0] * 784]}
    latest = await client.post(PATH, headers=alice, json=instance)
    assert latest.json()["version"] == 2
    pinned = await client.post(PATH, headers=alice, json={**instance, "version": 1})
    aliased = await client.post(PATH, headers=alice, json={**instance, "alias": "production"})
    other = await client.post(PATH, headers=alice, json={**instance, "model": "digits"})
    assert pinned.json()["version"] == aliased.json()["version"] == 1
    assert (other.json()["model"], other.json()["version"]) == ("digits", 1)
    form = await client.post(
        PATH,
        headers=alice,
        data={"model": "mnist", "alias": "production"},
        files={"file": ("seven.png", SEVEN, "image/png")},
    )
    assert form.status_code == 200 and form.json()["version"] == 1, form.text
    missing = await client.post(PATH, headers=alice, json={**instance, "version": 9})
    assert missing.status_code == 404 and _field(missing) == "version"


def _nan_body() -> str:
    return json.dumps({"instances": [[0.0] * 783 + [float("nan")]]})


BAD_JSON: list[tuple[Any, int, str]] = [
    ({"instances": [[1, 2, 3]]}, 422, "instances[0]"),
    ({"instances": [[[0] * 28] * 27]}, 422, "instances[0]"),
    ({"instances": [[0] * 784, [[1, 2], [3]]]}, 422, "instances[1]"),
    ({"instances": [["a"] * 784]}, 422, "instances[0]"),
    ({"instances": [[0] * 784], "png": "AAAA"}, 422, "png"),
    ({}, 422, "instances"),
    ({"png": "***not base64***"}, 422, "png"),
    ({"png": b64(b"GIF89a....")}, 422, "png"),
    ({"pngs": [b64(SEVEN), b64(SEVEN[:100])]}, 422, "pngs[1]"),
    ({"png": b64(png_bytes(drawn_seven().point(lambda _: 255)))}, 422, "png"),
    ({"instances": [[0] * 784], "version": 1, "alias": "x"}, 422, "body.alias"),
    ({"instances": "abc"}, 422, "body.instances"),
    ({"instances": [[0] * 784], "model": "../etc"}, 422, "body.model"),
    ({"instances": [[0] * 784], "extra": 1}, 422, "body.extra"),
    ({"pngs": [b64(SEVEN)] * 33}, 422, "body.pngs"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_JSON)
async def test_bad_json_names_the_field(
    client: httpx.AsyncClient, alice: dict[str, str], body: Any, status: int, field: str
) -> None:
    response = await client.post(PATH, headers=alice, json=body)
    assert response.status_code == status, response.text
    assert response.json()["error"]["details"][0]["field"] == field


@pytest.mark.parametrize(
    ("content", "content_type", "status", "field"),
    [
        (_nan_body(), "application/json", 422, "instances[0]"),
        ("{not json", "application/json", 422, "body"),
        ("[1, 2]", "application/json", 422, "body"),
        ("instances=1", "text/plain", 415, "content-type"),
    ],
)
async def test_bad_raw_bodies(
    client: httpx.AsyncClient,
    alice: dict[str, str],
    content: str,
    content_type: str,
    status: int,
    field: str,
) -> None:
    headers = {**alice, "Content-Type": content_type}
    response = await client.post(PATH, headers=headers, content=content)
    assert response.status_code == status, response.text
    assert _field(response) == field


async def test_bad_uploads(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    no_file = await client.post(PATH, headers=alice, data={"model": "mnist"}, files={"x": b""})
    assert no_file.status_code == 422 and _field(no_file) == "body.file", no_file.text
    not_png = await client.post(PATH, headers=alice, files={"file": ("a.png", b"GIF89a...")})
    assert not_png.status_code == 422 and _field(not_png) == "body.file"
    bad_field = await client.post(
        PATH, headers=alice, data={"version": "x"}, files={"file": ("a.png", SEVEN)}
    )
    assert bad_field.status_code == 422 and _field(bad_field) == "body.version"


async def test_json_bodies_keep_the_ordinary_limit(
    client: httpx.AsyncClient, alice: dict[str, str], settings: Settings
) -> None:
    padding = "A" * (settings.max_body_bytes + 10)
    response = await client.post(PATH, headers=alice, json={"png": padding})
    assert response.status_code == 413 and _field(response) == "body"


def _png_declaring(width: int, height: int) -> bytes:
    """A tiny PNG whose header declares width x height (a decompression bomb's shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("side", [20_000, 1_000_000])
async def test_images_declaring_huge_sizes_are_413_naming_the_limit(
    client: httpx.AsyncClient, alice: dict[str, str], side: int
) -> None:
    bomb = _png_declaring(side, side)
    as_json = await client.post(PATH, headers=alice, json={"pngs": [b64(SEVEN), b64(bomb)]})
    as_file = await client.post(PATH, headers=alice, files={"file": ("bomb.png", bomb)})
    for response, field in ((as_json, "pngs[1]"), (as_file, "body.file")):
        assert response.status_code == 413, response.text
        assert _field(response) == field
        assert f"{side}x{side}" in response.json()["error"]["message"]
        assert f"{MAX_PIXELS:,}" in response.json()["error"]["message"]
    # The service keeps serving.
    ok = await client.post(PATH, headers=alice, json={"png": b64(SEVEN)})
    assert ok.status_code == 200, ok.text


async def test_each_image_counts_against_the_rate_limit(tmp_path: Path, database_url: str) -> None:
    settings = make_settings(database_url, tmp_path / "data", predict_rate_limit=5)
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        alice = bearer(auth.create_key(db(application), "alice").key)
        bob = bearer(auth.create_key(db(application), "bob").key)
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for headers in (alice, bob):
                await upload_model(client, headers, "mnist", digit_model_file())
            four = await client.post(PATH, headers=alice, json={"pngs": [b64(SEVEN)] * 4})
            assert four.status_code == 200, four.text
            # 4 of the 5 are spent: two more images are refused.
            two = await client.post(PATH, headers=alice, json={"pngs": [b64(SEVEN)] * 2})
            assert two.status_code == 429 and int(two.headers["retry-after"]) >= 1
            # More images than a minute's budget can never pass: said as such.
            too_many = await client.post(PATH, headers=bob, json={"pngs": [b64(SEVEN)] * 6})
            assert too_many.status_code == 429, too_many.text
            assert "counts as 6 predictions" in too_many.json()["error"]["message"]


async def test_a_model_that_is_not_a_digit_classifier(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    await upload_model(client, alice, "xor", xor_model_file())
    response = await client.post(PATH, headers=alice, json={"model": "xor", "png": b64(SEVEN)})
    assert response.status_code == 422 and _field(response) == "model"


async def test_auth_and_owner_isolation(
    app: FastAPI, client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    body = {"instances": [[0.0] * 784]}
    assert (await client.post(PATH, json=body)).status_code == 401
    bob = bearer(auth.create_key(db(app), "bob").key)
    response = await client.post(PATH, headers=bob, json=body)
    assert response.status_code == 404 and _field(response) == "model"
    as_api_key = {"X-API-Key": alice["Authorization"].removeprefix("Bearer ")}
    assert (await client.post(PATH, headers=as_api_key, json=body)).status_code == 200


async def test_openapi_documents_both_bodies(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    operation = schema["paths"][PATH]["post"]
    assert {"application/json", "multipart/form-data"} <= set(operation["requestBody"]["content"])
    assert {"401", "404", "413", "415", "422", "429"} <= set(operation["responses"])


@pytest.mark.slow
async def test_mnist_preset_job_on_fashion_mnist_serves_digits(
    client: httpx.AsyncClient, admin_key: str
) -> None:
    """The preset end to end: a one-epoch job on the system's Fashion-MNIST, then the route."""
    headers = bearer(admin_key)
    datasets = (await client.get("/v1/datasets/fashion-mnist", headers=headers)).json()
    if not datasets.get("available"):
        pytest.skip(FASHION_MISSING)
    submit = await client.post(
        "/v1/jobs",
        headers=headers,
        json={"spec": "mnist-mlp", "dataset": "fashion-mnist", "model_name": "mnist", "epochs": 1},
    )
    assert submit.status_code == 202, submit.text
    client.headers.update(headers)
    job = await wait_for_job(
        client, submit.json()["id"], lambda j: j["status"] in ("succeeded", "failed"), 300
    )
    assert job["status"] == "succeeded", job
    version = (await client.get("/v1/models/mnist/versions/1", headers=headers)).json()
    assert version["metrics"]["test"]["accuracy"] > 0.75
    response = await client.post(PATH, headers=headers, json={"png": b64(SEVEN)})
    assert response.status_code == 200, response.text
    assert abs(sum(response.json()["predictions"][0]["probabilities"]) - 1) < 1e-5
