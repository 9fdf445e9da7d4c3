"""A sweep's search space: spec paths, their Optuna distributions, and applying values.

A path names a value in the spec with dots and list selectors: `optimizer.lr`,
`layers[0].units`, `layers[*].activation` (every layer) or a Python slice such as
`layers[:-1].units` (every layer but the output). One parameter sets every value its path
selects, so `layers[:-1].units` gives all hidden layers the same width.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from nn_core.errors import SpecError
from nn_core.spec import normalize_spec
from service.errors import invalid

#: Bounds on a search space: far above any sensible sweep, far below harm.
MAX_PARAMS = 32
MAX_CHOICES = 64
MAX_GRID_POINTS = 10_000

_SEGMENT = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)((?:\[[^\]]*\])*)$")
_SELECTOR = re.compile(r"\[([^\]]*)\]")
_SLICE = re.compile(r"^(-?\d+)?:(-?\d+)?$")


@dataclass(frozen=True)
class Step:
    key: str
    selectors: tuple[int | slice, ...]


def parse_path(path: str, field: str) -> list[Step]:
    """`layers[0].units` -> steps; Unprocessable naming `field` when malformed."""
    if not path or len(path) > 200:
        raise invalid(field, "must be a spec path such as optimizer.lr or layers[0].units")
    steps = []
    for segment in path.split("."):
        match = _SEGMENT.match(segment)
        if match is None:
            raise invalid(field, f"{segment!r} is not a key with optional [index], [*] or [a:b]")
        selectors: list[int | slice] = []
        for raw in _SELECTOR.findall(match.group(2)):
            raw = raw.strip()
            if raw == "*":
                selectors.append(slice(None))
            elif re.fullmatch(r"-?\d+", raw):
                selectors.append(int(raw))
            elif (sl := _SLICE.match(raw)) is not None:
                start, stop = sl.groups()
                selectors.append(slice(int(start) if start else None, int(stop) if stop else None))
            else:
                raise invalid(field, f"[{raw}] must be an index, * or a slice such as :-1")
        steps.append(Step(match.group(1), tuple(selectors)))
    return steps


def _select(values: list[Any], selector: int | slice, field: str, where: str) -> list[Any]:
    if isinstance(selector, int):
        if not -len(values) <= selector < len(values):
            raise invalid(field, f"{where} has {len(values)} items; [{selector}] is out of range")
        return [values[selector]]
    chosen = values[selector]
    if not chosen:
        raise invalid(field, f"selects none of the {len(values)} items of {where}")
    return list(chosen)


def set_path(spec: dict[str, Any], path: str, value: Any, field: str) -> None:
    """Set every value `path` selects in `spec` (in place); the last key may be new."""
    steps = parse_path(path, field)
    containers: list[Any] = [spec]
    where = "spec"
    for i, step in enumerate(steps):
        last = i == len(steps) - 1
        if last and not step.selectors:
            for container in containers:
                container[step.key] = copy.deepcopy(value)
            return
        following: list[Any] = []
        for container in containers:
            if step.key not in container:
                raise invalid(field, f"{where} has no {step.key!r}")
            items = [container[step.key]]
            for selector in step.selectors:
                lists = items
                items = []
                for candidate in lists:
                    if not isinstance(candidate, list):
                        raise invalid(field, f"{where}.{step.key} is not a list")
                    items += _select(candidate, selector, field, f"{where}.{step.key}")
            following += items
        where = f"{where}.{step.key}"
        if last:  # the path ends in a selector: replace the selected list items
            raise invalid(field, "must end in a key, e.g. layers[0].units")
        for item in following:
            if not isinstance(item, dict):
                raise invalid(field, f"{where} holds a {type(item).__name__}, not an object")
        containers = following


def distribution(definition: dict[str, Any], field: str, sampler: str) -> BaseDistribution:
    """The Optuna distribution of one search-space entry, validated with errors naming it."""
    kind = definition.get("type")
    allowed = {
        "float": {"type", "low", "high", "log", "step"},
        "int": {"type", "low", "high", "log", "step"},
        "categorical": {"type", "choices"},
    }
    if kind not in allowed:
        raise invalid(f"{field}.type", "must be 'float', 'int' or 'categorical'")
    unknown = sorted(set(definition) - allowed[kind])
    if unknown:
        raise invalid(f"{field}.{unknown[0]}", f"is not an option of a {kind} parameter")
    if kind == "categorical":
        return _categorical(definition.get("choices"), f"{field}.choices")
    log = definition.get("log", False)
    if not isinstance(log, bool):
        raise invalid(f"{field}.log", "must be true or false")
    number = int if kind == "int" else (int, float)
    bounds = {}
    for key in ("low", "high"):
        value = definition.get(key)
        if isinstance(value, bool) or not isinstance(value, number):
            raise invalid(
                f"{field}.{key}", f"must be {'an integer' if kind == 'int' else 'a number'}"
            )
        bounds[key] = value
    low, high = bounds["low"], bounds["high"]
    if low > high:
        raise invalid(f"{field}.high", f"is below low ({low})")
    if log and low <= 0:
        raise invalid(f"{field}.low", "must be above 0 on a log scale")
    step = definition.get("step")
    if step is not None and (isinstance(step, bool) or not isinstance(step, number) or step <= 0):
        raise invalid(f"{field}.step", "must be a positive number")
    if step is not None and log:
        raise invalid(f"{field}.step", "cannot be combined with log")
    if sampler == "grid" and kind == "float" and step is None:
        raise invalid(f"{field}.step", "is required for a float parameter with the grid sampler")
    try:
        if kind == "int":
            return IntDistribution(int(low), int(high), log=log, step=int(step or 1))
        return FloatDistribution(float(low), float(high), log=log, step=step)
    except ValueError as exc:
        raise invalid(field, str(exc)) from None


def _categorical(choices: Any, field: str) -> CategoricalDistribution:
    if not isinstance(choices, list) or not choices:
        raise invalid(field, "must be a non-empty list")
    if len(choices) > MAX_CHOICES:
        raise invalid(field, f"has {len(choices)} choices; at most {MAX_CHOICES}")
    for i, choice in enumerate(choices):
        if choice is not None and not isinstance(choice, str | int | float | bool):
            raise invalid(f"{field}[{i}]", "must be a string, number, boolean or null")
    if len({repr(c) for c in choices}) != len(choices):
        raise invalid(field, "has a repeated choice")
    return CategoricalDistribution(choices)


def distributions(space: Any, sampler: str) -> dict[str, BaseDistribution]:
    """Every parameter's distribution; the space must be {path: definition}."""
    if not isinstance(space, dict) or not space:
        raise invalid("search_space", "must be an object of spec paths to parameter definitions")
    if len(space) > MAX_PARAMS:
        raise invalid("search_space", f"has {len(space)} parameters; at most {MAX_PARAMS}")
    result = {}
    for path, definition in space.items():
        field = f"search_space.{path}"
        parse_path(path, field)
        if not isinstance(definition, dict):
            raise invalid(field, "must be an object with a type")
        result[path] = distribution(definition, field, sampler)
    return result


