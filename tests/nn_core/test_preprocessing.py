"""Numeric transforms: fitted on training data only, config and state round trips, dtype kept."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
import pytest

from nn_core.errors import DataError, SpecError
from nn_core.preprocessing import TRANSFORMS, Transform, build_transform

F32 = np.dtype(np.float32)
F64 = np.dtype(np.float64)


def _npz_round_trip(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _restore(transform: Transform) -> Transform:
    clone = build_transform(transform.config())
    clone.load_state(_npz_round_trip(transform.state()))
    return clone


@pytest.fixture
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    train = rng.normal(5.0, 3.0, size=(200, 4))
    train[:, 2] = 7.0  # a constant feature
    test = rng.normal(5.0, 3.0, size=(50, 4))
    return train, test


def test_standardize_uses_training_statistics_only(data: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = data
    t = build_transform({"type": "standardize"}).fit(train)
    out = t.transform(train, F64)
    np.testing.assert_allclose(out[:, [0, 1, 3]].mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out[:, [0, 1, 3]].std(axis=0), 1.0, atol=1e-12)
    np.testing.assert_array_equal(out[:, 2], 0.0)  # std 0 -> divided by 1, not by 0
    mean, std = train.mean(axis=0), train.std(axis=0)
    np.testing.assert_allclose(t.transform(test, F64)[:, 0], (test[:, 0] - mean[0]) / std[0])


def test_standardize_treats_rounding_noise_as_constant() -> None:
    x = np.full((3, 1), 0.1)  # np.std gives ~1e-17 here, not 0
    out = build_transform({"type": "standardize"}).fit(x).transform(x, F64)
    assert np.abs(out).max() < 1e-6


def test_minmax_maps_training_range_to_unit_interval(data: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = data
    t = build_transform({"type": "minmax"}).fit(train)
    out = t.transform(train, F64)
    np.testing.assert_allclose(out[:, [0, 1, 3]].min(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(out[:, [0, 1, 3]].max(axis=0), 1.0, atol=1e-12)
    np.testing.assert_array_equal(out[:, 2], 0.0)
    low, high = train[:, 0].min(), train[:, 0].max()
    np.testing.assert_allclose(t.transform(test, F64)[:, 0], (test[:, 0] - low) / (high - low))


def test_scale_is_stateless_and_exact() -> None:
    t = build_transform({"type": "scale", "factor": 1 / 255, "offset": -0.5})
    pixels = np.array([[0, 255, 51]], dtype=np.uint8)
    np.testing.assert_allclose(t.transform(pixels, F64), [[-0.5, 0.5, -0.3]])
    assert t.state() == {}
    assert t.config() == {"type": "scale", "factor": 1 / 255, "offset": -0.5}


@pytest.mark.parametrize("name", ["standardize", "minmax", "scale"])
def test_float32_stays_float32(name: str, data: tuple[np.ndarray, np.ndarray]) -> None:
    train, test = data
    t = build_transform({"type": name}).fit(train.astype(np.float32))
    out = t.transform(test.astype(np.float32), F32)
    assert out.dtype == np.float32
    # Computed in float32 yet close to the float64 result.
    ref = build_transform({"type": name}).fit(train).transform(test, F64)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "config",
    [{"type": "standardize"}, {"type": "minmax"}, {"type": "scale", "factor": 0.5, "offset": 2.0}],
)
def test_config_and_state_round_trip(
    config: dict[str, Any], data: tuple[np.ndarray, np.ndarray]
) -> None:
    train, test = data
    t = build_transform(config).fit(train)
    assert build_transform(t.config()).config() == t.config() == config
    for value in t.state().values():
        assert value.dtype.kind in "iufU"
    clone = _restore(t)
    assert clone.fitted
    np.testing.assert_array_equal(clone.transform(test, F32), t.transform(test, F32))


def test_width_mismatch_after_fit_is_a_data_error(data: tuple[np.ndarray, np.ndarray]) -> None:
    t = build_transform({"type": "standardize"}).fit(data[0])
    with pytest.raises(DataError, match="fitted on 4 features, got 3"):
        t.transform(np.zeros((2, 3)), F32)


def test_transform_before_fit_is_refused() -> None:
    with pytest.raises(RuntimeError, match="fit"):
        build_transform({"type": "minmax"}).transform(np.zeros((2, 2)), F32)


def test_fit_rejects_non_finite_and_empty_data() -> None:
    with pytest.raises(DataError, match="NaN"):
        build_transform({"type": "standardize"}).fit(np.array([[1.0], [np.nan]]))
    with pytest.raises(DataError, match="at least one row"):
        build_transform({"type": "minmax"}).fit(np.zeros((0, 3)))


@pytest.mark.parametrize(
    "config",
    [
        {"type": "scale", "factor": "x"},
        {"type": "scale", "factor": True},
        {"type": "scale", "factor": 0},
        {"type": "scale", "offset": float("inf")},
        {"type": "standardize", "with_mean": False},
    ],
)
def test_bad_parameters_are_spec_errors(config: dict[str, Any]) -> None:
    with pytest.raises(SpecError, match=r"^preprocess\[0\]: bad parameters"):
        build_transform(config, "preprocess[0]")


def test_unknown_transform_lists_the_registered_names() -> None:
    with pytest.raises(SpecError) as info:
        build_transform({"type": "whiten"})
    assert info.value.allowed == sorted(TRANSFORMS)
    assert {"standardize", "minmax", "scale", "text_features"} <= set(TRANSFORMS)


def test_corrupt_state_is_rejected(data: tuple[np.ndarray, np.ndarray]) -> None:
    t = build_transform({"type": "standardize"})
    with pytest.raises(SpecError, match=r"state\.std"):
        t.load_state({"mean": np.zeros(3)})
    with pytest.raises(SpecError, match="positive"):
        t.load_state({"mean": np.zeros(3), "std": np.zeros(3)})
    with pytest.raises(SpecError, match="differ in length"):
        t.load_state({"mean": np.zeros(3), "std": np.ones(2)})


def test_statistics_over_many_blocks_match_numpy() -> None:
    rng = np.random.default_rng(5)
    x = rng.normal(1e4, 2.0, size=(10_000, 3)).astype(np.float32)  # > one 4096-row block
    t = build_transform({"type": "standardize"}).fit(x)
    ref = x.astype(np.float64)
    np.testing.assert_allclose(t.state()["mean"], ref.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(t.state()["std"], ref.std(axis=0), rtol=1e-9)
    m = build_transform({"type": "minmax"}).fit(x)
    np.testing.assert_array_equal(m.state()["min"], ref.min(axis=0))
