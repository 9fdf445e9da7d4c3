"""Initializers: the documented scales, measured on large draws, and dtype kept."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nn_core.errors import SpecError
from nn_core.initializers import INITIALIZERS, build_initializer

FAN_IN, FAN_OUT = 400, 100

EXPECTED_STD = {
    "lecun_uniform": math.sqrt(1 / FAN_IN),
    "lecun_normal": math.sqrt(1 / FAN_IN),
    "glorot_uniform": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "glorot_normal": math.sqrt(2 / (FAN_IN + FAN_OUT)),
    "he_uniform": math.sqrt(2 / FAN_IN),
    "he_normal": math.sqrt(2 / FAN_IN),
}

EXPECTED_LIMIT = {
    "lecun_uniform": math.sqrt(3 / FAN_IN),
    "glorot_uniform": math.sqrt(6 / (FAN_IN + FAN_OUT)),
    "he_uniform": math.sqrt(6 / FAN_IN),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_STD))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale(name: str, dtype: type) -> None:
    out = np.empty((FAN_IN, FAN_OUT), dtype=dtype)
    build_initializer(name, "init").fill(out, (FAN_IN, FAN_OUT), np.random.default_rng(0))
    assert out.dtype == dtype
    assert out.std() == pytest.approx(EXPECTED_STD[name], rel=0.02)
    assert abs(out.mean()) < 0.01 * EXPECTED_STD[name] * 10
    if name in EXPECTED_LIMIT:
        limit = EXPECTED_LIMIT[name]
        assert out.min() >= -limit and out.max() <= limit
        assert out.max() > 0.99 * limit


def test_zeros_and_normal() -> None:
    out = np.ones((50, 50), dtype=np.float32)
    build_initializer("zeros", "init").fill(out, (50, 50), np.random.default_rng(0))
    assert not out.any()
    init = build_initializer({"name": "normal", "std": 0.05}, "init")
    big = np.empty((500, 500), dtype=np.float32)
    init.fill(big, (500, 500), np.random.default_rng(0))
    assert big.std() == pytest.approx(0.05, rel=0.01)
    assert init.config() == {"name": "normal", "std": 0.05}


def test_every_name_builds() -> None:
    for name in INITIALIZERS:
        assert build_initializer(name, "f").config() in (name, {"name": "normal", "std": 0.01})


def test_bad_names() -> None:
    with pytest.raises(SpecError) as err:
        build_initializer("xavier", "layers[0].initializer")
    assert err.value.field == "layers[0].initializer"
    with pytest.raises(SpecError) as err:
        build_initializer({"name": "normal", "std": -1}, "f")
    assert err.value.field == "f.std"
