"""Optimizers against straightforward reference implementations of their update rules, and
schedules against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nn_core.optimizers import OPTIMIZERS, build_optimizer
from nn_core.schedules import build_schedule


def _reference(name: str, p: np.ndarray, grads: list[np.ndarray], lr: float) -> np.ndarray:
    """Textbook per-step updates written out plainly in float64."""
    p = p.astype(np.float64).copy()
    v = np.zeros_like(p)
    s = np.zeros_like(p)
    m = np.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        g = g.astype(np.float64)
        if name == "sgd":
            p = p - lr * g
        elif name == "momentum":
            v = 0.9 * v + g
            p = p - lr * v
        elif name == "nesterov":
            v = 0.9 * v + g
            p = p - lr * (g + 0.9 * v)
        elif name == "adagrad":
            s = s + g * g
            p = p - lr * g / (np.sqrt(s) + 1e-8)
        elif name == "rmsprop":
            s = 0.9 * s + 0.1 * g * g
            p = p - lr * g / (np.sqrt(s) + 1e-8)
        elif name in ("adam", "adamw"):
            if name == "adamw":
                p = p * (1 - lr * 0.01)
            m = 0.9 * m + 0.1 * g
            s = 0.999 * s + 0.001 * g * g
            m_hat = m / (1 - 0.9**t)
            s_hat = s / (1 - 0.999**t)
            p = p - lr * m_hat / (np.sqrt(s_hat) + 1e-8)
    return p


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_matches_reference(name: str) -> None:
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=50)
    grads = [rng.normal(size=50) for _ in range(20)]
    opt = build_optimizer({"name": name, "lr": 0.01})
    p = p0.copy()
    opt.bind(p)
    for g in grads:
        opt.step(p, g.copy(), 0.01)
    np.testing.assert_allclose(p, _reference(name, p0, grads, 0.01), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_state_never_goes_subnormal_and_updates_still_match(name: str) -> None:
    """Weights whose gradient turns zero (dead units, black pixels) must not leave subnormal
    numbers in the state, which slow every later pass ~10x; the updates stay the textbook ones."""
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=50).astype(np.float32)
    live = rng.normal(size=(250, 50)).astype(np.float32)
    live[:, :25] = 0.0
    live[0, :25] = 1e-30  # half the weights see one tiny gradient, then zeros for good
    opt = build_optimizer({"name": name, "lr": 0.01})
    p = p0.copy()
    opt.bind(p)
    for g in live:
        opt.step(p, g.copy(), 0.01)
    tiny = np.finfo(np.float32).tiny
    for state in opt.state.values():
        assert np.all((state == 0) | (np.abs(state) >= tiny)), name
    np.testing.assert_allclose(p, _reference(name, p0, list(live), 0.01), rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_minimises_a_quadratic_in_float32(name: str) -> None:
    target = np.linspace(-1, 1, 10).astype(np.float32)
    p = np.zeros(10, dtype=np.float32)
    lr = {"sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adagrad": 0.5}.get(name, 0.05)
    opt = build_optimizer({"name": name, "lr": lr})
    opt.bind(p)
    for _ in range(500):
        opt.step(p, (p - target).astype(np.float32), lr)
    assert p.dtype == np.float32
    assert all(s.dtype == np.float32 for s in opt.state.values())
    assert np.abs(p - target).max() < 0.05


def test_clip_by_global_norm() -> None:
    opt = build_optimizer({"name": "sgd", "lr": 1.0, "clip_norm": 1.0})
    p = np.zeros(2)
    opt.bind(p)
    opt.step(p, np.array([3.0, 4.0]), 1.0)
    np.testing.assert_allclose(p, [-0.6, -0.8])
    opt.step(p, np.array([0.3, 0.4]), 1.0)  # below the norm: untouched
    np.testing.assert_allclose(p, [-0.9, -1.2])


def test_schedules() -> None:
    lr = 0.1
    step = build_schedule({"name": "step", "step_size": 2, "gamma": 0.5})
    assert [step.lr(lr, e) for e in range(5)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    exp = build_schedule({"name": "exponential", "gamma": 0.9})
    assert exp.lr(lr, 3) == pytest.approx(0.1 * 0.9**3)
    cos = build_schedule({"name": "cosine", "t_max": 10, "min_lr": 0.01})
    assert cos.lr(lr, 0) == pytest.approx(0.1)
    assert cos.lr(lr, 5) == pytest.approx(0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi / 2)))
    assert cos.lr(lr, 10) == pytest.approx(0.01)
    assert cos.lr(lr, 50) == pytest.approx(0.01)
    plateau = build_schedule(
        {
            "name": "reduce_on_plateau",
            "monitor": "val_loss",
            "patience": 1,
            "factor": 0.5,
            "min_lr": 0.02,
        }
    )
    rates = []
    for value in [1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95]:
        plateau.update({"val_loss": value})
        rates.append(plateau.lr(lr, 0))
    assert rates == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02])
    saved = plateau.state()
    again = build_schedule(plateau.config())
    again.load_state(saved)
    assert again.lr(lr, 0) == plateau.lr(lr, 0)
