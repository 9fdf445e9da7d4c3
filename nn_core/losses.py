"""Loss functions. Each returns the loss value and its gradient with respect to the network
output in one call, so shared work (softmax, sigmoid) is done once.

Cross-entropies are computed from logits: the output layer's softmax/sigmoid is fused into the
loss (log-sum-exp form), which stays exact for confident wrong answers where ``log(p + 1e-7)``
would cap the loss near 16 and clipped probabilities would give inf.

Reductions: MSE, MAE and the cross-entropies average over the batch (and over output units);
SSE is ``0.5 * sum((y - t)**2)`` over everything, the textbook form whose gradient is ``y - t``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from nn_core.activations import log_softmax, sigmoid, softmax
from nn_core.errors import SpecError

LOSSES: dict[str, type[Loss]] = {}


def register(cls: type[Loss]) -> type[Loss]:
    LOSSES[cls.name] = cls
    return cls


class Loss:
    name: ClassVar[str] = ""
    #: output activation computed inside the loss; the network emits logits
    fused_activation: ClassVar[str | None] = None
    #: "classification" losses take class labels; "regression" ones take real targets
    task: ClassVar[str] = "regression"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def value(self, out: np.ndarray, target: np.ndarray) -> float:
        return self.value_and_grad(out, target)[0]

    def output(self, out: np.ndarray) -> np.ndarray:
        """Map network outputs to predictions (probabilities for fused losses)."""
        return out

    def config(self) -> str:
        return self.name


@register
class MSE(Loss):
    name = "mse"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        diff = out - target
        flat = diff.reshape(-1)
        value = float(np.dot(flat, flat)) / diff.size
        diff *= 2.0 / diff.size
        return value, diff


@register
class SSE(Loss):
    name = "sse"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        diff = out - target
        flat = diff.reshape(-1)
        return 0.5 * float(np.dot(flat, flat)), diff


@register
class MAE(Loss):
    name = "mae"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        diff = out - target
        value = float(np.abs(diff).sum(dtype=np.float64)) / diff.size
        grad = np.sign(diff)
        grad *= 1.0 / diff.size
        return value, grad


@register
class CategoricalCrossEntropy(Loss):
    """Softmax + cross-entropy from logits. Targets are integer class indices (n,) or
    one-hot / probability rows (n, k)."""

    name = "categorical_crossentropy"
    fused_activation = "softmax"
    task = "classification"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        n = len(out)
        shifted = out - out.max(axis=1, keepdims=True)
        exp = np.exp(shifted)
        sums = exp.sum(axis=1, keepdims=True)
        log_sums = np.log(sums)
        exp /= sums  # now the softmax probabilities
        if target.ndim == 1:
            rows = np.arange(n)
            picked = shifted[rows, target]
            value = float((log_sums[:, 0] - picked).sum(dtype=np.float64)) / n
            exp[rows, target] -= 1.0
        else:
            shifted -= log_sums  # log-softmax
            value = -float((target * shifted).sum(dtype=np.float64)) / n
            exp -= target
        exp *= 1.0 / n
        return value, exp

    def output(self, out: np.ndarray) -> np.ndarray:
        return softmax(out)


@register
class BinaryCrossEntropy(Loss):
    """Sigmoid + binary cross-entropy from logits, averaged over batch and output units:
    ``max(z, 0) - z*t + log1p(exp(-|z|))``."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"
    task = "classification"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        size = out.size
        terms = np.maximum(out, 0) - out * target + np.log1p(np.exp(-np.abs(out)))
        value = float(terms.sum(dtype=np.float64)) / size
        grad = sigmoid(out)
        grad -= target
        grad *= 1.0 / size
        return value, grad

    def output(self, out: np.ndarray) -> np.ndarray:
        return sigmoid(out)


@register
class Hinge(Loss):
    """Hinge loss ``mean(max(0, 1 - t*y))`` with targets t in {-1, +1}: the margin version of
    the perceptron criterion, for a linear (identity) output unit."""

    name = "hinge"
    task = "classification"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        margin = 1.0 - target * out
        active = margin > 0
        value = float(np.where(active, margin, 0).sum(dtype=np.float64)) / out.size
        grad = -target * active
        grad *= 1.0 / out.size
        return value, grad.astype(out.dtype, copy=False)


def build_loss(config: Any, field: str = "loss") -> Loss:
    if not isinstance(config, str) or config not in LOSSES:
        raise SpecError(field, f"unknown loss {config!r}", LOSSES)
    return LOSSES[config]()


__all__ = ["LOSSES", "Loss", "build_loss", "log_softmax"]
