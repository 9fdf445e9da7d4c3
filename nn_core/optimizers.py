"""Gradient-descent optimizers over the model's flat parameter and gradient vectors.

Working on one contiguous vector means each update is a handful of in-place NumPy operations for
the whole model (Adam's per-step cost at small batches is dominated by call overhead otherwise).
State arrays are aligned with that vector, whose layout comes from the spec, so they save and
resume by name without depending on object identity.

Update rules (g = gradient, lr = learning rate of this epoch):
  sgd       p -= lr * g
  momentum  v = mu * v + g;              p -= lr * v                    (PyTorch's form)
  nesterov  v = mu * v + g;              p -= lr * (g + mu * v)
  adagrad   s += g^2;                    p -= lr * g / (sqrt(s) + eps)
  rmsprop   s = rho * s + (1-rho) * g^2; p -= lr * g / (sqrt(s) + eps)
  adam      bias-corrected first/second moments (Kingma & Ba 2015)
  adamw     adam plus decoupled weight decay p -= lr * wd * p (Loshchilov & Hutter 2019)
RMSprop and Adam keep their averages without the (1 - rho) / (1 - beta) factors and fold those
constants into two scalars per step: the same update exactly, with two fewer passes over memory.
Gradient clipping (``clip_norm``) rescales the whole gradient vector when its L2 norm exceeds it.

Decaying state (momentum's velocity, RMSprop's and Adam's averages) of a weight whose gradient
stays zero, such as one fed by an always-black pixel, shrinks geometrically into the subnormal
range, where x86 arithmetic is about ten times slower (Adam at batch 32 lost 60% of its speed on
Fashion-MNIST). Every FLUSH_EVERY steps, values below 2^26 times the smallest normal number
(about 1e-30 in float32) are set to zero: far below anything that changes a float32 update.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from nn_core.errors import SpecError
from nn_core.params import Configurable, check_number, check_object

OPTIMIZERS: dict[str, type[Optimizer]] = {}
FLUSH_EVERY = 16


def register(cls: type[Optimizer]) -> type[Optimizer]:
    OPTIMIZERS[cls.name] = cls
    return cls


def _fraction(value: Any, field: str) -> float:
    """Every hyperparameter besides lr and clip_norm lies in [0, 1)."""
    return check_number(value, field, low=0.0, high=1.0, high_open=True)


class Optimizer(Configurable):
    """Built as ``Adam(lr=1e-3)``, or from ``{"name": "adam", "lr": 0.001}`` with
    `build_optimizer`. `lr` is the base rate a schedule scales; `clip_norm` caps the global
    gradient norm (None: no clipping)."""

    kind_key = "name"
    name: ClassVar[str] = ""
    #: names of the state vectors this optimizer keeps
    slots: ClassVar[tuple[str, ...]] = ()
    #: the slots multiplied by a factor below 1 each step (flushed, see the module docstring)
    decaying: ClassVar[tuple[str, ...]] = ()

    def __init__(self, lr: float = 0.01, *, clip_norm: float | None = None) -> None:
        self.lr = check_number(lr, "lr", low=0.0, low_open=True)
        self.clip_norm = (
            None
            if clip_norm is None
            else check_number(clip_norm, "clip_norm", low=0.0, low_open=True)
        )
        #: hyperparameters besides lr and clip_norm, as the update rule reads them
        self.h: dict[str, float] = {}
        self.state: dict[str, np.ndarray] = {}
        self.t = 0
        self._tmp: np.ndarray | None = None

    def bind(self, params: np.ndarray) -> None:
        """Allocate state vectors shaped like the flat parameter vector."""
        self.state = {slot: np.zeros_like(params) for slot in self.slots}
        self._tmp = np.empty_like(params)
        self.t = 0

    def step(self, params: np.ndarray, grads: np.ndarray, lr: float) -> None:
        if self.clip_norm is not None:
            norm = math.sqrt(float(np.dot(grads, grads)))
            if norm > self.clip_norm:
                grads *= self.clip_norm / norm
        self.t += 1
        assert self._tmp is not None, "bind() the optimizer to the parameters first"
        self._update(params, grads, lr, self._tmp)
        if self.t % FLUSH_EVERY == 0:
            self._flush_tiny(self._tmp)

    def _flush_tiny(self, tmp: np.ndarray) -> None:
        for slot in self.decaying:
            state = self.state[slot]
            np.abs(state, out=tmp)
            np.copyto(state, 0, where=tmp < np.finfo(state.dtype).tiny * 2**26)

    def _update(self, p: np.ndarray, g: np.ndarray, lr: float, tmp: np.ndarray) -> None:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "lr": self.lr, "clip_norm": self.clip_norm, **self.h}

    def state_dict(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        return dict(self.state), {"t": self.t}

    def load_state_dict(self, arrays: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        for slot in self.slots:
            src = arrays.get(slot)
            if src is None or src.shape != self.state[slot].shape:
                raise SpecError("optimizer", f"stored state for {slot!r} does not fit this model")
            self.state[slot][...] = src
        self.t = int(meta["t"])


@register
class SGD(Optimizer):
    name = "sgd"

    def _update(self, p: np.ndarray, g: np.ndarray, lr: float, tmp: np.ndarray) -> None:
        g *= lr
        p -= g


@register
class Momentum(Optimizer):
    name = "momentum"
    slots = ("velocity",)
    decaying = slots

    def __init__(
        self, lr: float = 0.01, *, momentum: float = 0.9, clip_norm: float | None = None
    ) -> None:
        super().__init__(lr, clip_norm=clip_norm)
        self.h = {"momentum": _fraction(momentum, "momentum")}

    def _update(self, p: np.ndarray, g: np.ndarray, lr: float, tmp: np.ndarray) -> None:
        v = self.state["velocity"]
        v *= self.h["momentum"]
        v += g
        np.multiply(v, lr, out=tmp)
        p -= tmp


@register
class Nesterov(Momentum):
    name = "nesterov"

    def _update(self, p: np.ndarray, g: np.ndarray, lr: float, tmp: np.ndarray) -> None:
        mu = self.h["momentum"]
        v = self.state["velocity"]
        v *= mu
        v += g
        np.multiply(v, mu, out=tmp)
        tmp += g
        tmp *= lr
        p -= tmp


@register
class Adagrad(Optimizer):
    name = "adagrad"
    slots = ("sum_sq",)

    def __init__(
        self, lr: float = 0.01, *, eps: float = 1e-8, clip_norm: float | None = None
    ) -> None:
        super().__init__(lr, clip_norm=clip_norm)
        self.h = {"eps": _fraction(eps, "eps")}

    def _update(self, p: np.ndarray, g: np.ndarray, lr: float, tmp: np.ndarray) -> None:
        s = self.state["sum_sq"]
        np.multiply(g, g, out=tmp)
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.h["eps"]
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp


@register
class RMSprop(Optimizer):
    name = "rmsprop"
    slots = ("sq_sum",)
    decaying = slots

    def __init__(
        self,
        lr: float = 0.01,
        *,
        rho: float = 0.9,
        eps: float = 1e-8,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, clip_norm=clip_norm)
        self.h = {"rho": _fraction(rho, "rho"), "eps": _fraction(eps, "eps")}

    def _update(self, p: np.ndarray, g: np.ndarray, lr: float, tmp: np.ndarray) -> None:
        # sq_sum holds sum(rho^k g^2) = mean_square / (1 - rho), so
        # lr * g / (sqrt(mean_square) + eps) = lr / c * g / (sqrt(s) + eps / c), c = sqrt(1 - rho).
        rho = self.h["rho"]
        c = math.sqrt(1.0 - rho)
        s = self.state["sq_sum"]
        np.multiply(g, g, out=tmp)
        s *= rho
        s += tmp
        np.sqrt(s, out=tmp)
        tmp += self.h["eps"] / c
        np.divide(g, tmp, out=tmp)
        tmp *= lr / c
        p -= tmp


@register
class Adam(Optimizer):
    name = "adam"
    slots = ("m_sum", "v_sum")
    decaying = slots

    def __init__(
        self,
        lr: float = 0.01,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, clip_norm=clip_norm)
        self.h = {
            "beta1": _fraction(beta1, "beta1"),
            "beta2": _fraction(beta2, "beta2"),
            "eps": _fraction(eps, "eps"),
        }

    def _update(self, p: np.ndarray, g: np.ndarray, lr: float, tmp: np.ndarray) -> None:
        b1, b2, eps = self.h["beta1"], self.h["beta2"], self.h["eps"]
        m, v = self.state["m_sum"], self.state["v_sum"]
        self._decay(p, lr)
        # m and v are kept without the (1 - b) factors: m = sum(b1^k g), v = sum(b2^k g^2).
        m *= b1
        m += g
        np.multiply(g, g, out=tmp)
        v *= b2
        v += tmp
        # Adam's m_hat / (sqrt(v_hat) + eps) = a * m / (sqrt(v) + eps / c) with
        # c = sqrt((1 - b2) / (1 - b2^t)) and a = (1 - b1) / (1 - b1^t) / c: exact, no eps-hat.
        c = math.sqrt((1.0 - b2) / (1.0 - b2**self.t))
        a = (1.0 - b1) / (1.0 - b1**self.t) / c
        np.sqrt(v, out=tmp)
        tmp += eps / c
        np.divide(m, tmp, out=tmp)
        tmp *= lr * a
        p -= tmp

    def _decay(self, p: np.ndarray, lr: float) -> None:
        """Adam has no decoupled weight decay; AdamW overrides this."""


@register
class AdamW(Adam):
    name = "adamw"

    def __init__(
        self,
        lr: float = 0.01,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        clip_norm: float | None = None,
    ) -> None:
        super().__init__(lr, beta1=beta1, beta2=beta2, eps=eps, clip_norm=clip_norm)
        self.h["weight_decay"] = _fraction(weight_decay, "weight_decay")

    def _decay(self, p: np.ndarray, lr: float) -> None:
        p *= 1.0 - lr * self.h["weight_decay"]


def build_optimizer(config: Any, field: str = "optimizer") -> Optimizer:
    """An optimizer from ``"adam"`` or ``{"name": "adam", "lr": 0.001, ...}``."""
    if isinstance(config, str):
        config = {"name": config}
    check_object(config, field)
    name = config.get("name")
    if name not in OPTIMIZERS:
        raise SpecError(f"{field}.name", f"unknown optimizer {name!r}", OPTIMIZERS)
    return OPTIMIZERS[name].from_config(config, field)
