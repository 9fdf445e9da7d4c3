"""GET /v1/models/{name}/versions/{v}/download?format=onnx: the exported file, run by
onnxruntime, answers what :predict and model.predict answer (to 1e-5) for every activation,
layer, transform and head ONNX can express; what it cannot express is a 422 naming the part."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import onnxruntime as ort
import pytest
from fastapi import FastAPI
from service_helpers import bearer
from serving_helpers import (
    binary_model_file,
    db,
    regression_model_file,
    spam_model_file,
    upload_model,
    xor_model_file,
)

from nn_core.model import Model
from nn_core.serialize import load_model, save_model
from nn_core.spec import build_model
from nn_core.training import train
from service import auth

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
TOLERANCE = 1e-5
ROWS = 40


@pytest.fixture
async def alice(app: FastAPI) -> dict[str, str]:
    return bearer(auth.create_key(db(app), "alice").key)


# ----------------------------------------------------------------------------- building models


def _data(input_dim: int, seed: int = 0) -> np.ndarray:
    """Random inputs off-centre and spread, so transforms and activations all do something."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(ROWS, input_dim)) * 3 + 1).astype(np.float32)


def _fitted(spec: dict[str, Any], x: np.ndarray, y: Any, seed: int = 1) -> Model:
    """A model with fitted transforms and labels, random non-zero weights (biases, gammas and
    betas included) and batch-norm running statistics from training-mode passes."""
    model = build_model(spec)
    model.fit_preprocessing(x, y)
    rng = np.random.default_rng(seed)
    model.params[:] = rng.normal(scale=0.7, size=model.params.shape)
    data = model.encode_inputs(x)
    for _ in range(5):
        model.forward(data, training=True, rng=rng)
    return model


