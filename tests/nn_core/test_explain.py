"""Explanations: the input gradient from the model's own backward pass against central
differences (every head, affine transforms, batch norm in evaluation mode), integrated
gradients' completeness on several architectures, and attributions in raw input units."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nn_core.datasets.text import TextFeatures
from nn_core.errors import DataError
from nn_core.explain import gradient_x_input, input_gradient, integrated_gradients
from nn_core.model import Model
from nn_core.spec import build_model
from nn_core.training import train

D = 4


def _model(
    layers: list[dict[str, Any]],
    loss: str,
    preprocess: list[dict[str, Any]] | None = None,
    dtype: str = "float64",
    seed: int = 0,
) -> tuple[Model, np.ndarray]:
    """A model with random weights and fitted transforms/labels, plus inputs in raw units."""
    spec: dict[str, Any] = {
        "input_dim": D,
        "dtype": dtype,
        "layers": layers,
        "loss": loss,
        "training": {"seed": seed},
    }
    if preprocess:
        spec["preprocess"] = preprocess
    model = build_model(spec)
    rng = np.random.default_rng(seed)
    x = rng.normal(loc=3.0, scale=2.0, size=(24, D))  # raw units far from the scaled ones
    if loss == "categorical_crossentropy":
        y: Any = np.arange(len(x)) % model.output_dim
    elif loss in ("binary_crossentropy", "hinge"):
        y = np.arange(len(x)) % 2 if model.output_dim == 1 else (x[:, :2] > 3).astype(int)
    else:
        y = rng.normal(size=(len(x), model.output_dim))
    model.fit_preprocessing(x, y)
    return model, x[:6]


def _trained(layers: list[dict[str, Any]], loss: str, dtype: str) -> tuple[Model, np.ndarray]:
    """A model trained to tell the sign of x0 + x1 - 6 (raw inputs around 3), and inputs."""
    model = build_model(
        {
            "input_dim": D,
            "dtype": dtype,
            "preprocess": [{"type": "standardize"}],
            "layers": layers,
            "loss": loss,
            "optimizer": {"name": "adam", "lr": 0.01},
            "training": {"epochs": 10, "batch_size": 16, "seed": 1},
        }
    )
    rng = np.random.default_rng(1)
    x = rng.normal(loc=3.0, scale=2.0, size=(200, D))
    y = (x[:, 0] + x[:, 1] > 6).astype(int)
    if model.output_dim == 3:
        y = y + (x[:, 2] > 5)
    train(model, x, y)
    return model, x[:8]


def _reference(model: Model, x: np.ndarray, column: int) -> np.ndarray:
    """The explained output read from `model.predict`, independently of the head's gradient
    code: a probability, a score toward the class, or a value."""
    out = model.predict(x)
    kind = model.head.kind
    if kind == "sigmoid":
        return out[:, 0] if column == 1 else 1.0 - out[:, 0]
    if kind == "hinge":
        return out[:, 0] if column == 1 else -out[:, 0]
    return out[:, column]


def _central_differences(model: Model, x: np.ndarray, column: int, eps: float = 1e-6) -> np.ndarray:
    grad = np.empty_like(x)
    for j in range(x.shape[1]):
        up, down = x.copy(), x.copy()
        up[:, j] += eps
        down[:, j] -= eps
        grad[:, j] = (_reference(model, up, column) - _reference(model, down, column)) / (2 * eps)
    return grad


def _mlp(activation: str, units: int, out_activation: str) -> list[dict[str, Any]]:
    return [
        {"type": "dense", "units": 8, "activation": activation},
        {"type": "dense", "units": 6, "activation": activation},
        {"type": "dense", "units": units, "activation": out_activation},
    ]


#: name -> (layers, loss, the output column explained)
ARCHITECTURES: dict[str, tuple[list[dict[str, Any]], str, int]] = {
    "tanh-softmax": (_mlp("tanh", 3, "softmax"), "categorical_crossentropy", 2),
    "relu-softmax": (_mlp("relu", 3, "softmax"), "categorical_crossentropy", 1),
    "sigmoid-softmax": (_mlp("sigmoid", 3, "softmax"), "categorical_crossentropy", 0),
    "elu-sigmoid": (_mlp("elu", 1, "sigmoid"), "binary_crossentropy", 1),
    "gelu-sigmoid-negative-class": (_mlp("gelu", 1, "sigmoid"), "binary_crossentropy", 0),
    "tanh-hinge": (_mlp("tanh", 1, "identity"), "hinge", 1),
    "softplus-multilabel": (_mlp("softplus", 2, "sigmoid"), "binary_crossentropy", 1),
    "tanh-regression": (_mlp("tanh", 2, "identity"), "mse", 1),
    "batchnorm-maxout": (
        [
            {"type": "dense", "units": 6, "dropout": 0.3},
            {"type": "batchnorm"},
            {"type": "activation", "activation": "selu"},
            {"type": "maxout", "units": 5, "pieces": 3},
            {"type": "dropout", "rate": 0.2},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
        "categorical_crossentropy",
        2,
    ),
}
TRANSFORMS: dict[str, list[dict[str, Any]] | None] = {
    "none": None,
    "standardize": [{"type": "standardize"}],
    "minmax+scale": [{"type": "minmax"}, {"type": "scale", "factor": 2.5, "offset": -1.0}],
}


@pytest.mark.parametrize("name", ARCHITECTURES)
@pytest.mark.parametrize("transforms", TRANSFORMS)
def test_input_gradient_equals_central_differences(name: str, transforms: str) -> None:
    layers, loss, column = ARCHITECTURES[name]
    model, x = _model(layers, loss, TRANSFORMS[transforms])
    if name == "batchnorm-maxout":  # give batch norm running statistics of its own
        model.layers[1].buffers["running_mean"][:] = np.linspace(-0.5, 0.5, 6)
        model.layers[1].buffers["running_var"][:] = np.linspace(0.5, 2.0, 6)
    outputs, grads = input_gradient(model, x, column)
    np.testing.assert_allclose(outputs, _reference(model, x, column), rtol=1e-12, atol=1e-12)
    numeric = _central_differences(model, x, column)
    scale = max(float(np.abs(numeric).max()), 1e-8)
    assert float(np.abs(grads - numeric).max()) / scale < 1e-6, (grads, numeric)


#: name -> trapezoid steps. Smooth networks meet 1% at the default 64; ReLU's kinks make the
#: quadrature error O(1/steps) and erratic (where the grid falls against each kink), so it
#: takes many more.
COMPLETENESS = {
    "tanh-softmax": 64,
    "sigmoid-softmax": 64,
    "elu-sigmoid": 64,
    "tanh-hinge": 64,
    "relu-softmax": 4096,
}


@pytest.mark.parametrize("name", COMPLETENESS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_integrated_gradients_add_up_to_the_output_change(name: str, dtype: str) -> None:
    layers, loss, column = ARCHITECTURES[name]
    model, x = _trained(layers, loss, dtype)
    baseline = np.full(D, 3.0)  # the inputs' centre: the outputs move a lot from it
    # Each row's predicted class (the default target), or the positive side of a hinge.
    columns = None if loss != "hinge" else column
    result = integrated_gradients(model, x, columns, baseline=baseline, steps=COMPLETENESS[name])
    change = np.array(
        [
            _reference(model, x[i : i + 1], c)[0] - _reference(model, baseline[None, :], c)[0]
            for i, c in enumerate(result.columns.tolist())
        ]
    )
    np.testing.assert_allclose(result.outputs - result.baseline_outputs, change, rtol=1e-4)
    gap = result.completeness_gap
    assert gap is not None
    moved = np.abs(change) > 0.02  # rows whose output moved by 2 points or more
    assert moved.sum() >= 4
    assert (np.abs(gap[moved]) <= 0.01 * np.abs(change[moved])).all(), (gap, change)


def test_more_steps_close_the_gap() -> None:
    layers, loss, column = ARCHITECTURES["tanh-softmax"]
    model, x = _model(layers, loss, seed=5)
    gaps = [
        float(np.abs(integrated_gradients(model, x, column, steps=s).completeness_gap).max())  # type: ignore[arg-type]
        for s in (2, 16, 128)
    ]
    assert gaps[0] > gaps[1] > gaps[2]


def test_attributions_are_in_raw_units() -> None:
    """A linear model behind standardize: y = sum w_i (x_i - m_i) / s_i + b, so integrated
    gradients from baseline x' are exactly w_i (x_i - x'_i) / s_i per feature, and gradient
    x input is w_i x_i / s_i."""
    model, x = _model(
        [{"type": "dense", "units": 1, "activation": "identity"}], "mse", [{"type": "standardize"}]
    )
    transform = model.preprocess[0]
    slope = model.layers[0].params["W"][:, 0] / transform.scale  # type: ignore[attr-defined]
    baseline = np.array([1.0, -2.0, 0.5, 4.0])
    ig = integrated_gradients(model, x, 0, baseline=baseline, steps=1)
    np.testing.assert_allclose(ig.attributions, (x - baseline) * slope, rtol=1e-10)
    gap = ig.completeness_gap
    assert gap is not None
    np.testing.assert_allclose(gap, 0.0, atol=1e-10)
    gxi = gradient_x_input(model, x, 0)
    np.testing.assert_allclose(gxi.attributions, x * slope, rtol=1e-10)
    assert gxi.completeness_gap is None


def test_default_target_is_the_predicted_class() -> None:
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 10, dtype=np.float64)
    y = np.array(["no", "yes", "yes", "no"] * 10)
    model = build_model(
        {
            "input_dim": 2,
            "layers": [
                {"type": "dense", "units": 8, "activation": "tanh"},
                {"type": "dense", "units": 2, "activation": "softmax"},
            ],
            "loss": "categorical_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.05},
            "training": {"epochs": 100, "batch_size": 8, "seed": 0},
        }
    )
    train(model, x, y)
    result = integrated_gradients(model, x[:4])
    assert result.columns.tolist() == [0, 1, 1, 0]  # "no", "yes", "yes", "no"
    np.testing.assert_allclose(result.outputs, model.predict(x[:4]).max(axis=1), rtol=1e-5)


def test_explaining_leaves_the_shared_model_untouched() -> None:
    layers, loss, column = ARCHITECTURES["batchnorm-maxout"]
    model, x = _model(layers, loss)
    grads = model.grads.copy()
    before = model.predict(x)
    integrated_gradients(model, x, column, steps=8)
    np.testing.assert_array_equal(model.grads, grads)
    np.testing.assert_array_equal(model.predict(x), before)


def test_bad_arguments_name_their_field() -> None:
    layers, loss, column = ARCHITECTURES["tanh-softmax"]
    model, x = _model(layers, loss)
    with pytest.raises(DataError) as steps:
        integrated_gradients(model, x, column, steps=0)
    assert steps.value.field == "steps"
    with pytest.raises(DataError) as baseline:
        integrated_gradients(model, x, column, baseline=[1.0, 2.0])
    assert baseline.value.field == "baseline"
    with pytest.raises(DataError) as target:
        gradient_x_input(model, x, 3)
    assert target.value.field == "target"
    with pytest.raises(DataError) as width:
        gradient_x_input(model, x[:, :2], 0)
    assert width.value.field == "X"


def test_text_models_are_explained_on_their_features() -> None:
    texts = ["win a prize now", "see you at lunch", "win win prize", "lunch at noon"] * 5
    labels = ["spam", "ham"] * 10
    model = build_model(
        {
            "preprocess": [{"type": "text_features", "n_features": 512}],
            "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}],
            "loss": "binary_crossentropy",
            "optimizer": {"name": "adam", "lr": 0.1},
            "training": {"epochs": 30, "batch_size": 4, "seed": 0},
        }
    )
    train(model, np.array(texts, dtype=object), np.array(labels))
    with pytest.raises(DataError, match="featurized"):
        gradient_x_input(model, np.zeros((1, 520)), 1)
    features = model.encode_inputs(np.array(["win a prize"], dtype=object))
    result = gradient_x_input(model, features, 1, encoded=True)
    featurizer = model.preprocess[0]
    assert isinstance(featurizer, TextFeatures)
    keys = featurizer.column_keys("win a prize")
    strongest = int(np.argmax(result.attributions[0]))
    assert set(keys[strongest]) & {"win", "prize", "win a", "a prize"}, keys[strongest]
    assert all(result.attributions[0][c] == 0 for c in range(512) if c not in keys)
