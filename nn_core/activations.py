"""Element-wise activation functions with their derivatives.

Each activation computes its output in place over the pre-activation buffer when its derivative
can be recovered from the output alone (relu, sigmoid, tanh, elu, ...). That saves a copy per
layer per batch, which is a measurable share of an MLP step on a CPU. Activations whose
derivative needs the input (gelu, step-free ones that cannot be inverted) say so with
``uses_input`` and the layer keeps the pre-activation for them.

All formulas are written so that float32 stays float32: constants are Python floats, which NumPy 2
(NEP 50) does not let promote an array.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from nn_core.errors import SpecError
from nn_core.params import Configurable, check_number

ACTIVATIONS: dict[str, type[Activation]] = {}


def register(cls: type[Activation]) -> type[Activation]:
    ACTIVATIONS[cls.name] = cls
    return cls


class Activation(Configurable):
    """Built as ``ReLU()``, ``LeakyReLU(alpha=0.1)``, or from ``"relu"`` /
    ``{"name": "leaky_relu", "alpha": 0.1}`` with `build_activation`."""

    kind_key = "name"
    name: ClassVar[str] = ""
    #: backward needs the pre-activation z, not just the output a.
    uses_input: ClassVar[bool] = False
    #: a gradient exists (step has none almost everywhere and cannot be trained by backprop).
    differentiable: ClassVar[bool] = True

    def forward(self, z: np.ndarray) -> np.ndarray:
        """Return f(z). May overwrite z unless `uses_input` is set."""
        raise NotImplementedError

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        """Return dL/dz given dL/da. May overwrite `grad`."""
        raise NotImplementedError

    def config(self) -> str | dict[str, Any]:
        return self.name

    @classmethod
    def check_config_keys(cls, config: Mapping[str, Any], field: str) -> None:
        params = sorted(key for key in config if key != "name")
        allowed = cls.config_keys()
        if params and not allowed:
            raise SpecError(f"{field}.{params[0]}", f"{cls.name!r} takes no parameters")
        unknown = [key for key in params if key not in allowed]
        if unknown:
            raise SpecError(f"{field}.{unknown[0]}", "unknown parameter", allowed)


@register
class Identity(Activation):
    name = "identity"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        return grad


@register
class Step(Activation):
    """Heaviside step, 1 where z > 0. Its derivative is zero almost everywhere (and undefined
    at 0), so backpropagation passes no signal: use it with the perceptron learning rule."""

    name = "step"
    differentiable = False

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.greater(z, 0, out=np.empty_like(z, dtype=bool)).astype(z.dtype, copy=False)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        grad.fill(0)
        return grad


def sigmoid(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Overflow-free logistic function: sigmoid(z) = (tanh(z/2) + 1) / 2."""
    out = np.multiply(z, 0.5, out=out)
    np.tanh(out, out=out)
    out *= 0.5
    out += 0.5
    return out


@register
class Sigmoid(Activation):
    name = "sigmoid"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return sigmoid(z, out=z)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        grad *= a
        grad *= 1.0 - a
        return grad


@register
class Tanh(Activation):
    name = "tanh"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z, out=z)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        grad *= 1.0 - a * a
        return grad


@register
class ReLU(Activation):
    name = "relu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        # Against a row of zeros rather than the scalar 0: NumPy vectorizes a maximum whose
        # inputs both step along the last axis, and takes a scalar loop for a scalar (a
        # 256x256 float32 batch: 17 us instead of 50, a twentieth of a forward pass).
        return np.maximum(z, np.zeros(z.shape[-1:], z.dtype), out=z)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        # a > 0 exactly where z > 0; multiplying by the boolean mask is cheaper than indexing.
        np.multiply(grad, a > 0, out=grad)
        return grad


class _Alpha(Activation):
    """Activations with one `alpha` parameter."""

    alpha_range: ClassVar[tuple[float, float]] = (0.0, math.inf)

    def __init__(self, alpha: float) -> None:
        low, high = self.alpha_range
        self.alpha = check_number(alpha, "alpha", low=low, high=high)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha}


@register
class LeakyReLU(_Alpha):
    name = "leaky_relu"
    alpha_range = (0.0, 1.0)

    def __init__(self, alpha: float = 0.01) -> None:
        super().__init__(alpha)

    def forward(self, z: np.ndarray) -> np.ndarray:
        # For 0 <= alpha <= 1, max(z, alpha*z) is z for z > 0 and alpha*z otherwise.
        return np.maximum(z, z * self.alpha, out=z)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        slope = np.where(a > 0, 1.0, self.alpha).astype(grad.dtype, copy=False)
        grad *= slope
        return grad


