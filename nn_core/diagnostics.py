"""Per-layer statistics during training: what the loss curve alone cannot show.

After every `training.diagnostics.every` epochs, the `Diagnostics` callback runs the model
on a fixed sample of training rows (evaluation mode, so it draws nothing from the trainer's
random stream and training stays bit-for-bit the same) and records, for each layer: its
weights, their gradient on that sample and its activations (mean, std, L2 norm and a
histogram of `BINS` bins over the tensor's own range), the update-to-weight ratio of the
epoch's last optimizer step, the share of saturated sigmoid/tanh outputs and of dead ReLU
units. The cost is one forward and backward pass of the sample per recorded epoch, plus
one copy of the parameters before the epoch's last step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nn_core.callbacks import Callback
from nn_core.layers import Layer

if TYPE_CHECKING:
    from nn_core.training import Trainer

#: histogram bins per tensor
BINS = 20
#: a sigmoid output below/above these, or |tanh| above SATURATED_TANH, is saturated
SATURATED_SIGMOID = (0.02, 0.98)
SATURATED_TANH = 0.98


def _num(value: float) -> float | None:
    """JSON-safe: NaN and infinities become None."""
    return float(value) if math.isfinite(value) else None


def tensor_stats(values: np.ndarray) -> dict[str, Any]:
    """Mean, std, L2 norm and a fixed-bin histogram over [min, max] of the finite values."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        return {"mean": None, "std": None, "norm": None, "histogram": None}
    lo, hi = float(finite.min()), float(finite.max())
    if hi - lo < 1e-12:  # a constant tensor: one bin's worth of width around it
        lo, hi = lo - 0.5, hi + 0.5
    counts, _ = np.histogram(finite, bins=BINS, range=(lo, hi))
    return {
        "mean": _num(float(finite.mean())),
        "std": _num(float(finite.std())),
        "norm": _num(float(np.sqrt(np.dot(flat, flat)))),
        "histogram": {"min": lo, "max": hi, "counts": counts.tolist()},
    }


def activation_name(layer: Layer) -> str | None:
    """The activation the layer applies itself (identity when the loss fuses it)."""
    activation = getattr(layer, "activation", None)
    name = getattr(activation, "name", None)
    return name if isinstance(name, str) else None


def saturated_share(name: str | None, out: np.ndarray) -> float | None:
    """Share of sigmoid/tanh outputs near an asymptote, where the gradient is about zero."""
    if out.size == 0:
        return None
    if name == "sigmoid":
        low, high = SATURATED_SIGMOID
        return float(np.mean((out < low) | (out > high)))
    if name == "tanh":
        return float(np.mean(np.abs(out) > SATURATED_TANH))
    return None


def dead_share(name: str | None, out: np.ndarray) -> float | None:
    """Share of ReLU units that output zero for every row of the sample: they learn nothing."""
    if name != "relu" or out.size == 0:
        return None
    return float(np.mean(np.all(out <= 0, axis=0)))


def layer_stats(
    index: int, layer: Layer, out: np.ndarray, before: dict[str, np.ndarray] | None
) -> dict[str, Any]:
    """One layer's record; `before` holds its parameters before the last optimizer step."""
    name = activation_name(layer)
    main = layer.specs[0].name if layer.specs else None
    record: dict[str, Any] = {
        "index": index,
        "type": layer.type,
        "activation": name,
        "param": main,
        "weights": None,
        "gradients": None,
        "update_ratio": None,
        "activations": tensor_stats(out),
        "saturated": saturated_share(name, out),
        "dead": dead_share(name, out),
    }
    if main is not None:
        weights = layer.params[main]
        record["weights"] = tensor_stats(weights)
        record["gradients"] = tensor_stats(layer.grads[main])
        if before is not None:
            w_norm = float(np.linalg.norm(weights))
            step = float(np.linalg.norm(weights - before[main]))
            record["update_ratio"] = _num(step / w_norm) if w_norm > 0 else None
    return record


def sample_rows(n: int, size: int) -> np.ndarray:
    """Evenly spaced row indices: the same sample every epoch, with no random draw."""
    if size >= n:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, size).astype(np.int64))


def collect(
    trainer: Trainer,
    x: np.ndarray,
    t: np.ndarray,
    before: np.ndarray | None = None,
) -> dict[str, Any]:
    """The diagnostics record of the model now, on rows `x` with targets `t`.

    Overwrites the model's gradient buffer and layer caches (the next batch rewrites both).
    `before`: the flat parameter vector before the last step, for the update ratios.
    """
    model = trainer.model
    outputs: list[np.ndarray] = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        out = x
        for layer in model.layers:
            out = layer.forward(out, False, None)
            outputs.append(out)
        loss, grad = model.loss.value_and_grad(out, t)
        model.backward(grad)
        layers = []
        for i, layer in enumerate(model.layers):
            prior = None
            if before is not None:
                prior = {
                    s.name: before[s.offset : s.offset + s.size].reshape(s.shape)
                    for s in model.slots
                    if s.layer == i
                }
            layers.append(layer_stats(i, layer, outputs[i], prior))
    return {"epoch": trainer.epoch, "sample_loss": _num(float(loss)), "layers": layers}


class Diagnostics(Callback["Trainer"]):
    """Records per-layer statistics every `every` epochs and hands each record to
    `report(trainer, record)`; does nothing when the spec turns diagnostics off."""

    def __init__(self, report: Callable[[Trainer, dict[str, Any]], None]) -> None:
        self.report = report
        self._sample: tuple[np.ndarray, np.ndarray] | None = None
        self._before: np.ndarray | None = None
        self._snap_batch = -1
        self.every = 0

    def on_train_begin(self, trainer: Trainer) -> None:
        cfg = trainer.model.training
        self._sample = None
        if cfg.diagnostics is None or trainer.train_data is None:
            return
        self.every = cfg.diagnostics.every
        x, t = trainer.train_data
        rows = sample_rows(len(x), cfg.diagnostics.sample)
        self._sample = (x[rows], t[rows])
        batches = math.ceil(len(x) / cfg.batch_size)
        # Parameters after the second-to-last batch are those before the last step; with one
        # batch an epoch, those after the previous epoch are.
        self._snap_batch = batches - 2
        self._before = trainer.model.params.copy()

    def _recording(self, epoch: int) -> bool:
        """Whether the epoch numbered `epoch` (1-based) gets a record."""
        return self._sample is not None and epoch % self.every == 0

    def on_batch_end(self, trainer: Trainer, batch: int) -> None:
        if batch == self._snap_batch and self._recording(trainer.epoch + 1):
            assert self._before is not None
            np.copyto(self._before, trainer.model.params)

    def on_epoch_end(self, trainer: Trainer, logs: dict[str, Any]) -> None:
        if self._recording(trainer.epoch) and self._sample is not None:
            record = collect(trainer, *self._sample, before=self._before)
            self.report(trainer, record)
        if self._snap_batch < 0 and self._before is not None:
            np.copyto(self._before, trainer.model.params)
