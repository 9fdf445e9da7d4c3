"""Feature attributions: which inputs pushed one output of a trained model, and how much.

Both methods need the gradient of one output (a class's probability or score, or a
regression value: the head's `explained_output`) with respect to the model input. It comes
from the model's own backward pass: the head's gradient, then every layer's `backward` down
to the network input (`Model.backward_to_input`), then back through the affine transforms
(`Model.preprocess_input_grad`), so attributions are in the caller's raw input units. Text
models featurize strings, which are not differentiable: explain them on the featurized
vector (`encoded=True`).

- gradient x input: x * df/dx; one backward pass, exact for a linear model.
- integrated gradients (Sundararajan et al. 2017): (x - x') times the average gradient on
  the straight path from a baseline x' to x (trapezoid rule over `steps` intervals). Its
  attributions add up to f(x) - f(x') (completeness), up to the quadrature error, which
  `Explanation.completeness_gap` reports.

The work runs in float64 on a private copy of the layers (layers keep their forward values
for backward), so a model shared between threads is never written to.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from nn_core.errors import DataError
from nn_core.layers import DropoutMask
from nn_core.model import PREDICT_BATCH, Model
from nn_core.preprocessing import as_matrix

Method = Literal["integrated_gradients", "gradient_x_input"]
METHODS: tuple[Method, ...] = ("integrated_gradients", "gradient_x_input")
DEFAULT_STEPS = 64
MAX_STEPS = 4096


@dataclass
class Explanation:
    """Attributions of a batch of inputs, one row per input and one column per feature."""

    method: Method
    #: (n, features) attributions, in the units of the output explained.
    attributions: np.ndarray
    #: (n,) the output column explained for each row (class index, or output index).
    columns: np.ndarray
    #: (n,) f(x): the output explained (probability, score or value).
    outputs: np.ndarray
    #: (n,) f(baseline) for integrated gradients; None for gradient x input.
    baseline_outputs: np.ndarray | None = None

    @property
    def completeness_gap(self) -> np.ndarray | None:
        """(n,) sum of attributions minus (f(x) - f(baseline)); None for gradient x input."""
        if self.baseline_outputs is None:
            return None
        gap: np.ndarray = self.attributions.sum(axis=1) - (self.outputs - self.baseline_outputs)
        return gap


def explain(
    model: Model,
    x: Any,
    *,
    method: Method = "integrated_gradients",
    columns: Any = None,
    baseline: Any = None,
    steps: int = DEFAULT_STEPS,
    encoded: bool = False,
) -> Explanation:
    """Attributions of `x` (raw numeric inputs, or network inputs when `encoded`) toward
    output `columns` (one per row or one for all; default each row's predicted class, or
    output 0 for regression)."""
    if method == "gradient_x_input":
        return gradient_x_input(model, x, columns, encoded=encoded)
    if method == "integrated_gradients":
        return integrated_gradients(
            model, x, columns, baseline=baseline, steps=steps, encoded=encoded
        )
    raise DataError("method", f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def gradient_x_input(
    model: Model, x: Any, columns: Any = None, *, encoded: bool = False
) -> Explanation:
    """x * df/dx per feature."""
    data = _inputs(model, x, encoded)
    cols = _columns(model, data, columns, encoded)
    outputs, grads = input_gradient(model, data, cols, encoded=encoded)
    return Explanation("gradient_x_input", data * grads, cols, outputs)


def integrated_gradients(
    model: Model,
    x: Any,
    columns: Any = None,
    *,
    baseline: Any = None,
    steps: int = DEFAULT_STEPS,
    encoded: bool = False,
) -> Explanation:
    """(x - baseline) times the path-averaged gradient; `baseline` is one input (default all
    zeros, in the same units as `x`) and `steps` the trapezoid intervals."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise DataError("steps", f"must be an integer in 1..{MAX_STEPS}, got {steps!r}")
    data = _inputs(model, x, encoded)
    n, width = data.shape
    if baseline is None:
        base = np.zeros(width)
    else:
        base = as_matrix(baseline, np.dtype(np.float64), "baseline").reshape(-1)
        if base.shape != (width,):
            raise DataError("baseline", f"must have {width} values, got {base.size}")
    cols = _columns(model, data, columns, encoded)
    alphas = np.linspace(0.0, 1.0, steps + 1)
    weights = np.full(steps + 1, 1.0 / steps)
    weights[[0, -1]] *= 0.5
    delta = data - base
    # Every path point of every row as one matrix: row i, point k is base + alpha_k * delta_i.
    path = base + alphas[None, :, None] * delta[:, None, :]
    outputs, grads = input_gradient(
        model, path.reshape(-1, width), np.repeat(cols, steps + 1), encoded=encoded
    )
    outputs, grads = outputs.reshape(n, steps + 1), grads.reshape(n, steps + 1, width)
    average = np.einsum("k,nkd->nd", weights, grads)
    return Explanation("integrated_gradients", delta * average, cols, outputs[:, -1], outputs[:, 0])


