"""The Playground toy sets: shapes, dtypes, determinism, and the geometry that defines each."""

from __future__ import annotations

import numpy as np
import pytest

from nn_core.datasets.synthetic import (
    SYNTHETIC,
    make_circle,
    make_gauss,
    make_spiral,
    make_xor,
)
from nn_core.errors import SpecError


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_shapes_dtypes_and_balance(name: str) -> None:
    x, y = SYNTHETIC[name](301, 0.2, 0)
    assert x.shape == (301, 2)
    assert x.dtype == np.float32
    assert y.shape == (301,)
    assert y.dtype == np.int64
    assert set(np.unique(y).tolist()) == {0, 1}
    assert 0.3 < y.mean() < 0.7
    assert np.isfinite(x).all()
    assert np.abs(x).max() < 12


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_deterministic_per_seed_and_leaves_global_rng_alone(name: str) -> None:
    before = np.random.get_state()[1].copy()  # noqa: NPY002 (checking it is untouched)
    a = SYNTHETIC[name](100, 0.1, 7)
    b = SYNTHETIC[name](100, 0.1, 7)
    c = SYNTHETIC[name](100, 0.1, 8)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    np.testing.assert_array_equal(np.random.get_state()[1], before)  # noqa: NPY002


def test_xor_without_noise_labels_by_quadrant() -> None:
    x, y = make_xor(500, 0.0, 1)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] >= 0).astype(np.int64))
    assert np.abs(x).min() >= 0.3  # the gap around the axes


def test_circle_without_noise_separates_by_radius() -> None:
    x, y = make_circle(500, 0.0, 2)
    r = np.hypot(x[:, 0], x[:, 1])
    assert r[y == 1].max() <= 2.5
    assert r[y == 0].min() >= 3.5 - 1e-5
    assert r.max() <= 5.0 + 1e-5


def test_noise_flips_some_labels_but_not_most() -> None:
    x, y = make_circle(1000, 0.5, 3)
    clean = (np.hypot(x[:, 0], x[:, 1]) < 2.5).astype(np.int64)
    flipped = np.mean(clean != y)
    assert 0.02 < flipped < 0.4


def test_gauss_blobs_centre_and_spread() -> None:
    x, y = make_gauss(4000, 0.0, 4)
    np.testing.assert_allclose(x[y == 1].mean(axis=0), [2, 2], atol=0.1)
    np.testing.assert_allclose(x[y == 0].mean(axis=0), [-2, -2], atol=0.1)
    np.testing.assert_allclose(x[y == 1].var(axis=0), [0.5, 0.5], rtol=0.1)
    wide = make_gauss(4000, 0.5, 4)[0]
    assert wide.var() > x.var()


def test_spiral_arms_are_point_reflections_of_each_other() -> None:
    x, y = make_spiral(400, 0.0, 5)
    arm0 = x[y == 0]
    arm1 = x[y == 1]

    # Rotating one arm by pi maps it onto the other: compare as sorted point sets.
    def by_x(points: np.ndarray) -> np.ndarray:
        return points[np.argsort(points[:, 0])]

    np.testing.assert_allclose(by_x(-arm1), by_x(arm0), atol=1e-5)
    assert np.hypot(x[:, 0], x[:, 1]).max() < 5.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 2.5}, "n_samples"),
        ({"n_samples": True}, "n_samples"),
        ({"noise": -0.1}, "noise"),
        ({"noise": float("nan")}, "noise"),
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        make_xor(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field
