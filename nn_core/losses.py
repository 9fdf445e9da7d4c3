"""Loss functions. Each returns the loss value and its gradient with respect to the network
output in one call, so shared work (softmax, sigmoid) is done once.

Cross-entropies are computed from logits: the output layer's softmax/sigmoid is fused into the
loss (log-sum-exp form), which stays exact for confident wrong answers where ``log(p + 1e-7)``
would cap the loss near 16 and clipped probabilities would give inf.

Reductions: MSE, MAE and the cross-entropies average over the batch (and over output units);
SSE is ``0.5 * sum((y - t)**2)`` over everything, the textbook form whose gradient is ``y - t``.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

import numpy as np

from nn_core.activations import sigmoid
from nn_core.errors import SpecError
from nn_core.heads import Head, HingeHead, MultiLabelHead, SigmoidHead, SoftmaxHead

LOSSES: dict[str, type[Loss]] = {}


def register(cls: type[Loss]) -> type[Loss]:
    LOSSES[cls.name] = cls
    return cls


class Loss:
    name: ClassVar[str] = ""
    #: output activation computed inside the loss; the network emits logits
    fused_activation: ClassVar[str | None] = None

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def value(self, out: np.ndarray, target: np.ndarray) -> float:
        return self.value_and_grad(out, target)[0]

    def head(self, output_dim: int, field: str = "units") -> Head:
        """How outputs of this loss are read: targets, predictions, labels, accuracy.
        An output width the loss cannot work with is refused here, naming `field`."""
        return Head(output_dim, self.name)

    @classmethod
    def from_config(cls, config: Any, field: str = "loss") -> Self:
        """From its spec entry, the bare name: losses take no parameters (``MSE()``)."""
        if config != cls.name:
            raise SpecError(field, f"unknown loss {config!r}", LOSSES)
        return cls()

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

    def head(self, output_dim: int, field: str = "units") -> Head:
        return SoftmaxHead(output_dim, self.name)


@register
class BinaryCrossEntropy(Loss):
    """Sigmoid + binary cross-entropy from logits, averaged over batch and output units:
    ``max(z, 0) - z*t + log1p(exp(-|z|))``."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        size = out.size
        terms = np.maximum(out, 0) - out * target + np.log1p(np.exp(-np.abs(out)))
        value = float(terms.sum(dtype=np.float64)) / size
        grad = sigmoid(out)
        grad -= target
        grad *= 1.0 / size
        return value, grad

    def head(self, output_dim: int, field: str = "units") -> Head:
        """One unit: a two-class probability; several: independent yes/no labels."""
        if output_dim == 1:
            return SigmoidHead(output_dim, self.name)
        return MultiLabelHead(output_dim, self.name)


@register
class Hinge(Loss):
    """Hinge loss ``mean(max(0, 1 - t*y))`` with targets t in {-1, +1}: the margin version of
    the perceptron criterion, for a linear (identity) output unit."""

    name = "hinge"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        margin = 1.0 - target * out
        active = margin > 0
        value = float(np.where(active, margin, 0).sum(dtype=np.float64)) / out.size
        grad = -target * active
        grad *= 1.0 / out.size
        return value, grad.astype(out.dtype, copy=False)

    def head(self, output_dim: int, field: str = "units") -> Head:
        if output_dim != 1:
            raise SpecError(field, "hinge needs one output unit")
        return HingeHead(output_dim, self.name)


def build_loss(config: Any, field: str = "loss") -> Loss:
    """A loss from its name, e.g. ``"categorical_crossentropy"``."""
    if not isinstance(config, str) or config not in LOSSES:
        raise SpecError(field, f"unknown loss {config!r}", LOSSES)
    return LOSSES[config].from_config(config, field)


__all__ = [
    "LOSSES",
    "MAE",
    "MSE",
    "SSE",
    "BinaryCrossEntropy",
    "CategoricalCrossEntropy",
    "Hinge",
    "Loss",
    "build_loss",
]
