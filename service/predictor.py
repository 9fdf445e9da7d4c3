"""Request data -> model input -> interpreted outputs, shared by every prediction route.

Both protocols (TF-Serving style :predict and Open Inference V2) and the task routes need the
same things: turn JSON numbers or strings into the model's input while naming the offending
instance in errors (JSON from Python's parser may even carry NaN and Infinity), run the
model, and read the output through the model's head (nn_core.heads) as class
probabilities, labels, scores or regression values, with the decision threshold in force.
Nothing here is allowed to raise anything but a ServiceError for bad input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
from starlette.concurrency import run_in_threadpool

from nn_core.errors import DataError
from nn_core.heads import DEFAULT_THRESHOLD, Decoded
from nn_core.model import Model as NNModel
from service.errors import invalid

#: A prediction of at most this many rows, and rows x parameters multiply-adds, runs on the
#: event loop: tens of microseconds, less than the trip through the thread pool it saves.
INLINE_MAX_ROWS = 32
INLINE_MAX_WORK = 250_000

T = TypeVar("T")


# ----------------------------------------------------------------------------- inputs


def numeric_input(model: NNModel, data: Any, field: str) -> np.ndarray:
    """A batch of instances (rows of numbers; images are flattened) as the model's matrix."""
    if type(data) is list:
        _check_numbers(data, field)
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (ValueError, TypeError):
        raise invalid(
            field, "every instance must be a list of numbers, all of the same length"
        ) from None
    width = model.input_dim
    if arr.ndim == 0 or len(arr) == 0:
        raise invalid(field, "needs at least one instance")
    if arr.ndim == 1:
        if width != 1:
            raise invalid(f"{field}[0]", f"each instance must be a list of {width} numbers")
        arr = arr.reshape(-1, 1)
    elif arr.ndim > 2:
        arr = arr.reshape(len(arr), -1)
    if width is not None and arr.shape[1] != width:
        raise invalid(field, f"each instance needs {width} values, got {arr.shape[1]}")
    _check_finite(arr, field, "contains NaN, Infinity or null")
    if arr.dtype == model.dtype:
        return arr
    with np.errstate(over="ignore"):  # overflow becomes inf, reported just below
        cast = arr.astype(model.dtype)
    _check_finite(cast, field, f"has a value too large for {model.dtype}")
    return cast


#: What JSON numbers parse to. `bool` is not here: NumPy would read true as 1.0, and "1" as
#: 1.0 too, so both are refused before the conversion instead of silently predicted on.
_NUMBER_TYPES = frozenset({int, float})


def _check_numbers(data: list[Any], field: str) -> None:
    """Refuse an instance holding anything but numbers (or lists of them), naming it.

    One `set(map(type, row))` per row keeps this a C-speed pass over the cells."""
    for i, item in enumerate(data):
        if not _all_numbers(item):
            raise invalid(
                f"{field}[{i}]",
                "must be a number or a list of numbers (no strings, booleans or objects)",
            )


def _all_numbers(value: Any) -> bool:
    kind = type(value)
    if kind in _NUMBER_TYPES:
        return True
    if kind is not list:
        return False
    types = set(map(type, value))
    if types <= _NUMBER_TYPES:
        return True
    return types <= {*_NUMBER_TYPES, list} and all(_all_numbers(v) for v in value)


def _check_finite(arr: np.ndarray, field: str, message: str) -> None:
    finite = np.isfinite(arr)
    if finite.all():  # the common case: one reduction, no row search
        return
    bad = ~finite.all(axis=1)
    raise invalid(f"{field}[{int(np.argmax(bad))}]", message)


def text_input(data: Any, field: str) -> list[str]:
    """A batch of raw strings for a text model."""
    if not isinstance(data, list) or not data:
        raise invalid(field, "needs a non-empty list of strings")
    for i, item in enumerate(data):
        if not isinstance(item, str):
            raise invalid(f"{field}[{i}]", f"expected a string, got {type(item).__name__}")
    return data


def model_input(model: NNModel, data: Any, field: str) -> np.ndarray | list[str]:
    return text_input(data, field) if model.raw_input else numeric_input(model, data, field)


# ----------------------------------------------------------------------------- running


async def compute(model: NNModel, rows: int, work: Callable[[], T]) -> T:
    """Run `work` (decode, predict, encode `rows` instances) where it is cheapest: on the
    event loop when it is small, in a worker thread otherwise (it must not stall the loop).
    Text models featurize raw strings of any length, so they always take a thread."""
    small = rows <= INLINE_MAX_ROWS and rows * model.n_params <= INLINE_MAX_WORK
    if small and not model.raw_input:
        return work()
    return await run_in_threadpool(work)


def threshold_for(
    model: NNModel, requested: float | None, stored: float | None, field: str
) -> float | None:
    """The decision threshold in force: the request's, else the version's own, else None
    (the head's default). Only binary classifiers have one; a request naming one for any
    other model answers 422 naming `field`."""
    if requested is not None and not model.head.binary:
        raise invalid(
            field,
            "only binary classifiers (one sigmoid output, or softmax over two classes) have a "
            "decision threshold",
        )
    return requested if requested is not None else stored


def shown_threshold(model: NNModel, threshold: float | None) -> float | None:
    """The threshold a binary classifier's labels were decided by (None for other models)."""
    if not model.head.binary:
        return None
    return DEFAULT_THRESHOLD if threshold is None else threshold


def run(
    model: NNModel, x: np.ndarray | list[str], field: str, threshold: float | None = None
) -> Decoded:
    """Predict and decode with `threshold` (see threshold_for); a DataError from the model
    names `field`."""
    try:
        out = np.asarray(model.predict(x, field))
    except DataError as exc:
        where = field if exc.field in ("X", field) else f"{field}.{exc.field}"
        raise invalid(where, exc.message.split(": ", 1)[-1]) from None
    if out.ndim == 2 and len(out):
        _check_finite(out, field, "the model's output is not finite for this instance")
    return model.decode(out, threshold)
