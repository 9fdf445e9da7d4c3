"""The learning-rate range test (Smith 2015, "Cyclical Learning Rates"; fastai's and
Lightning's lr_find): train a copy of the model for a few hundred mini-batches while the
learning rate rises exponentially from `min_lr` to `max_lr`, and watch the loss.

The loss first barely moves (rate too small), then falls (the useful range), then blows up
(too large). Each step's loss is smoothed with a bias-corrected exponential moving average
(beta 0.98, as fastai does), and the test stops once the smoothed loss exceeds
`diverge_factor` (4) times the best so far, or turns non-finite.

The suggested rate is where the smoothed loss falls fastest: the most negative slope of the
smoothed loss against log10(lr) (Lightning's default), searched only up to the smoothed
minimum, so noise after the blow-up can never win. The caller's model is never touched: the
test trains a copy (saved and loaded), starting from the model's current (initial) weights.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nn_core.errors import SpecError
from nn_core.model import Model
from nn_core.serialize import load_model, save_model
from nn_core.training import Trainer

#: why a range test ended
FINISHED = "finished"  # every step ran
DIVERGED = "diverged"  # smoothed loss above diverge_factor x best, or non-finite
CANCELLED = "cancelled"

MAX_STEPS = 1000
#: steps skipped at the start when picking the steepest slope (the EMA is still settling)
SKIP_BEGIN = 10


@dataclass(frozen=True)
class LRPoint:
    lr: float
    loss: float
    smoothed: float


@dataclass
class LRRangeResult:
    """The curve, the suggested rate (None when the loss never fell) and why it ended."""

    points: list[LRPoint] = field(default_factory=list)
    suggested_lr: float | None = None
    stop_reason: str = FINISHED

    def to_dict(self) -> dict[str, Any]:
        return {
            "suggested_lr": self.suggested_lr,
            "stop_reason": self.stop_reason,
            "points": [{"lr": p.lr, "loss": p.loss, "smoothed": p.smoothed} for p in self.points],
        }


def check_range(min_lr: float, max_lr: float, num_steps: int) -> None:
    """SpecError naming the field of a range that cannot be tested."""
    for name, value in (("min_lr", min_lr), ("max_lr", max_lr)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise SpecError(name, "must be a finite number above 0")
    if max_lr <= min_lr:
        raise SpecError("max_lr", f"must be above min_lr ({min_lr})")
    if isinstance(num_steps, bool) or not isinstance(num_steps, int):
        raise SpecError("num_steps", "must be an integer")
    if not 2 <= num_steps <= MAX_STEPS:
        raise SpecError("num_steps", f"must be between 2 and {MAX_STEPS}")


def lr_schedule(min_lr: float, max_lr: float, num_steps: int) -> np.ndarray:
    """The exponentially spaced rates, min_lr first and max_lr last."""
    return np.geomspace(min_lr, max_lr, num_steps)


def suggest_lr(lrs: np.ndarray, smoothed: np.ndarray) -> float | None:
    """The rate of the steepest descent of `smoothed` in log10(lr), before its minimum."""
    finite = np.isfinite(smoothed)
    if finite.sum() < 3:
        return None
    lrs, smoothed = lrs[finite], smoothed[finite]
    end = int(np.argmin(smoothed)) + 1  # the falling part ends at the minimum
    begin = SKIP_BEGIN if end - SKIP_BEGIN >= 3 else 0
    if end - begin < 3:
        return None
    slopes = np.gradient(smoothed[begin:end], np.log10(lrs[begin:end]))
    best = int(np.argmin(slopes))
    if slopes[best] >= 0:
        return None
    return float(lrs[begin + best])


def lr_range_test(
    model: Model,
    x: Any,
    y: Any,
    *,
    min_lr: float = 1e-7,
    max_lr: float = 10.0,
    num_steps: int = 100,
    beta: float = 0.98,
    diverge_factor: float = 4.0,
    should_stop: Callable[[], bool] | None = None,
    on_step: Callable[[int, LRPoint], None] | None = None,
) -> LRRangeResult:
    """Run the range test on a copy of `model` with its spec's optimizer, batch size and
    seed (so the same seed gives the same curve); `model` itself is left as it was.

    Batches cycle through reshuffled epochs when the data has fewer than `num_steps`.
    `should_stop` is polled after each step (cancellation); `on_step` sees each point.
    """
    check_range(min_lr, max_lr, num_steps)
    trial = load_model(save_model(model))  # a deep copy that keeps the weights' views
    trainer = Trainer(trial)
    x_tr, t_tr, _, _ = trainer.prepare(x, y)
    result = LRRangeResult()
    avg, best = 0.0, math.inf
    batches = _batches(trainer, len(x_tr))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for step, lr in enumerate(lr_schedule(min_lr, max_lr, num_steps)):
            rows = next(batches)
            loss = _train_step(trainer, x_tr[rows], t_tr[rows], float(lr))
            if not math.isfinite(loss):
                result.stop_reason = DIVERGED
                break
            avg = beta * avg + (1 - beta) * loss
            smoothed = avg / (1 - beta ** (step + 1))
            point = LRPoint(float(lr), loss, smoothed)
            result.points.append(point)
            if on_step is not None:
                on_step(step, point)
            best = min(best, smoothed)
            if step > 0 and smoothed > diverge_factor * best:
                result.stop_reason = DIVERGED
                break
            if should_stop is not None and should_stop():
                result.stop_reason = CANCELLED
                break
    lrs = np.array([p.lr for p in result.points])
    result.suggested_lr = suggest_lr(lrs, np.array([p.smoothed for p in result.points]))
    return result


def _batches(trainer: Trainer, n: int) -> Any:
    """Row indices of successive mini-batches, reshuffled each pass as the spec asks."""
    cfg = trainer.model.training
    while True:
        order = trainer.rng.permutation(n) if cfg.shuffle else np.arange(n)
        for start in range(0, n, cfg.batch_size):
            yield order[start : start + cfg.batch_size]


def _train_step(trainer: Trainer, xb: np.ndarray, tb: np.ndarray, lr: float) -> float:
    """One optimizer step at `lr`; the batch's loss (with penalties) before the step."""
    model = trainer.model
    out = model.forward(xb, training=True, rng=trainer.rng)
    loss, grad = model.loss.value_and_grad(out, tb)
    if model.regularized:
        loss += model.penalty()
    if not math.isfinite(loss):
        return float(loss)
    model.backward(grad)
    model.optimizer.step(model.params, model.grads, lr)
    return float(loss)
