"""V2 infer read from the raw body: the binary tensor data extension's bytes and malformed
variants of them, requests without a Content-Type, and the protocol's error shape on every
/v2 failure (other routes keep the service's)."""

from __future__ import annotations

import gzip
import json
import struct
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi import FastAPI
from service_helpers import bearer
from serving_helpers import db, spam_model_file, upload_model, xor_model_file

from service import auth

pytestmark = pytest.mark.anyio

HEADER = "Inference-Header-Content-Length"


@pytest.fixture
async def alice(app: FastAPI, client: httpx.AsyncClient) -> dict[str, str]:
    headers = bearer(auth.create_key(db(app), "alice").key)
    for name, data in [("xor", xor_model_file()), ("spam", spam_model_file())]:
        assert (await upload_model(client, headers, name, data)).status_code == 201
    return headers


def _binary_request(
    tensor: dict[str, Any], data: bytes, **extra: Any
) -> tuple[bytes, dict[str, str]]:
    header = json.dumps({"inputs": [tensor], **extra}).encode()
    return header + data, {HEADER: str(len(header))}


def _fp32(values: list[float], shape: list[int]) -> tuple[dict[str, Any], bytes]:
    raw = np.asarray(values, dtype="<f4").tobytes()
    tensor = {
        "name": "input",
        "shape": shape,
        "datatype": "FP32",
        "parameters": {"binary_data_size": len(raw)},
    }
    return tensor, raw


