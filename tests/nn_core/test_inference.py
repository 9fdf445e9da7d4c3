"""The inference-only forward (`Model.infer`, each layer's `infer`) that `predict` serves from:
its outputs equal the evaluation-mode `forward` for every layer type and activation, it never
writes into the caller's input, and it leaves the caches of a `forward` (explanations) alone."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nn_core.activations import ACTIVATIONS
from nn_core.layers import LAYERS
from nn_core.model import Model
from nn_core.spec import build_model

DTYPES = ("float32", "float64")


def randomized(spec: dict[str, Any], seed: int = 0) -> Model:
    """`spec` built with random weights and batch-norm running statistics, so no layer is the
    identity by accident (zero biases, unit variances)."""
    model = build_model(spec)
    rng = np.random.default_rng(seed)
    model.params[:] = rng.normal(0.0, 0.5, model.params.size)
    for name, buf in model.named_buffers().items():
        low = 0.5 if name.endswith("running_var") else -1.0
        buf[:] = rng.uniform(low, 2.0, buf.size)
    return model


def every_layer_spec(activation: str, dtype: str) -> dict[str, Any]:
    """One of each layer type around `activation`, dropout on wherever a layer has it."""
    return {
        "input_dim": 5,
        "dtype": dtype,
        "layers": [
            {"type": "dense", "units": 7, "activation": activation, "dropout": 0.3},
            {"type": "batchnorm"},
            {"type": "activation", "activation": activation},
            {"type": "dropout", "rate": 0.5},
            {"type": "maxout", "units": 6, "pieces": 3, "dropout": 0.2},
            {"type": "dense", "units": 4, "activation": activation, "use_bias": False},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
    }


def test_every_layer_type_is_covered() -> None:
    used = {layer["type"] for layer in every_layer_spec("relu", "float32")["layers"]}
    assert used == set(LAYERS)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_infer_equals_evaluation_forward(activation: str, dtype: str) -> None:
    model = randomized(every_layer_spec(activation, dtype))
    x = np.random.default_rng(1).normal(0.0, 2.0, (64, 5)).astype(dtype)
    before = x.copy()
    got = model.infer(x)
    expected = model.forward(x, training=False)
    assert got.dtype == expected.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-12)
    np.testing.assert_array_equal(x, before)  # the caller's input is never overwritten


@pytest.mark.parametrize(
    ("loss", "activation", "units"),
    [
        ("categorical_crossentropy", "softmax", 3),
        ("binary_crossentropy", "sigmoid", 1),
        ("binary_crossentropy", "sigmoid", 3),
        ("mse", "identity", 2),
        ("hinge", "identity", 1),
    ],
)
def test_predict_equals_head_of_forward(loss: str, activation: str, units: int) -> None:
    spec = every_layer_spec("tanh", "float32")
    spec["layers"][-1] = {"type": "dense", "units": units, "activation": activation}
    spec["loss"] = loss
    model = randomized(spec)
    x = np.random.default_rng(2).normal(size=(40, 5)).astype(np.float32)
    expected = model.head.predictions(model.forward(x, training=False))
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("layers", [[{"type": "dropout", "rate": 0.5}], [{"type": "batchnorm"}]])
def test_infer_returns_a_fresh_array(layers: list[dict[str, Any]]) -> None:
    """Even a network that is the identity in evaluation hands back its own array."""
    model = randomized({"input_dim": 4, "layers": layers, "loss": "mse"})
    x = np.ones((3, 4), dtype=np.float32)
    out = model.infer(x)
    assert not np.shares_memory(out, x)
    out += 1.0
    np.testing.assert_array_equal(x, np.ones((3, 4), dtype=np.float32))


def test_predict_in_chunks_equals_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    model = randomized(every_layer_spec("elu", "float64"))
    x = np.random.default_rng(3).normal(size=(50, 5))
    whole = model.predict(x)
    monkeypatch.setattr("nn_core.model.PREDICT_BATCH", 16)
    np.testing.assert_array_equal(model.predict(x), whole)


def test_infer_leaves_forward_caches_for_backward() -> None:
    """A prediction between an explanation's forward and backward changes nothing."""
    model = randomized(every_layer_spec("gelu", "float64"))
    rng = np.random.default_rng(4)
    x, other = rng.normal(size=(8, 5)), rng.normal(size=(30, 5))
    grad = rng.normal(size=(8, 3))
    model.forward(x, training=False)
    expected = model.backward_to_input(grad.copy())
    model.forward(x, training=False)
    model.infer(other)
    np.testing.assert_array_equal(model.backward_to_input(grad.copy()), expected)
