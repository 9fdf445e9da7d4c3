"""The Playground toy sets: shapes, dtypes, determinism, and the geometry (or, for the
regression sets, the function) that defines each."""

from __future__ import annotations

import numpy as np
import pytest

from nn_core.datasets.synthetic import (
    GAUSSIAN_BUMPS,
    GAUSSIAN_WIDTH,
    SYNTHETIC,
    SYNTHETIC_REGRESSION,
    make_circle,
    make_gauss,
    make_multi_gaussian,
    make_plane,
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


@pytest.mark.parametrize("name", sorted({**SYNTHETIC, **SYNTHETIC_REGRESSION}))
def test_deterministic_per_seed_and_leaves_global_rng_alone(name: str) -> None:
    make = {**SYNTHETIC, **SYNTHETIC_REGRESSION}[name]
    before = np.random.get_state()[1].copy()  # noqa: NPY002 (checking it is untouched)
    a = make(100, 0.1, 7)
    b = make(100, 0.1, 7)
    c = make(100, 0.1, 8)
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


# ----------------------------------------------------------------------------- regression


@pytest.mark.parametrize("name", sorted(SYNTHETIC_REGRESSION))
def test_regression_shapes_dtypes_and_range(name: str) -> None:
    x, y = SYNTHETIC_REGRESSION[name](301, 0.5, 0)
    assert x.shape == (301, 2) and x.dtype == np.float32
    assert y.shape == (301, 1) and y.dtype == np.float32
    assert np.abs(x).max() <= 5.0  # the same square the classification sets use
    assert np.isfinite(y).all()
    assert -1.0 <= y.min() < -0.5 and 0.5 < y.max() <= 1.0  # the whole range is used
    assert len(np.unique(y)) > 250  # real values, not a handful of classes


def least_squares_residual(basis: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Coefficients of the best fit of y on the basis columns, and its largest residual."""
    coef, *_ = np.linalg.lstsq(basis, y[:, 0].astype(np.float64), rcond=None)
    return coef, float(np.abs(basis @ coef - y[:, 0]).max())


def test_plane_is_exactly_linear_without_noise() -> None:
    x, y = make_plane(500, 0.0, 1)
    coef, residual = least_squares_residual(np.column_stack([x, np.ones(len(x))]), y)
    assert residual < 1e-6
    np.testing.assert_allclose(coef, [0.1, 0.1, 0.0], atol=1e-6)


def test_plane_noise_leaves_it_roughly_linear() -> None:
    x, y = make_plane(2000, 0.2, 1)
    coef, residual = least_squares_residual(np.column_stack([x, np.ones(len(x))]), y)
    np.testing.assert_allclose(coef[:2], [0.1, 0.1], atol=0.01)
    assert 0.05 < residual <= 0.3  # each coordinate moved by up to 1 -> |dy| <= 0.2 (+clip)


def test_multi_gaussian_is_the_sum_of_its_bumps() -> None:
    x, y = make_multi_gaussian(4000, 0.0, 2)
    d2 = ((x[:, None, :].astype(np.float64) - GAUSSIAN_BUMPS[None, :, :2]) ** 2).sum(axis=2)
    basis = np.exp(-d2 / (2 * GAUSSIAN_WIDTH**2))
    coef, residual = least_squares_residual(basis, y)
    assert residual < 1e-5
    np.testing.assert_allclose(coef, GAUSSIAN_BUMPS[:, 2], atol=1e-4)
    # Near each centre the value is (almost) that bump's height: hills and valleys.
    for cx, cy, height in GAUSSIAN_BUMPS:
        near = np.hypot(x[:, 0] - cx, x[:, 1] - cy) < 0.3
        assert near.any()
        assert (np.sign(y[near, 0]) == height).all()
        assert np.abs(y[near, 0]).min() > 0.9


def test_multi_gaussian_noise_blurs_but_keeps_the_signs() -> None:
    _, clean = make_multi_gaussian(2000, 0.0, 3)
    _, noisy = make_multi_gaussian(2000, 0.1, 3)
    assert not np.array_equal(clean, noisy)
    assert np.corrcoef(clean[:, 0], noisy[:, 0])[0, 1] > 0.8
