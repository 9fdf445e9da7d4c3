"""Backpropagation against central finite differences for every layer, activation, loss and
regularizer (float64, dropout masks frozen). Step is excluded: its derivative is zero."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nn_core.activations import ACTIVATIONS
from nn_core.gradcheck import gradcheck
from nn_core.losses import LOSSES
from nn_core.spec import build_model

TOL = 1e-6
N, D = 16, 5


def _check(layers: list[dict[str, Any]], loss: str, seed: int = 0) -> float:
    spec = {
        "input_dim": D,
        "dtype": "float64",
        "layers": layers,
        "loss": loss,
        "training": {"seed": seed},
    }
    model = build_model(spec)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D))
    out_units = model.output_dim
    if loss == "categorical_crossentropy":
        y: Any = rng.integers(0, out_units, N)
    elif loss in ("binary_crossentropy", "hinge"):
        y = np.arange(N) % 2
    else:
        y = rng.normal(size=(N, out_units))
    model.fit_preprocessing(x, y)
    result = gradcheck(model, model.encode_inputs(x), model.encode_targets(y))
    return result.max_relative_error


DIFFERENTIABLE = sorted(name for name, cls in ACTIVATIONS.items() if cls.differentiable)


@pytest.mark.parametrize("activation", DIFFERENTIABLE)
def test_every_activation(activation: str) -> None:
    layers = [
        {"type": "dense", "units": 6, "activation": activation},
        {"type": "dense", "units": 3, "activation": "identity"},
    ]
    assert _check(layers, "mse") < TOL


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss(loss: str) -> None:
    out = {
        "categorical_crossentropy": {"units": 3, "activation": "softmax"},
        "binary_crossentropy": {"units": 1, "activation": "sigmoid"},
        "hinge": {"units": 1, "activation": "identity"},
    }.get(loss, {"units": 2, "activation": "identity"})
    layers = [{"type": "dense", "units": 7, "activation": "tanh"}, {"type": "dense", **out}]
    assert _check(layers, loss) < TOL


def test_one_hot_targets() -> None:
    spec = {
        "input_dim": D,
        "dtype": "float64",
        "loss": "categorical_crossentropy",
        "layers": [{"type": "dense", "units": 3, "activation": "softmax"}],
    }
    model = build_model(spec)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(N, D))
    onehot = np.eye(3)[rng.integers(0, 3, N)]
    assert gradcheck(model, x, onehot).max_relative_error < TOL


def test_softmax_output_without_fusion() -> None:
    layers = [{"type": "dense", "units": 4, "activation": "softmax"}]
    assert _check(layers, "mse") < TOL


@pytest.mark.parametrize(
    "layer",
    [
        {"type": "maxout", "units": 4, "pieces": 3},
        {"type": "batchnorm"},
        {"type": "dropout", "rate": 0.3},
        {"type": "activation", "activation": "elu"},
    ],
    ids=lambda layer: layer["type"],
)
def test_every_layer(layer: dict[str, Any]) -> None:
    # No bias before batchnorm: its gradient is exactly zero (BN removes the mean), so the
    # finite difference would be pure rounding noise and the relative error meaningless.
    layers = [
        {"type": "dense", "units": 6, "activation": "identity", "use_bias": False},
        layer,
        {"type": "dense", "units": 3, "activation": "softmax"},
    ]
    assert _check(layers, "categorical_crossentropy") < TOL


def test_dense_dropout_and_regularizers() -> None:
    layers = [
        {
            "type": "dense",
            "units": 8,
            "activation": "tanh",
            "dropout": 0.4,
            "regularizer": {"l1": 0.01, "l2": 0.1},
        },
        {"type": "maxout", "units": 3, "pieces": 2, "regularizer": {"l2": 0.05}},
        {"type": "dense", "units": 2, "activation": "softmax", "regularizer": {"l1": 0.02}},
    ]
    assert _check(layers, "categorical_crossentropy") < TOL


def test_gradcheck_detects_a_wrong_gradient() -> None:
    """The checker itself must fail on a broken backward pass."""
    from nn_core import activations

    original = activations.Tanh.backward

    def wrong(self: Any, grad: np.ndarray, z: Any, a: np.ndarray) -> np.ndarray:
        return grad * (1.0 - a)  # should be 1 - a^2

    activations.Tanh.backward = wrong  # type: ignore[method-assign]
    try:
        error = _check(
            [{"type": "dense", "units": 5, "activation": "tanh"}, {"type": "dense", "units": 1}],
            "mse",
        )
    finally:
        activations.Tanh.backward = original  # type: ignore[method-assign]
    assert error > 1e-2


def test_needs_float64() -> None:
    model = build_model({"input_dim": 2, "layers": [{"type": "dense", "units": 1}], "loss": "mse"})
    with pytest.raises(ValueError, match="float64"):
        gradcheck(model, np.zeros((2, 2), np.float32), np.zeros((2, 1), np.float32))
