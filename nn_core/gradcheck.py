"""Gradient checking: backpropagation against central finite differences.

Run on a float64 model. Dropout masks are drawn once and then frozen, otherwise every loss
evaluation would see new masks and the differences would measure noise. The loss checked is
the training objective: batch-mean data loss plus regularisation penalties.

The step activation is excluded: its derivative is zero wherever it exists, so there is
nothing to compare (and a finite difference straddling 0 would see a jump, not a slope).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nn_core.model import Model


@dataclass
class GradCheckResult:
    #: per parameter array: ||analytic - numeric|| / max(||analytic||, ||numeric||). A gradient
    #: that is structurally zero (a bias feeding batchnorm) reads 1.0: the numeric side is then
    #: pure rounding noise.
    relative_errors: dict[str, float]

    @property
    def max_relative_error(self) -> float:
        return max(self.relative_errors.values(), default=0.0)


def _objective(model: Model, x: np.ndarray, target: np.ndarray) -> float:
    out = model.forward(x, training=True)
    return model.loss.value(out, target) + model.penalty()


def gradcheck(
    model: Model,
    x: np.ndarray,
    target: np.ndarray,
    *,
    eps: float = 1e-6,
    max_checks_per_param: int = 200,
    seed: int = 0,
) -> GradCheckResult:
    """Compare `model.backward` with central differences on (encoded) inputs and targets."""
    if model.dtype != np.float64:
        raise ValueError(
            "gradcheck needs a float64 model (float32 rounding swamps the differences)"
        )
    rng = np.random.default_rng(seed)
    model.forward(x, training=True, rng=rng)  # draw the dropout masks once...
    model.set_frozen_masks(True)  # ...and reuse them for every evaluation below
    try:
        out = model.forward(x, training=True)
        _, grad = model.loss.value_and_grad(out, target)
        model.backward(grad)
        analytic = model.grads.copy()
        errors = {}
        for slot in model.slots:
            picks = np.arange(slot.size)
            if slot.size > max_checks_per_param:
                picks = rng.choice(slot.size, max_checks_per_param, replace=False)
            numeric = np.empty(len(picks))
            for j, k in enumerate(picks):
                i = slot.offset + int(k)
                saved = model.params[i]
                model.params[i] = saved + eps
                up = _objective(model, x, target)
                model.params[i] = saved - eps
                down = _objective(model, x, target)
                model.params[i] = saved
                numeric[j] = (up - down) / (2 * eps)
            a = analytic[slot.offset + picks]
            scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(numeric)), 1e-12)
            errors[slot.key] = float(np.linalg.norm(a - numeric)) / scale
        return GradCheckResult(errors)
    finally:
        model.set_frozen_masks(False)