def _error(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    message: str = body["error"]
    return message


async def test_binary_request_and_response_bytes(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    tensor, raw = _fp32([0, 0, 0, 1], [2, 2])
    content, headers = _binary_request(
        tensor,
        raw,
        id="b-1",
        outputs=[{"name": "label", "parameters": {"binary_data": True}}, {"name": "probabilities"}],
    )
    # No Content-Type at all, as tritonclient sends it.
    response = await client.post(
        "/v2/models/xor/infer", headers={**alice, **headers}, content=content
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    length = int(response.headers[HEADER])
    header = json.loads(response.content[:length])
    assert header["id"] == "b-1"
    outputs = {o["name"]: o for o in header["outputs"]}
    assert len(outputs["probabilities"]["data"]) == 4  # not asked for as binary: JSON
    label = outputs["label"]
    assert "data" not in label and label["datatype"] == "BYTES"
    assert label["parameters"]["binary_data_size"] == len(response.content) - length
    assert response.content[length:] == struct.pack("<I", 2) + b"no" + struct.pack("<I", 3) + b"yes"


async def test_json_without_content_type_and_gzip(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    body = json.dumps(
        {"inputs": [{"name": "input", "shape": [1, 2], "datatype": "BOOL", "data": [False, True]}]}
    ).encode()
    plain = await client.post("/v2/models/xor/infer", headers=alice, content=body)
    assert plain.status_code == 200, plain.text
    assert plain.json()["outputs"][1]["data"] == ["yes"]
    zipped = await client.post(
        "/v2/models/xor/infer",
        headers={**alice, "Content-Encoding": "gzip"},
        content=gzip.compress(body),
    )
    assert zipped.json() == plain.json()
    unknown = await client.post(
        "/v2/models/xor/infer", headers={**alice, "Content-Encoding": "br"}, content=body
    )
    assert unknown.status_code == 415 and "Content-Encoding" in _error(unknown)


async def test_binary_bytes_tensor(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    texts = [b"win a free prize now", b"see you later"]
    raw = b"".join(struct.pack("<I", len(t)) + t for t in texts)
    tensor = {
        "name": "input",
        "shape": [2],
        "datatype": "BYTES",
        "parameters": {"binary_data_size": len(raw)},
    }
    content, headers = _binary_request(tensor, raw)
    ok = await client.post("/v2/models/spam/infer", headers={**alice, **headers}, content=content)
    assert ok.status_code == 200, ok.text
    assert ok.json()["outputs"][1]["data"] == ["spam", "ham"]

    cut = raw[:-3]  # the second element declares 13 bytes; 10 remain
    tensor["parameters"] = {"binary_data_size": len(cut)}
    content, headers = _binary_request(tensor, cut)
    bad = await client.post("/v2/models/spam/infer", headers={**alice, **headers}, content=content)
    assert bad.status_code == 422 and _error(bad).startswith("inputs[0].data[1]: ")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({HEADER: "999999"}, HEADER),
        ({HEADER: "-1"}, HEADER),
        ({"size": 12}, HEADER),  # declares fewer bytes than follow
        ({"datatype": "FP64"}, "inputs[0].parameters.binary_data_size"),
        ({"both": True}, "inputs[0].data"),
        ({"parameters": {"binary_data_size": "8"}}, "inputs[0].parameters.binary_data_size"),
        (
            {"parameters": {"shared_memory_region": "r"}},
            "inputs[0].parameters.shared_memory_region",
        ),
        ({"bool": b"\x00\x02"}, "inputs[0].data[1]"),
    ],
)
async def test_malformed_binary_requests_name_the_field(
    client: httpx.AsyncClient, alice: dict[str, str], change: dict[str, Any], field: str
) -> None:
    tensor, raw = _fp32([0, 1], [1, 2])
    if "size" in change:
        tensor["parameters"] = {"binary_data_size": change["size"]}
    if "datatype" in change:
        tensor["datatype"] = change["datatype"]
    if "both" in change:
        tensor["data"] = [0, 1]
    if "parameters" in change:
        tensor["parameters"] = change["parameters"]
        raw = raw if "binary_data_size" in change["parameters"] else b""
    if "bool" in change:
        tensor.update(datatype="BOOL", parameters={"binary_data_size": 2})
        raw = change["bool"]
    content, headers = _binary_request(tensor, raw)
    headers.update({k: v for k, v in change.items() if k == HEADER})
    response = await client.post(
        "/v2/models/xor/infer", headers={**alice, **headers}, content=content
    )
    assert response.status_code == 422, response.text
    assert field in _error(response), _error(response)


async def test_every_v2_failure_has_the_protocol_shape(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    no_key = await client.get("/v2/models/xor")
    assert no_key.status_code == 401 and "API key" in _error(no_key)
    assert no_key.headers["www-authenticate"].startswith("Bearer")
    unknown_route = await client.get("/v2/models/xor/nothing", headers=alice)
    assert unknown_route.status_code == 404 and "/v2/models/xor/nothing" in _error(unknown_route)
    method = await client.delete("/v2/models/xor/infer", headers=alice)
    assert method.status_code == 405 and "DELETE" in _error(method)
    long_version = await client.get("/v2/models/xor/versions/" + "9" * 65, headers=alice)
    assert long_version.status_code == 422 and "version" in _error(long_version)
    garbage = await client.post("/v2/models/xor/infer", headers=alice, content=b"{nope")
    assert garbage.status_code == 422 and _error(garbage).startswith("body: is not valid JSON")
    # Elsewhere the service's own shape stays.
    v1 = await client.get("/v1/models/nope", headers=alice)
    assert v1.json()["error"]["type"] == "not_found"


async def test_openapi_documents_the_body_and_the_protocol_errors(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    infer = document["paths"]["/v2/models/{name}/infer"]["post"]
    body = infer["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["inputs"] and "$defs" not in json.dumps(body)
    assert body["properties"]["inputs"]["items"]["properties"]["datatype"]["enum"][0] == "BOOL"
    assert set(infer["responses"]["200"]["content"]) == {
        "application/json",
        "application/octet-stream",
    }
    error = {"$ref": "#/components/schemas/ProtocolError"}
    for status in ("401", "404", "413", "422", "429"):
        assert infer["responses"][status]["content"]["application/json"]["schema"] == error
    ready = document["paths"]["/v2/health/ready"]["get"]["responses"]["503"]
    assert ready["content"]["application/json"]["schema"] == error
    predict = document["paths"]["/v1/models/{name}:predict"]["post"]["responses"]["422"]
    assert predict["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")
