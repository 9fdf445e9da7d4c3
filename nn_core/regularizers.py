"""L1/L2 weight penalties.

Convention (stated because libraries differ): for a layer with ``{"l1": a, "l2": b}`` the
penalty ``a * sum|W| + 0.5 * b * sum(W**2)`` is added to the *batch-mean* data loss, so its
gradient ``a * sign(W) + b * W`` does not depend on the batch size. (scikit-learn instead scales
its alpha by 1/n_samples.) Biases are not penalised.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nn_core.params import Configurable, check_number


class Regularizer(Configurable):
    """``Regularizer(l2=1e-4)``, or from a spec entry ``{"l2": 1e-4}`` with `from_config`."""

    def __init__(self, l1: float = 0.0, l2: float = 0.0) -> None:
        self.l1 = check_number(l1, "l1", low=0.0)
        self.l2 = check_number(l2, "l2", low=0.0)

    @property
    def active(self) -> bool:
        return self.l1 > 0 or self.l2 > 0

    def penalty(self, w: np.ndarray) -> float:
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(w).sum(dtype=np.float64))
        if self.l2:
            flat = w.reshape(-1)
            total += 0.5 * self.l2 * float(np.dot(flat, flat))
        return total

    def add_grad(self, w: np.ndarray, grad: np.ndarray) -> None:
        """grad += d(penalty)/dW, in place."""
        if self.l1:
            grad += self.l1 * np.sign(w)
        if self.l2:
            grad += self.l2 * w

    def config(self) -> dict[str, float] | None:
        return {"l1": self.l1, "l2": self.l2} if self.active else None


#: what a layer's `regularizer` accepts: None (no penalty), a spec entry, or a Regularizer
RegularizerLike = dict[str, Any] | Regularizer | None


def build_regularizer(config: Any, field: str) -> Regularizer:
    """A Regularizer from a spec entry; None is no penalty (one is returned as it is)."""
    if config is None:
        return Regularizer()
    if isinstance(config, Regularizer):
        return config
    return Regularizer.from_config(config, field)
