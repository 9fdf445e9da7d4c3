"""Small validators for spec values. Each raises SpecError naming the field, so a bad spec is
reported as ``layers[0].units: must be an integer >= 1`` rather than a TypeError deep inside."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from nn_core.errors import SpecError


def check_number(
    value: Any,
    field: str,
    *,
    low: float = -math.inf,
    high: float = math.inf,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """A finite real number in [low, high] (ends open when asked), returned as a Python float."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpecError(field, f"must be a finite number, got {value!r}")
    if value < low or (low_open and value == low) or value > high or (high_open and value == high):
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        raise SpecError(field, f"must be in {left}{low}, {high}{right}, got {value!r}")
    return float(value)


def check_int(value: Any, field: str, *, low: int = 0, high: int | None = None) -> int:
    """An integer in [low, high]; floats such as 3.0 are not accepted."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(field, f"must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise SpecError(field, f"must be an integer {bound}, got {value!r}")
    return value


def check_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise SpecError(field, f"must be true or false, got {value!r}")
    return value


def check_choice(value: Any, field: str, allowed: Iterable[str]) -> str:
    options = list(allowed)
    if value not in options:
        raise SpecError(field, f"unknown value {value!r}", options)
    return str(value)


def check_keys(config: Mapping[str, Any], field: str, allowed: Iterable[str]) -> None:
    """Reject unknown keys: a typo such as 'learning_rat' must not be silently ignored."""
    options = set(allowed)
    for key in config:
        if key not in options:
            path = f"{field}.{key}" if field else key
            raise SpecError(path, "unknown field", options)


def check_object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SpecError(field, f"must be an object, got {type(value).__name__}")
    return value
