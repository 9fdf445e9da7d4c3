"""Activations: values, stability at extremes, dtype preservation."""

from __future__ import annotations

import numpy as np
import pytest

from nn_core.activations import ACTIVATIONS, build_activation, log_softmax, sigmoid, softmax
from nn_core.errors import SpecError

EXTREME = np.array([[-1000.0, -50.0, -1.0, 0.0, 1.0, 50.0, 1000.0]])


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_finite_and_dtype_preserved_at_extremes(name: str, dtype: type) -> None:
    act = build_activation(name)
    z = EXTREME.astype(dtype)
    a = act.forward(z.copy())
    assert a.dtype == dtype
    assert np.isfinite(a).all()
    grad = act.backward(np.ones_like(a), z if act.uses_input else None, a)
    assert grad.dtype == dtype
    assert np.isfinite(grad).all()


def test_reference_values() -> None:
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    expected = {
        "identity": z,
        "step": (z > 0).astype(float),
        "sigmoid": 1 / (1 + np.exp(-z)),
        "tanh": np.tanh(z),
        "relu": np.maximum(z, 0),
        "leaky_relu": np.where(z > 0, z, 0.01 * z),
        "elu": np.where(z > 0, z, np.exp(z) - 1),
        "selu": 1.0507009873554805 * np.where(z > 0, z, 1.6732632423543772 * (np.exp(z) - 1)),
        "softplus": np.log1p(np.exp(z)),
        "softmax": np.exp(z) / np.exp(z).sum(),
    }
    for name, want in expected.items():
        got = build_activation(name).forward(z.copy())
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15, err_msg=name)
    # GELU (tanh approximation) against the exact erf form: close but not identical.
    from math import erf, sqrt

    exact = np.array([[0.5 * v * (1 + erf(v / sqrt(2))) for v in z[0]]])
    np.testing.assert_allclose(build_activation("gelu").forward(z.copy()), exact, atol=1e-3)


def test_leaky_relu_alpha_configurable() -> None:
    act = build_activation({"name": "leaky_relu", "alpha": 0.1})
    np.testing.assert_allclose(act.forward(np.array([[-10.0, 3.0]])), [[-1.0, 3.0]])
    assert act.config() == {"name": "leaky_relu", "alpha": 0.1}
    assert build_activation("leaky_relu").config() == {"name": "leaky_relu", "alpha": 0.01}


def test_sigmoid_has_no_overflow_warning() -> None:
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        out = sigmoid(np.array([-1e4, 1e4], dtype=np.float32))
    np.testing.assert_array_equal(out, [0.0, 1.0])


def test_softmax_shifted_by_row_max() -> None:
    z = np.array([[1000.0, 1000.0], [-1000.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        p = softmax(z.copy())
        logp = log_softmax(z)
    np.testing.assert_allclose(p, [[0.5, 0.5], [0.0, 1.0]])
    np.testing.assert_allclose(logp[0], np.log([0.5, 0.5]))
    assert logp[1, 0] == pytest.approx(-1000.0)


@pytest.mark.parametrize("shape", [(1, 10), (256, 10), (7, 32), (7, 33), (64, 300)])
def test_softmax_narrow_and_wide_rows_agree_with_the_definition(shape: tuple[int, int]) -> None:
    """Narrow batches take the column-wise path, wide ones the row-wise: both are softmax,
    C-contiguous, in place when asked."""
    z = np.random.default_rng(0).normal(scale=5.0, size=shape).astype(np.float32)
    wide = z.astype(np.float64)
    want = np.exp(wide - wide.max(axis=1, keepdims=True))
    want /= want.sum(axis=1, keepdims=True)
    got = softmax(z)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-7)
    in_place = z.copy()
    assert softmax(in_place, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, got)


def test_relu_keeps_nan_and_its_dtype() -> None:
    z = np.array([[-1.0, np.nan, 2.0, -0.0]], dtype=np.float32)
    out = build_activation("relu").forward(z)
    assert out is z and out.dtype == np.float32
    np.testing.assert_array_equal(out, [[0.0, np.nan, 2.0, 0.0]])


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ("rleu", "activation"),
        ({"name": "leaky_relu", "alpha": 2.0}, "activation.alpha"),
        ({"name": "leaky_relu", "beta": 1}, "activation.beta"),
        ({"name": "relu", "alpha": 1}, "activation.alpha"),
        (3, "activation"),
    ],
)
def test_bad_config_names_the_field(config: object, field: str) -> None:
    with pytest.raises(SpecError) as err:
        build_activation(config)
    assert err.value.field == field


def test_unknown_name_lists_allowed() -> None:
    with pytest.raises(SpecError) as err:
        build_activation("rleu")
    assert err.value.allowed is not None and "relu" in err.value.allowed
    assert "relu" in str(err.value)
