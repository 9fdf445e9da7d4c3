"""Weight initializers.

Scales (fan_in = inputs, fan_out = outputs of the layer):

=========  ================================  ==============================
family     uniform range r (U[-r, r])        normal std
=========  ================================  ==============================
lecun      sqrt(3 / fan_in)                  sqrt(1 / fan_in)
glorot     sqrt(6 / (fan_in + fan_out))      sqrt(2 / (fan_in + fan_out))
he         sqrt(6 / fan_in)                  sqrt(2 / fan_in)
=========  ================================  ==============================

The uniform and normal forms of a family have the same variance (r^2 / 3 = std^2). Normals are
not truncated, so no std correction is needed. Values are drawn directly in the layer's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from nn_core.errors import SpecError
from nn_core.params import check_keys, check_number, within

Fans = tuple[int, int]


def _variance_scale(scale: float, mode: str) -> Callable[[Fans], float]:
    def var(fans: Fans) -> float:
        fan_in, fan_out = fans
        denom = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
        return scale / denom

    return var


# variance = scale / fan: lecun 1/fan_in, glorot 2/(fan_in+fan_out) = 1/fan_avg, he 2/fan_in.
_FAMILIES = {
    "lecun": _variance_scale(1.0, "fan_in"),
    "glorot": _variance_scale(1.0, "fan_avg"),
    "he": _variance_scale(2.0, "fan_in"),
}

INITIALIZERS = sorted(
    [f"{family}_{dist}" for family in _FAMILIES for dist in ("uniform", "normal")]
    + ["zeros", "normal"]
)


class Initializer:
    """Fills an array in place: ``Initializer("he_normal")``, ``Initializer("normal", std=0.05)``,
    or from a spec entry (``"he_normal"``, ``{"name": "normal", "std": 0.05}``) with
    `from_config`. `config()` gives back the spec entry."""

    def __init__(self, name: str, std: float | None = None) -> None:
        if name not in INITIALIZERS:
            raise SpecError("name", f"unknown initializer {name!r}", INITIALIZERS)
        if name == "normal":
            std = check_number(0.01 if std is None else std, "std", low=0.0, low_open=True)
        elif std is not None:
            raise SpecError("std", "unknown field", [])
        self.name = name
        self.std = std

    @classmethod
    def from_config(cls, config: Any, field: str) -> Initializer:
        """From ``"he_normal"``, ``"zeros"`` or ``{"name": "normal", "std": 0.01}``."""
        if isinstance(config, str):
            if config not in INITIALIZERS:
                raise SpecError(field, f"unknown initializer {config!r}", INITIALIZERS)
            return cls(config)
        if not isinstance(config, dict):
            raise SpecError(field, "must be a name or an object with a 'name'", INITIALIZERS)
        name = config.get("name")
        if name not in INITIALIZERS:
            raise SpecError(f"{field}.name", f"unknown initializer {name!r}", INITIALIZERS)
        params = {key: value for key, value in config.items() if key != "name"}
        check_keys(params, field, ["std"] if name == "normal" else [])
        with within(field):
            return cls(name, **params)

    def fill(self, out: np.ndarray, fans: Fans, rng: np.random.Generator) -> None:
        if self.name == "zeros":
            out.fill(0)
            return
        if self.name == "normal":
            assert self.std is not None
            _normal(out, self.std, rng)
            return
        family, dist = self.name.rsplit("_", 1)
        variance = _FAMILIES[family](fans)
        if dist == "uniform":
            _uniform(out, math.sqrt(3.0 * variance), rng)
        else:
            _normal(out, math.sqrt(variance), rng)

    def config(self) -> str | dict[str, Any]:
        if self.name == "normal":
            return {"name": "normal", "std": self.std}
        return self.name


def _uniform(out: np.ndarray, limit: float, rng: np.random.Generator) -> None:
    out[...] = rng.random(out.shape, dtype=out.dtype)
    out *= 2.0 * limit
    out -= limit


def _normal(out: np.ndarray, std: float, rng: np.random.Generator) -> None:
    out[...] = rng.standard_normal(out.shape, dtype=out.dtype)
    out *= std


#: what a layer's initializer parameters accept: a name, a spec entry, or an Initializer
InitializerLike = str | dict[str, Any] | Initializer


def build_initializer(config: Any, field: str) -> Initializer:
    """An Initializer from a spec entry (one is returned as it is)."""
    if isinstance(config, Initializer):
        return config
    return Initializer.from_config(config, field)
