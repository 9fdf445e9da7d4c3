"""Layers with hand-written forward and backward passes (layer-wise reverse-mode differentiation).

A layer declares its parameters with `param_specs()`; the model allocates one flat parameter
vector and one flat gradient vector and hands each layer views into them (`bind`). Optimizers
then update the whole model with a few vectorised operations instead of one loop per array.

Conventions: `forward` returns a fresh array or one it owns (never the caller's input modified
in place, because the previous layer may still need it for its backward pass); `backward` may
overwrite the incoming gradient, and writes parameter gradients into the bound views with `=`
semantics (no accumulation across calls).

`infer` is the inference-only forward that serving uses (`Model.predict`): evaluation mode,
nothing kept for a backward pass, and the input overwritten in place when `owned` says the
model allocated it during this pass (never the caller's array). Its results equal
`forward(x, training=False)`: the same operations in the same order, minus the copies.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nn_core.activations import Activation, ActivationLike, Identity, build_activation
from nn_core.errors import SpecError
from nn_core.initializers import Initializer, InitializerLike, build_initializer
from nn_core.params import Configurable, check_bool, check_int, check_number, check_object
from nn_core.regularizers import Regularizer, RegularizerLike, build_regularizer

LAYERS: dict[str, type[Layer]] = {}


def register(cls: type[Layer]) -> type[Layer]:
    LAYERS[cls.type] = cls
    return cls


@dataclass
class ParamSpec:
    name: str
    shape: tuple[int, ...]
    initializer: Initializer
    fans: tuple[int, int]
    regularizer: Regularizer | None = None


class Layer(Configurable):
    """Built with keyword arguments (``Dense(units=64, activation="relu")``) or from a spec entry
    (``{"type": "dense", "units": 64, ...}``) with `from_config` / `build_layer`."""

    kind_key = "type"
    type: ClassVar[str] = ""

    def __init__(self) -> None:
        self.input_dim = 0
        self.output_dim = 0
        self.dtype: np.dtype[Any] = np.dtype(np.float32)
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        #: non-trainable state saved with the model (e.g. batch-norm running statistics)
        self.buffers: dict[str, np.ndarray] = {}
        #: param_specs() as of bind(), so the per-batch penalty code builds nothing
        self.specs: list[ParamSpec] = []

    def build(self, input_dim: int, dtype: np.dtype[Any]) -> int:
        """Fix the input width and dtype; return the output width."""
        self.input_dim = input_dim
        self.dtype = dtype
        self.output_dim = input_dim
        return self.output_dim

    def param_specs(self) -> list[ParamSpec]:
        return []

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.params, self.grads = params, grads
        self.specs = self.param_specs()

    def init(self, rng: np.random.Generator) -> None:
        for spec in self.specs:
            spec.initializer.fill(self.params[spec.name], spec.fans, rng)

    @property
    def regularized(self) -> bool:
        return any(s.regularizer is not None and s.regularizer.active for s in self.specs)

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None) -> np.ndarray:
        raise NotImplementedError

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        raise NotImplementedError

    def infer(self, x: np.ndarray, owned: bool) -> np.ndarray:
        """Evaluation-mode output for serving; `owned`: x may be overwritten. Layers override
        it to skip the caches and copies `forward` keeps for backward; this default is exact."""
        return self.forward(x, False, None)

    def penalty(self) -> float:
        return sum(
            spec.regularizer.penalty(self.params[spec.name])
            for spec in self.specs
            if spec.regularizer is not None and spec.regularizer.active
        )

    def add_penalty_grads(self) -> None:
        for spec in self.specs:
            if spec.regularizer is not None and spec.regularizer.active:
                spec.regularizer.add_grad(self.params[spec.name], self.grads[spec.name])

    def config(self) -> dict[str, Any]:
        return {"type": self.type}

    def set_frozen_masks(self, frozen: bool) -> None:
        """Reuse the last dropout masks (gradient checking); no-op for layers without dropout."""

    @property
    def output_activation(self) -> Activation | None:
        """The activation this layer ends with, as its spec names it (None: it has none).
        A loss that fuses its activation (softmax+CE, sigmoid+BCE) checks the last layer's."""
        return None

    def fuse_output(self) -> None:
        """Leave the output activation to the loss, which applies it to the logits."""
        raise SpecError("layers", f"a {self.type!r} layer has no activation for a loss to fuse")