def grid_values(dist: BaseDistribution) -> list[Any]:
    """The points of one parameter on the grid sampler's grid."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    if isinstance(dist, IntDistribution):
        return list(range(dist.low, dist.high + 1, dist.step))
    assert isinstance(dist, FloatDistribution) and dist.step is not None
    count = round((dist.high - dist.low) / dist.step) + 1
    return [dist.low + i * dist.step for i in range(count)]


def grid(dists: dict[str, BaseDistribution]) -> dict[str, list[Any]]:
    values = {path: grid_values(dist) for path, dist in dists.items()}
    points = 1
    for options in values.values():
        points *= max(1, len(options))
        if points > MAX_GRID_POINTS:
            raise invalid("search_space", f"the grid has over {MAX_GRID_POINTS} points")
    return values


def extremes(dist: BaseDistribution) -> list[Any]:
    """The values checked at submit time: both bounds, or every choice."""
    if isinstance(dist, CategoricalDistribution):
        return list(dist.choices)
    assert isinstance(dist, FloatDistribution | IntDistribution)
    return [dist.low, dist.high]


def apply_params(spec: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """A copy of `spec` with each parameter's value set at its path."""
    result = copy.deepcopy(spec)
    for path, value in params.items():
        set_path(result, path, value, f"search_space.{path}")
    return result


def check_against_spec(
    spec: dict[str, Any], dists: dict[str, BaseDistribution], max_params: int, max_epochs: int
) -> None:
    """Every path applies to `spec`, and the spec stays valid at each bound and choice, so a
    bad path or value is a 422 now rather than a failed trial later."""
    for path, dist in dists.items():
        field = f"search_space.{path}"
        for value in extremes(dist):
            trial_spec = copy.deepcopy(spec)
            set_path(trial_spec, path, value, field)
            try:
                normalized = normalize_spec(trial_spec, max_params=max_params)
            except SpecError as exc:
                detail = exc.message.removeprefix(f"{exc.field}: ")
                raise invalid(
                    field, f"{value!r} makes spec.{exc.field} invalid: {detail}"
                ) from None
            epochs = int(normalized["training"]["epochs"])
            if epochs > max_epochs:
                raise invalid(field, f"{value!r} gives {epochs} epochs; at most {max_epochs}")


def check_params(params: Any, dists: dict[str, BaseDistribution], field: str) -> dict[str, Any]:
    """An initial trial's parameters: known paths, values inside their distributions."""
    if not isinstance(params, dict):
        raise invalid(field, "must be an object of spec paths to values")
    unknown = sorted(set(params) - set(dists))
    if unknown:
        raise invalid(f"{field}.{unknown[0]}", "is not a parameter of the search space")
    missing = sorted(set(dists) - set(params))
    if missing:
        raise invalid(f"{field}.{missing[0]}", "is missing; give every parameter a value")
    for path, value in params.items():
        dist = dists[path]
        ok = False
        try:
            ok = dist._contains(dist.to_internal_repr(value))
        except (ValueError, TypeError):
            ok = False
        if not ok:
            raise invalid(f"{field}.{path}", f"{value!r} is outside the parameter's range")
    return dict(params)