@register
class ELU(_Alpha):
    name = "elu"

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__(alpha)

    def forward(self, z: np.ndarray) -> np.ndarray:
        neg = np.expm1(np.minimum(z, 0))
        neg *= self.alpha
        np.copyto(z, neg, where=z <= 0)
        return z

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        # For z <= 0, d/dz alpha*(e^z - 1) = a + alpha.
        slope = np.where(a > 0, 1.0, a + self.alpha).astype(grad.dtype, copy=False)
        grad *= slope
        return grad


_SELU_ALPHA = 1.6732632423543772
_SELU_SCALE = 1.0507009873554805


@register
class SELU(Activation):
    """Self-normalising ELU (Klambauer et al. 2017) with its fixed alpha and scale."""

    name = "selu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        neg = np.expm1(np.minimum(z, 0))
        neg *= _SELU_ALPHA
        np.copyto(z, neg, where=z <= 0)
        z *= _SELU_SCALE
        return z

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        slope = np.where(a > 0, _SELU_SCALE, a + _SELU_SCALE * _SELU_ALPHA)
        grad *= slope.astype(grad.dtype, copy=False)
        return grad


@register
class Softplus(Activation):
    name = "softplus"

    def forward(self, z: np.ndarray) -> np.ndarray:
        # log(1 + e^z) = max(z, 0) + log1p(e^-|z|), finite for every z.
        tail = np.log1p(np.exp(-np.abs(z)))
        np.maximum(z, 0, out=z)
        z += tail
        return z

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        # softplus'(z) = sigmoid(z) = 1 - e^-a, recovered from the output.
        grad *= -np.expm1(-a)
        return grad


_GELU_C = math.sqrt(2.0 / math.pi)


@register
class GELU(Activation):
    """GELU, tanh approximation (Hendrycks & Gimpel; as in BERT/GPT-2). NumPy has no erf."""

    name = "gelu"
    uses_input = True

    def forward(self, z: np.ndarray) -> np.ndarray:
        inner = np.tanh(_GELU_C * (z + 0.044715 * z**3))
        inner += 1.0
        inner *= 0.5
        inner *= z
        return inner

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        assert z is not None
        t = np.tanh(_GELU_C * (z + 0.044715 * z**3))
        dt = (1.0 - t * t) * (_GELU_C * (1.0 + 3 * 0.044715 * z * z))
        grad *= 0.5 * (1.0 + t) + 0.5 * z * dt
        return grad


#: Rows at most this wide are reduced column-wise (see softmax).
_NARROW_WIDTH = 32


def softmax(z: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Row-wise softmax, shifted by the row max so exp never overflows."""
    if z.shape[1] <= _NARROW_WIDTH and len(z) > 1:
        # NumPy reduces a short last axis one row at a time; a class-per-column batch is
        # narrow, so its transposed copy is reduced instead, vectorized across the rows
        # (256x10 float32: 15 us instead of 32).
        cols = np.array(z.T, order="C")
        cols -= cols.max(axis=0)
        np.exp(cols, out=cols)
        cols /= cols.sum(axis=0)
        if out is None:
            return np.ascontiguousarray(cols.T)
        np.copyto(out, cols.T)
        return out
    out = np.subtract(z, z.max(axis=1, keepdims=True), out=out)
    np.exp(out, out=out)
    out /= out.sum(axis=1, keepdims=True)
    return out


def log_softmax(z: np.ndarray) -> np.ndarray:
    shifted = z - z.max(axis=1, keepdims=True)
    shifted -= np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return shifted


@register
class Softmax(Activation):
    name = "softmax"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return softmax(z, out=z)

    def backward(self, grad: np.ndarray, z: np.ndarray | None, a: np.ndarray) -> np.ndarray:
        # Jacobian-vector product: a * (g - <g, a>) per row.
        dot = (grad * a).sum(axis=1, keepdims=True)
        grad -= dot
        grad *= a
        return grad


#: what a layer's `activation` accepts: a name, a spec entry, or an Activation
ActivationLike = str | dict[str, Any] | Activation


def build_activation(config: Any, field: str = "activation") -> Activation:
    """An activation from ``"relu"`` or ``{"name": "leaky_relu", "alpha": 0.1}`` (an Activation
    is returned as it is)."""
    if isinstance(config, Activation):
        return config
    if isinstance(config, str):
        entry: dict[str, Any] = {"name": config}
    elif isinstance(config, dict):
        entry = config
    else:
        raise SpecError(field, "must be a name or an object with a 'name'", ACTIVATIONS)
    name = entry.get("name")
    if name not in ACTIVATIONS:
        raise SpecError(
            field if isinstance(config, str) else f"{field}.name",
            f"unknown activation {name!r}",
            ACTIVATIONS,
        )
    return ACTIVATIONS[name].from_config(entry, field)