class DropoutMask:
    """Inverted dropout: keep each unit with probability 1 - rate and scale kept units by
    1 / (1 - rate), so evaluation needs no rescaling."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.mask: np.ndarray | None = None
        self.frozen = False

    def apply(self, a: np.ndarray, training: bool, rng: np.random.Generator | None) -> np.ndarray:
        if not training or self.rate == 0.0:
            self.mask = None
            return a
        if not (self.frozen and self.mask is not None and self.mask.shape == a.shape):
            if rng is None:
                raise ValueError("dropout in training mode needs a random generator")
            keep = rng.random(a.shape, dtype=a.dtype) >= self.rate
            self.mask = keep.astype(a.dtype)
            self.mask *= 1.0 / (1.0 - self.rate)
        return a * self.mask

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self.mask is not None:
            grad *= self.mask
        return grad


def _dropout_rate(rate: Any, field: str) -> float:
    return check_number(rate, field, low=0.0, high=1.0, high_open=True)


def default_initializer(activation: Activation) -> str:
    """He for the ReLU family, LeCun for SELU (its self-normalising derivation), else Glorot."""
    if activation.name in ("relu", "leaky_relu", "elu", "gelu"):
        return "he_normal"
    if activation.name == "selu":
        return "lecun_normal"
    return "glorot_uniform"


@register
class Dense(Layer):
    """Fully connected layer a = f(XW + b), optionally followed by inverted dropout."""

    type = "dense"

    def __init__(
        self,
        units: int,
        *,
        activation: ActivationLike = "identity",
        initializer: InitializerLike | None = None,
        bias_initializer: InitializerLike = "zeros",
        regularizer: RegularizerLike = None,
        dropout: float = 0.0,
        use_bias: bool = True,
    ) -> None:
        """`initializer` None: He for the ReLU family, LeCun for SELU, else Glorot."""
        super().__init__()
        self.units = check_int(units, "units", low=1)
        self.activation = build_activation(activation, "activation")
        self._named_activation = self.activation
        self.initializer = build_initializer(
            default_initializer(self.activation) if initializer is None else initializer,
            "initializer",
        )
        self.bias_initializer = build_initializer(bias_initializer, "bias_initializer")
        self.regularizer = build_regularizer(regularizer, "regularizer")
        self.use_bias = check_bool(use_bias, "use_bias")
        self.dropout = DropoutMask(_dropout_rate(dropout, "dropout"))
        self._x: np.ndarray | None = None
        self._z: np.ndarray | None = None
        self._a: np.ndarray | None = None

    def build(self, input_dim: int, dtype: np.dtype[Any]) -> int:
        super().build(input_dim, dtype)
        self.output_dim = self.units
        return self.units

    def param_specs(self) -> list[ParamSpec]:
        fans = (self.input_dim, self.units)
        specs = [
            ParamSpec("W", (self.input_dim, self.units), self.initializer, fans, self.regularizer)
        ]
        if self.use_bias:
            specs.append(ParamSpec("b", (self.units,), self.bias_initializer, fans))
        return specs

    @property
    def output_activation(self) -> Activation:
        return self._named_activation

    def fuse_output(self) -> None:
        self.activation = Identity()

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None) -> np.ndarray:
        z = np.matmul(x, self.params["W"])
        if self.use_bias:
            z += self.params["b"]
        self._x = x
        self._z = z.copy() if self.activation.uses_input else None
        a = self.activation.forward(z)
        self._a = a
        return self.dropout.apply(a, training, rng)

    def infer(self, x: np.ndarray, owned: bool) -> np.ndarray:
        """f(XW + b) in the product's own buffer: no pre-activation copy, no dropout."""
        z = np.matmul(x, self.params["W"])
        if self.use_bias:
            z += self.params["b"]
        return self.activation.forward(z)

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        assert self._x is not None and self._a is not None
        grad = self.dropout.backward(grad)
        grad = self.activation.backward(grad, self._z, self._a)
        np.matmul(self._x.T, grad, out=self.grads["W"])
        if self.use_bias:
            np.sum(grad, axis=0, out=self.grads["b"])
        if not need_input_grad:
            return None
        return np.matmul(grad, self.params["W"].T)

    def set_frozen_masks(self, frozen: bool) -> None:
        self.dropout.frozen = frozen

    def config(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "units": self.units,
            "activation": self._named_activation.config(),
            "initializer": self.initializer.config(),
            "bias_initializer": self.bias_initializer.config(),
            "regularizer": self.regularizer.config(),
            "dropout": self.dropout.rate,
            "use_bias": self.use_bias,
        }


