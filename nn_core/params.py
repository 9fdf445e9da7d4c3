"""Small validators for spec values, and the one way a spec entry becomes an object.

Each validator raises SpecError naming the field, so a bad spec is reported as
``layers[0].units: must be an integer >= 1`` rather than a TypeError deep inside.

Layers, activations, optimizers, schedules, initializers and regularizers are built two ways.
Their keyword constructors are what a Python user writes (``Dense(units=64, activation="relu")``)
and validate every value, a SpecError naming the parameter (``units``). ``from_config`` builds one
from its spec entry: it rejects unknown keys, then calls the constructor inside `within(field)`,
which puts the constructor's errors under the entry's path (``layers[0].units``). Nested entries
(a layer's activation) repeat this one level down, so no constructor knows where it sits in a
spec and no path is assembled anywhere else.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Self

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


@contextmanager
def within(field: str) -> Iterator[None]:
    """Report SpecErrors raised inside under `field` (see the module docstring)."""
    try:
        yield
    except SpecError as exc:
        raise exc.within(field) from None


_PARAMETERS: dict[type, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def _keyword_parameters(cls: type) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The constructor's keyword parameters, and those of them without a default."""
    if cls not in _PARAMETERS:
        kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        params = [p for p in inspect.signature(cls).parameters.values() if p.kind in kinds]
        _PARAMETERS[cls] = (
            tuple(p.name for p in params),
            tuple(p.name for p in params if p.default is inspect.Parameter.empty),
        )
    return _PARAMETERS[cls]


class Configurable:
    """A class whose spec entry holds its constructor's keyword arguments (the defaults live in
    the signature only), plus `kind_key` naming the registered class when there is a registry.
    `config()` is the inverse of `from_config`."""

    #: the key that names the class in a spec entry ("type" for layers), None without a registry
    kind_key: ClassVar[str | None] = None

    @classmethod
    def config_keys(cls) -> tuple[str, ...]:
        """The parameters a spec entry may set."""
        return _keyword_parameters(cls)[0]

    @classmethod
    def check_config_keys(cls, config: Mapping[str, Any], field: str) -> None:
        kind = () if cls.kind_key is None else (cls.kind_key,)
        check_keys(config, field, (*kind, *cls.config_keys()))

    @classmethod
    def from_config(cls, config: Any, field: str) -> Self:
        """Build from a spec entry; errors name the path under `field`."""
        check_object(config, field)
        cls.check_config_keys(config, field)
        kwargs = {key: value for key, value in config.items() if key != cls.kind_key}
        # A required value the entry leaves out reaches the constructor as None, whose
        # validation then says what it needs (e.g. "units: must be an integer, got None").
        for key in _keyword_parameters(cls)[1]:
            kwargs.setdefault(key, None)
        build: Callable[..., Self] = cls
        with within(field):
            return build(**kwargs)

    def config(self) -> Any:
        raise NotImplementedError