def _classifier(layers: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    return {"input_dim": 3, "layers": layers, "loss": "categorical_crossentropy", **spec}


LABELS = np.array(["cat", "dog", "owl"] * (ROWS // 3) + ["cat"] * (ROWS % 3))


# ----------------------------------------------------------------------------- the round trip


async def _download(
    client: httpx.AsyncClient, headers: dict[str, str], name: str, version: int = 1
) -> httpx.Response:
    return await client.get(
        f"/v1/models/{name}/versions/{version}/download",
        params={"format": "onnx"},
        headers=headers,
    )


def _run(data: bytes, x: np.ndarray) -> tuple[str, np.ndarray]:
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (output,) = session.get_outputs()
    (result,) = session.run(None, {"input": x})
    return output.name, np.asarray(result)


def _api_matrix(body: dict[str, Any], output: str, classes: list[Any]) -> np.ndarray:
    """:predict's answer as the matrix the ONNX output should equal."""
    predictions = body["predictions"]
    if output == "probabilities":
        return np.array([[p["probabilities"][str(c)] for c in classes] for p in predictions])
    if output == "scores":
        return np.array([[p["score"]] for p in predictions])
    return np.array([p["values"] for p in predictions])


async def _check_round_trip(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    name: str,
    model: Model | bytes,
    x: np.ndarray,
    output: str = "probabilities",
) -> onnx.ModelProto:
    """Upload `model`, download it as ONNX, and compare onnxruntime's answer on `x` with
    :predict's and with model.predict's; returns the checked ONNX model."""
    data = model if isinstance(model, bytes) else save_model(model)
    uploaded = await upload_model(client, headers, name, data)
    assert uploaded.status_code == 201, uploaded.text
    response = await _download(client, headers, name)
    assert response.status_code == 200, response.text
    proto = onnx.load_from_string(response.content)
    onnx.checker.check_model(proto, full_check=True)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    classes = json.loads(metadata["classes"])

    got_name, got = _run(response.content, x)
    assert got_name == output
    assert got.dtype == np.float32 and got.shape[0] == len(x)
    predicted = await client.post(
        f"/v1/models/{name}:predict", headers=headers, json={"instances": x.tolist()}
    )
    assert predicted.status_code == 200, predicted.text
    api = _api_matrix(predicted.json(), output, classes)
    assert got.shape == api.shape
    np.testing.assert_allclose(got, api, rtol=0, atol=TOLERANCE)
    local = load_model(data)
    decoded = local.decode(local.predict(x))
    direct = {"probabilities": decoded.probabilities, "scores": decoded.values}.get(
        output, decoded.values
    )
    np.testing.assert_allclose(got, np.asarray(direct), rtol=0, atol=TOLERANCE)
    return proto


# ----------------------------------------------------------------------------- activations

ACTIVATIONS: list[Any] = [
    "identity",
    "step",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    {"name": "leaky_relu", "alpha": 0.3},
    "elu",
    {"name": "elu", "alpha": 0.4},
    "selu",
    "softplus",
    "gelu",
    "softmax",
]


def _activation_id(activation: Any) -> str:
    return (
        activation if isinstance(activation, str) else f"{activation['name']}-{activation['alpha']}"
    )


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=_activation_id)
async def test_every_activation_matches_predict(
    client: httpx.AsyncClient, alice: dict[str, str], activation: Any
) -> None:
    """Each activation in a dense layer and as a standalone activation layer."""
    x = _data(3)
    spec = _classifier(
        [
            {"type": "dense", "units": 8, "activation": activation},
            {"type": "dense", "units": 6},
            {"type": "activation", "activation": activation},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ]
    )
    await _check_round_trip(client, alice, "act", _fitted(spec, x, LABELS), x)


# ----------------------------------------------------------------------------- transforms

TRANSFORMS: dict[str, list[dict[str, Any]]] = {
    "scale": [{"type": "scale", "factor": 0.25, "offset": -0.5}],
    "scale-no-offset": [{"type": "scale", "factor": 1 / 255}],
    "standardize": [{"type": "standardize"}],
    "minmax": [{"type": "minmax"}],
    "all-three": [
        {"type": "minmax"},
        {"type": "scale", "factor": 3.0, "offset": 1.0},
        {"type": "standardize"},
    ],
}


@pytest.mark.parametrize("preprocess", TRANSFORMS.values(), ids=TRANSFORMS.keys())
async def test_every_numeric_transform_matches_predict(
    client: httpx.AsyncClient, alice: dict[str, str], preprocess: list[dict[str, Any]]
) -> None:
    x = _data(3)
    x[:, 2] = 5.0  # a constant column: std and range 1 by nn_core's rule
    spec = _classifier(
        [
            {"type": "dense", "units": 5, "activation": "tanh"},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
        preprocess=preprocess,
    )
    await _check_round_trip(client, alice, "pre", _fitted(spec, x, LABELS), x)


# ----------------------------------------------------------------------------- layers

LAYERS: dict[str, list[dict[str, Any]]] = {
    "maxout": [{"type": "maxout", "units": 4, "pieces": 3}],
    "batchnorm": [
        {"type": "dense", "units": 6, "use_bias": False},
        {"type": "batchnorm", "momentum": 0.3, "eps": 1e-3},
        {"type": "activation", "activation": "relu"},
    ],
    "dropout": [
        {"type": "dense", "units": 6, "activation": "relu", "dropout": 0.5},
        {"type": "dropout", "rate": 0.4},
        {"type": "maxout", "units": 4, "pieces": 2, "dropout": 0.3},
    ],
}


@pytest.mark.parametrize("hidden", LAYERS.values(), ids=LAYERS.keys())
async def test_every_layer_matches_predict(
    client: httpx.AsyncClient, alice: dict[str, str], hidden: list[dict[str, Any]]
) -> None:
    """Dropout is the identity and batch norm uses its running statistics at inference."""
    x = _data(3)
    spec = _classifier([*hidden, {"type": "dense", "units": 3, "activation": "softmax"}])
    await _check_round_trip(client, alice, "layers", _fitted(spec, x, LABELS), x)


async def test_trained_batchnorm_model_matches_predict(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    """Trained by nn_core's Trainer: running statistics as training leaves them."""
    x = _data(3, seed=5)
    model = build_model(
        _classifier(
            [
                {"type": "dense", "units": 8},
                {"type": "batchnorm"},
                {"type": "activation", "activation": "gelu"},
                {"type": "dense", "units": 3, "activation": "softmax"},
            ],
            preprocess=[{"type": "standardize"}],
            optimizer={"name": "adam", "lr": 0.05},
            training={"epochs": 5, "batch_size": 8, "seed": 0},
        )
    )
    train(model, x, LABELS)
    assert not np.allclose(model.named_buffers()["layers.1.running_mean"], 0)
    await _check_round_trip(client, alice, "trained", model, _data(3, seed=6))


# ----------------------------------------------------------------------------- heads and dtypes


async def test_softmax_classifier_trained_on_xor(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    x = _data(2)
    proto = await _check_round_trip(client, alice, "xor", xor_model_file(), x)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert json.loads(metadata["classes"]) == ["no", "yes"]
    assert (metadata["model"], metadata["version"], metadata["head"]) == ("xor", "1", "softmax")
    assert "xor" in proto.doc_string and "version 1" in proto.doc_string
    assert proto.opset_import[0].version == 17 and proto.ir_version == 8
    (graph_input,) = proto.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "input" and dims[0].dim_param and dims[1].dim_value == 2


async def test_sigmoid_classifier_with_its_threshold(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    """Binary cross-entropy fuses the sigmoid: the file answers both columns as :predict does,
    and the version's decision threshold travels in the metadata."""
    x = _data(2)
    proto = await _check_round_trip(client, alice, "binary", binary_model_file(), x)
    metadata = {prop.key: prop.value for prop in proto.metadata_props}
    assert "threshold" not in metadata
    patched = await client.patch(
        "/v1/models/binary/versions/1", headers=alice, json={"threshold": 0.8}
    )
    assert patched.status_code == 200, patched.text
    response = await _download(client, alice, "binary")
    metadata = {p.key: p.value for p in onnx.load_from_string(response.content).metadata_props}
    assert float(metadata["threshold"]) == 0.8


async def test_multilabel_classifier(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    x = _data(3)
    y = (np.random.default_rng(2).random((ROWS, 4)) > 0.5).astype(np.int64)
    spec = {
        "input_dim": 3,
        "layers": [
            {"type": "dense", "units": 5, "activation": "elu"},
            {"type": "dense", "units": 4, "activation": "sigmoid"},
        ],
        "loss": "binary_crossentropy",
    }
    await _check_round_trip(client, alice, "tags", _fitted(spec, x, y), x)


async def test_hinge_scores(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    x = _data(3)
    spec = {
        "input_dim": 3,
        "layers": [
            {"type": "dense", "units": 5, "activation": "relu"},
            {"type": "dense", "units": 1},
        ],
        "loss": "hinge",
    }
    y = np.where(x[:, 0] > 1, "up", "down")
    await _check_round_trip(client, alice, "margin", _fitted(spec, x, y), x, output="scores")


async def test_regression_values(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    """A trained one-output line, and two outputs through a non-fused sigmoid in float64."""
    await _check_round_trip(
        client, alice, "line", regression_model_file(), _data(1), output="values"
    )
    x = _data(3)
    spec = {
        "input_dim": 3,
        "dtype": "float64",
        "preprocess": [{"type": "standardize"}],
        "layers": [
            {"type": "dense", "units": 5, "activation": "softplus"},
            {"type": "dense", "units": 2, "activation": "sigmoid"},
        ],
        "loss": "mse",
    }
    model = _fitted(spec, x, None)
    await _check_round_trip(client, alice, "pair", model, x, output="values")


# ----------------------------------------------------------------------------- the route


async def test_onnx_answer_headers_and_default_npz(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    data = xor_model_file()
    assert (await upload_model(client, alice, "xor", data)).status_code == 201
    onnx_file = await _download(client, alice, "xor")
    assert onnx_file.headers["content-type"] == "application/octet-stream"
    assert 'filename="xor-v1.onnx"' in onnx_file.headers["content-disposition"]
    for params in ({}, {"format": "npz"}):
        npz = await client.get("/v1/models/xor/versions/1/download", params=params, headers=alice)
        assert npz.status_code == 200
        assert 'filename="xor-v1.npz"' in npz.headers["content-disposition"]
        assert npz.content == data
    latest = await client.get(
        "/v1/models/xor/versions/latest/download", params={"format": "onnx"}, headers=alice
    )
    assert latest.content == onnx_file.content


async def test_unknown_format_is_422_naming_format(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    assert (await upload_model(client, alice, "xor", xor_model_file())).status_code == 201
    response = await client.get(
        "/v1/models/xor/versions/1/download", params={"format": "bogus"}, headers=alice
    )
    assert response.status_code == 422, response.text
    (detail,) = response.json()["error"]["details"]
    assert detail["field"] == "query.format"
    assert "npz" in detail["message"] and "onnx" in detail["message"]


async def test_text_model_is_422_naming_its_featurizer(
    client: httpx.AsyncClient, alice: dict[str, str]
) -> None:
    """The spam model hashes raw text in Python: no ONNX file that would expect different
    input than the model does."""
    assert (await upload_model(client, alice, "spam", spam_model_file())).status_code == 201
    response = await _download(client, alice, "spam")
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    (detail,) = error["details"]
    assert detail["field"] == "preprocess[0]"
    assert "text_features" in detail["message"] and "format=npz" in detail["message"]


async def test_missing_version_is_404(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    assert (await upload_model(client, alice, "xor", xor_model_file())).status_code == 201
    response = await _download(client, alice, "xor", version=7)
    assert response.status_code == 404, response.text


# ----------------------------------------------------------------------------- the README


async def test_readme_onnxruntime_snippet_runs(
    client: httpx.AsyncClient, alice: dict[str, str], tmp_path: Path
) -> None:
    """The README's curl download names the file its onnxruntime snippet opens, and the
    snippet runs on the exported XOR model."""
    readme = (ROOT / "README.md").read_text()
    (curl,) = [b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "format=onnx" in b]
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "onnxruntime" in b]
    filename = re.search(r"-o (\S+\.onnx)", curl)
    assert filename is not None and filename.group(1) in snippet
    assert (await upload_model(client, alice, "xor", xor_model_file())).status_code == 201
    (tmp_path / filename.group(1)).write_bytes((await _download(client, alice, "xor")).content)
    done = subprocess.run(
        [sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "array([[" in done.stdout and "float32" in done.stdout, done.stdout