@register
class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013): `units` outputs, each the max of `pieces` affine maps."""

    type = "maxout"

    def __init__(
        self,
        units: int,
        *,
        pieces: int = 2,
        initializer: InitializerLike = "glorot_uniform",
        regularizer: RegularizerLike = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.units = check_int(units, "units", low=1)
        self.pieces = check_int(pieces, "pieces", low=2)
        self.initializer = build_initializer(initializer, "initializer")
        self.regularizer = build_regularizer(regularizer, "regularizer")
        self.dropout = DropoutMask(_dropout_rate(dropout, "dropout"))
        self._x: np.ndarray | None = None
        self._idx: np.ndarray | None = None

    def build(self, input_dim: int, dtype: np.dtype[Any]) -> int:
        super().build(input_dim, dtype)
        self.output_dim = self.units
        return self.units

    def param_specs(self) -> list[ParamSpec]:
        fans = (self.input_dim, self.units)
        width = self.units * self.pieces
        return [
            ParamSpec("W", (self.input_dim, width), self.initializer, fans, self.regularizer),
            ParamSpec("b", (width,), _ZEROS, fans),
        ]

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None) -> np.ndarray:
        z = np.matmul(x, self.params["W"])
        z += self.params["b"]
        z3 = z.reshape(len(x), self.units, self.pieces)
        idx = z3.argmax(axis=2)[..., None]
        self._x, self._idx = x, idx
        a = np.take_along_axis(z3, idx, axis=2)[..., 0]
        return self.dropout.apply(a, training, rng)

    def infer(self, x: np.ndarray, owned: bool) -> np.ndarray:
        """The max over pieces directly: backward's argmax is not needed to serve."""
        z = np.matmul(x, self.params["W"])
        z += self.params["b"]
        return z.reshape(len(x), self.units, self.pieces).max(axis=2)

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        assert self._x is not None and self._idx is not None
        grad = self.dropout.backward(grad)
        gz = np.zeros((len(grad), self.units, self.pieces), dtype=grad.dtype)
        np.put_along_axis(gz, self._idx, grad[..., None], axis=2)
        gz2 = gz.reshape(len(grad), -1)
        np.matmul(self._x.T, gz2, out=self.grads["W"])
        np.sum(gz2, axis=0, out=self.grads["b"])
        return np.matmul(gz2, self.params["W"].T) if need_input_grad else None

    def set_frozen_masks(self, frozen: bool) -> None:
        self.dropout.frozen = frozen

    def config(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "units": self.units,
            "pieces": self.pieces,
            "initializer": self.initializer.config(),
            "regularizer": self.regularizer.config(),
            "dropout": self.dropout.rate,
        }


@register
class ActivationLayer(Layer):
    """A standalone activation, e.g. after batch normalisation."""

    type = "activation"

    def __init__(self, activation: ActivationLike) -> None:
        super().__init__()
        if activation is None:  # left out of a spec entry
            raise SpecError("activation", "is required")
        self.activation = build_activation(activation, "activation")
        self._named_activation = self.activation
        self._z: np.ndarray | None = None
        self._a: np.ndarray | None = None

    @property
    def output_activation(self) -> Activation:
        return self._named_activation

    def fuse_output(self) -> None:
        self.activation = Identity()

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None) -> np.ndarray:
        self._z = x if self.activation.uses_input else None
        # Work on a copy: the previous layer may need its output for its own backward pass.
        self._a = self.activation.forward(x if self.activation.uses_input else x.copy())
        return self._a

    def infer(self, x: np.ndarray, owned: bool) -> np.ndarray:
        """In place over an owned input (activations that need their input never overwrite)."""
        keep = owned or self.activation.uses_input
        return self.activation.forward(x if keep else x.copy())

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        assert self._a is not None
        return self.activation.backward(grad, self._z, self._a)

    def config(self) -> dict[str, Any]:
        return {"type": self.type, "activation": self._named_activation.config()}


@register
class Dropout(Layer):
    type = "dropout"

    def __init__(self, rate: float) -> None:
        super().__init__()
        if rate is None:  # left out of a spec entry
            raise SpecError("rate", "is required (probability of dropping a unit)")
        self.dropout = DropoutMask(_dropout_rate(rate, "rate"))

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None) -> np.ndarray:
        out = self.dropout.apply(x, training, rng)
        return out if out is not x else x.copy()

    def infer(self, x: np.ndarray, owned: bool) -> np.ndarray:
        """Inverted dropout is the identity in evaluation: the input itself, not a copy."""
        return x

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        return self.dropout.backward(grad)

    def set_frozen_masks(self, frozen: bool) -> None:
        self.dropout.frozen = frozen

    def config(self) -> dict[str, Any]:
        return {"type": self.type, "rate": self.dropout.rate}