def input_gradient(
    model: Model, x: Any, columns: Any, *, encoded: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(outputs (n,), d output / d input (n, features)) for output `columns` (one per row or
    one for all), in raw input units unless `encoded`."""
    data = _inputs(model, x, encoded)
    cols = np.broadcast_to(np.asarray(columns, dtype=np.int64), (len(data),))
    twin = _private_copy(model)
    outputs = np.empty(len(data))
    grads = np.empty_like(data)
    for start in range(0, len(data), PREDICT_BATCH):
        part = slice(start, start + PREDICT_BATCH)
        net = data[part] if encoded else _encode(model, data[part])
        out = twin.forward(net)
        for column in np.unique(cols[part]).tolist():
            rows = np.flatnonzero(cols[part] == column)
            value, out_grad = model.head.explained_output(out[rows], column)
            if len(rows) < len(out):  # rows explaining other columns get no gradient
                full = np.zeros_like(out)
                full[rows] = out_grad
                out_grad = full
            grad = twin.backward_to_input(out_grad)
            if not encoded:
                grad = model.preprocess_input_grad(grad)
            outputs[start + rows] = value
            grads[start + rows] = grad[rows]
    return outputs, grads


def predicted_columns(model: Model, x: Any, *, encoded: bool = False) -> np.ndarray:
    """(n,) each row's predicted class column (argmax, or the head's default cut for binary
    heads); zeros for regression."""
    data = _inputs(model, x, encoded)
    return _columns(model, data, None, encoded)


# ----------------------------------------------------------------------------- helpers


def _inputs(model: Model, x: Any, encoded: bool) -> np.ndarray:
    """Float64 inputs; raw inputs must go through differentiable transforms."""
    if not encoded and model.raw_input:
        raise DataError(
            "X", f"{model.preprocess[0].name!r} reads raw input; explain the featurized input"
        )
    data = as_matrix(x, np.dtype(np.float64), "X")
    width = model.network_input_dim() if encoded else model.input_dim
    if width is not None and data.shape[1] != width:
        raise DataError("X", f"expected {width} features per row, got {data.shape[1]}")
    return data


def _encode(model: Model, raw: np.ndarray) -> np.ndarray:
    for transform in model.preprocess:
        raw = transform.transform(raw, np.dtype(np.float64))
    return raw


def _columns(model: Model, data: np.ndarray, columns: Any, encoded: bool) -> np.ndarray:
    """Output columns to explain, checked against the head; default the predicted ones."""
    n = len(data)
    if columns is not None:
        cols = np.broadcast_to(np.asarray(columns), (n,)).astype(np.int64)
        limit = model.head.n_columns if model.is_classifier else model.output_dim
        if len(cols) and (cols.min() < 0 or cols.max() >= limit):
            raise DataError("target", f"must be a column in 0..{limit - 1}")
        return cols.copy()
    if not model.is_classifier:
        return np.zeros(n, dtype=np.int64)
    twin = _private_copy(model)
    net = data if encoded else _encode(model, data)
    predictions = model.head.predictions(twin.forward(net))
    if model.head.multilabel:
        return np.asarray(predictions.argmax(axis=1), dtype=np.int64)
    chosen = model.head.decide(predictions, len(model.classes))
    return np.asarray(chosen, dtype=np.int64)


def _private_copy(model: Model) -> Model:
    """The model with its own layer objects (forward values, dropout masks, parameter
    gradients) over the shared, read-only weights: safe while other threads predict."""
    twin = copy.copy(model)
    twin.layers = []
    for layer in model.layers:
        mine = copy.copy(layer)
        mine.grads = {name: np.empty_like(g) for name, g in layer.grads.items()}
        for name, value in vars(layer).items():
            if isinstance(value, DropoutMask):
                setattr(mine, name, copy.copy(value))
        twin.layers.append(mine)
    return twin
