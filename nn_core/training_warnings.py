"""Plain-words warnings about a training run, each with its likely fix.

Read from the latest diagnostics record (nn_core/diagnostics.py) and the epoch history, so
a client learns *why* a loss curve looks wrong without reading histograms. Each rule is a
small function returning its message or None; thresholds are deliberately coarse (orders of
magnitude, majorities) so a healthy run stays silent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

#: gradient norm ratio (input-most weighted layer / output-most one) beyond which it warns
VANISHING_RATIO = 1e-3
#: an update-to-weight ratio beyond this is a step larger than the weights themselves
EXPLODING_STEP = 1.0
#: share of dead ReLU units / saturated sigmoid or tanh outputs in one layer
MOST = 0.5
#: epochs of steady rise before the loss or the validation gap counts as rising
RISING_EPOCHS = 3

Record = dict[str, Any]
History = Sequence[dict[str, Any]]


def _gradient_norms(record: Record) -> list[tuple[int, float | None]]:
    """(layer index, gradient norm) of the dense/maxout layers, input first."""
    return [
        (layer["index"], (layer.get("gradients") or {}).get("norm"))
        for layer in record.get("layers", [])
        if layer.get("param") == "W"
    ]


def vanishing_gradients(record: Record, history: History) -> str | None:
    norms = _gradient_norms(record)
    if len(norms) < 3 or any(n is None for _, n in norms):
        return None
    first, last = norms[0][1], norms[-1][1]
    assert first is not None and last is not None
    if last < 1e-10 or first / last >= VANISHING_RATIO:
        return None
    return (
        f"vanishing gradients: the first layer's gradient is {first / last:.1e} times the "
        f"last layer's, so the layers near the input barely learn. Use relu (or tanh) hidden "
        "activations with he_normal/glorot initializers, fewer layers, or batchnorm layers."
    )


def exploding_gradients(record: Record, history: History) -> str | None:
    weighted = [lay for lay in record.get("layers", []) if lay.get("weights") is not None]
    if any((lay.get("gradients") or {}).get("norm") is None for lay in weighted):
        return (
            "exploding gradients: some gradients are no longer finite. Lower optimizer.lr, "
            "set optimizer.clip_norm, or use smaller initial weights."
        )
    ratios = [(lay["index"], lay.get("update_ratio")) for lay in weighted]
    big = [(i, r) for i, r in ratios if r is not None and r > EXPLODING_STEP]
    if not big:
        return None
    index, ratio = max(big, key=lambda item: item[1])
    return (
        f"exploding gradients: one step changed layer {index}'s weights by {ratio:.1e} times "
        "their own size (healthy steps are about 1e-3). Set optimizer.clip_norm, lower "
        "optimizer.lr, or use smaller initial weights (he_normal/glorot_uniform)."
    )


def _hidden(record: Record) -> list[dict[str, Any]]:
    layers = list(record.get("layers", []))
    return layers[:-1]


def dead_relus(record: Record, history: History) -> str | None:
    dead = [(lay["index"], lay["dead"]) for lay in _hidden(record) if lay.get("dead") is not None]
    worst = max(dead, key=lambda item: item[1], default=None)
    if worst is None or worst[1] <= MOST:
        return None
    return (
        f"most ReLUs are dead: {worst[1]:.0%} of layer {worst[0]}'s units output zero for "
        "every sample row, so they no longer learn. Lower optimizer.lr, or use leaky_relu or "
        "elu, he_normal initializers, or batchnorm before the activation."
    )


def saturated_units(record: Record, history: History) -> str | None:
    # Sigmoid only: its outputs are all positive and its gradient at most 0.25, so a
    # saturated sigmoid layer stalls; a tanh layer of a confident classifier saturates
    # legitimately (the statistics still report it).
    saturated = [
        (lay["index"], lay["activation"], lay["saturated"])
        for lay in _hidden(record)
        if lay.get("saturated") is not None and lay.get("activation") == "sigmoid"
    ]
    worst = max(saturated, key=lambda item: item[2], default=None)
    if worst is None or worst[2] <= MOST:
        return None
    index, name, share = worst
    return (
        f"saturated {name} units: {share:.0%} of layer {index}'s outputs sit at their limits, "
        "where the gradient is almost zero. Standardize the inputs (preprocess standardize), "
        "use glorot initializers or smaller weights, or switch hidden layers to relu."
    )


def _rising(values: list[float], margin: float = 0.05) -> bool:
    """Rose in each of the last RISING_EPOCHS epochs and ended above its minimum by more
    than `margin` of it (noise in a near-zero loss is not a trend)."""
    if len(values) < RISING_EPOCHS + 1:
        return False
    tail = values[-(RISING_EPOCHS + 1) :]
    steady = all(b > a for a, b in pairwise(tail))
    low = min(values)
    return steady and values[-1] > low + margin * abs(low) + 1e-12


def _series(history: History, key: str) -> list[float] | None:
    values = [h.get(key) for h in history]
    if not values or any(not isinstance(v, int | float) for v in values):
        return None
    return [float(v) for v in values if v is not None]


def loss_rising(record: Record, history: History) -> str | None:
    losses = _series(history, "loss")
    if losses is None or not _rising(losses, margin=0.5):
        return None
    return (
        f"the training loss has risen for {RISING_EPOCHS} epochs in a row: the learning rate "
        "is probably too high. Lower optimizer.lr (try a tenth), or add a schedule or "
        "optimizer.clip_norm."
    )


def overfitting(record: Record, history: History) -> str | None:
    losses, val = _series(history, "loss"), _series(history, "val_loss")
    if losses is None or val is None or len(val) != len(losses):
        return None
    gaps = [v - t for v, t in zip(val, losses, strict=True)]
    if not _rising(gaps) or not _rising(val) or losses[-1] > losses[-RISING_EPOCHS - 1]:
        return None
    return (
        "overfitting: the validation loss has risen for "
        f"{RISING_EPOCHS} epochs while the training loss keeps falling, so the gap between "
        "them grows. Add L2 regularization (regularizer), dropout, fewer units, more data, "
        "or early stopping (training.early_stopping) to keep the best epoch."
    )


RULES: dict[str, Callable[[Record, History], str | None]] = {
    "vanishing_gradients": vanishing_gradients,
    "exploding_gradients": exploding_gradients,
    "dead_relus": dead_relus,
    "saturated_units": saturated_units,
    "loss_rising": loss_rising,
    "overfitting": overfitting,
}


def find_warnings(record: Record | None, history: History) -> list[dict[str, Any]]:
    """The warnings that hold now: code, message (with the fix) and epoch."""
    epoch = int(history[-1]["epoch"]) if history else int((record or {}).get("epoch", 0))
    found = []
    for code, rule in RULES.items():
        message = rule(record or {}, history)
        if message is not None:
            found.append({"code": code, "message": message, "epoch": epoch})
    return found


def merge_warnings(
    known: Sequence[dict[str, Any]], new: Sequence[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Known warnings keep the epoch first seen; a new code is added. Nothing is dropped:
    a warning once seen stays on the job (its epoch says when)."""
    merged = {w["code"]: dict(w) for w in known}
    for warning in new:
        merged.setdefault(warning["code"], dict(warning))
    return sorted(merged.values(), key=lambda w: (w["epoch"], w["code"]))