@register
class BatchNorm(Layer):
    """Batch normalisation (Ioffe & Szegedy 2015). Training mode normalises with the batch
    statistics and updates running ones as ``running = (1 - momentum) * running + momentum *
    batch`` (PyTorch's convention; the running variance is the unbiased one); evaluation mode
    uses the running statistics."""

    type = "batchnorm"

    def __init__(self, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0)
        self.eps = check_number(eps, "eps", low=0.0, low_open=True)
        self._xhat: np.ndarray | None = None
        self._inv_std: np.ndarray | None = None
        self._eval_x: np.ndarray | None = None

    def build(self, input_dim: int, dtype: np.dtype[Any]) -> int:
        super().build(input_dim, dtype)
        self.buffers = {
            "running_mean": np.zeros(input_dim, dtype=dtype),
            "running_var": np.ones(input_dim, dtype=dtype),
        }
        return input_dim

    def param_specs(self) -> list[ParamSpec]:
        fans = (self.input_dim, self.input_dim)
        return [
            ParamSpec("gamma", (self.input_dim,), _ONES, fans),
            ParamSpec("beta", (self.input_dim,), _ZEROS, fans),
        ]

    def forward(self, x: np.ndarray, training: bool, rng: np.random.Generator | None) -> np.ndarray:
        gamma, beta = self.params["gamma"], self.params["beta"]
        if training:
            n = len(x)
            mean = x.mean(axis=0)
            centred = x - mean
            var = (centred * centred).mean(axis=0)
            inv_std = 1.0 / np.sqrt(var + self.eps)
            xhat = centred
            xhat *= inv_std
            self._xhat, self._inv_std = xhat, inv_std
            m = self.momentum
            running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
            running_mean *= 1.0 - m
            running_mean += m * mean
            unbiased = var * (n / (n - 1)) if n > 1 else var
            running_var *= 1.0 - m
            running_var += m * unbiased
            return xhat * gamma + beta
        inv_std = 1.0 / np.sqrt(self.buffers["running_var"] + self.eps)
        self._xhat, self._inv_std, self._eval_x = None, inv_std, x
        return (x - self.buffers["running_mean"]) * (inv_std * gamma) + beta

    def infer(self, x: np.ndarray, owned: bool) -> np.ndarray:
        """Evaluation mode's formula, operation for operation, in one buffer (in x if owned)."""
        inv_std = 1.0 / np.sqrt(self.buffers["running_var"] + self.eps)
        out = np.subtract(x, self.buffers["running_mean"], out=x if owned else None)
        out *= inv_std * self.params["gamma"]
        out += self.params["beta"]
        return out

    def backward(self, grad: np.ndarray, need_input_grad: bool = True) -> np.ndarray | None:
        if self._xhat is None:
            return self._eval_backward(grad, need_input_grad)
        assert self._inv_std is not None
        xhat, n = self._xhat, len(grad)
        np.sum(grad * xhat, axis=0, out=self.grads["gamma"])
        np.sum(grad, axis=0, out=self.grads["beta"])
        if not need_input_grad:
            return None
        dxhat = grad * self.params["gamma"]
        dx = dxhat * n
        dx -= dxhat.sum(axis=0)
        dx -= xhat * (dxhat * xhat).sum(axis=0)
        dx *= self._inv_std * (1.0 / n)
        return dx

    def _eval_backward(self, grad: np.ndarray, need_input_grad: bool) -> np.ndarray | None:
        """Evaluation mode is affine per feature (running statistics are constants), so
        explanations can differentiate a served model down to its input."""
        assert self._eval_x is not None and self._inv_std is not None
        xhat = (self._eval_x - self.buffers["running_mean"]) * self._inv_std
        np.sum(grad * xhat, axis=0, out=self.grads["gamma"])
        np.sum(grad, axis=0, out=self.grads["beta"])
        return grad * (self._inv_std * self.params["gamma"]) if need_input_grad else None

    def config(self) -> dict[str, Any]:
        return {"type": self.type, "momentum": self.momentum, "eps": self.eps}


class _Ones(Initializer):
    """Batch norm's scale starts at one; not a name a spec can use, so it skips the check."""

    def __init__(self) -> None:
        self.name, self.std = "ones", None

    def fill(self, out: np.ndarray, fans: tuple[int, int], rng: np.random.Generator) -> None:
        out.fill(1)


_ONES = _Ones()
_ZEROS = Initializer("zeros")


def build_layer(config: Any, field: str) -> Layer:
    """A layer from its spec entry, errors naming the path under `field` (``layers[0]``)."""
    check_object(config, field)
    kind = config.get("type")
    if kind not in LAYERS:
        raise SpecError(f"{field}.type", f"unknown layer type {kind!r}", LAYERS)
    return LAYERS[kind].from_config(config, field)
