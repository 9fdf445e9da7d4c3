"""The learning-rate range test on a problem whose good range is known: a small MLP with
plain SGD on three well separated blobs learns at rates around 0.01-1 and blows up far
above 1, so the curve must fall, then diverge, and the suggestion must lie in between."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nn_core.errors import SpecError
from nn_core.lr_finder import DIVERGED, FINISHED, LRRangeResult, lr_range_test, suggest_lr
from nn_core.spec import build_model


def _blobs(n: int = 600) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    centres = np.array([[2.0, 2.0], [-2.0, -2.0], [2.0, -2.0]])
    y = rng.integers(0, 3, n)
    return centres[y] + rng.normal(0.0, 0.7, (n, 2)), y


def _spec(seed: int = 3) -> dict[str, Any]:
    return {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": 16, "activation": "tanh"},
            {"type": "dense", "units": 3, "activation": "softmax"},
        ],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "sgd", "lr": 0.1},
        "training": {"batch_size": 32, "seed": seed},
    }


def _run(**kwargs: Any) -> LRRangeResult:
    x, y = _blobs()
    options = {"min_lr": 1e-4, "max_lr": 1e3, "num_steps": 120, **kwargs}
    return lr_range_test(build_model(_spec()), x, y, **options)


def test_the_loss_falls_then_diverges_and_the_suggestion_lies_in_the_falling_part() -> None:
    result = _run()
    smoothed = np.array([p.smoothed for p in result.points])
    lrs = np.array([p.lr for p in result.points])
    assert lrs[0] == pytest.approx(1e-4)
    assert np.all(np.diff(lrs) > 0)
    lowest = int(np.argmin(smoothed))
    assert smoothed[lowest] < 0.5 * smoothed[0]  # it fell
    assert result.stop_reason == DIVERGED  # then blew up, ending the test early
    assert len(result.points) < 120
    assert smoothed[-1] > 4 * smoothed[lowest]
    falls_from = lrs[int(np.argmax(smoothed < 0.9 * smoothed[0]))]
    assert result.suggested_lr is not None
    assert falls_from <= result.suggested_lr <= lrs[lowest]


def test_smoothing_is_a_bias_corrected_moving_average() -> None:
    result = _run(num_steps=20, max_lr=1e-3)
    losses = [p.loss for p in result.points]
    assert result.points[0].smoothed == pytest.approx(losses[0])
    avg = 0.0
    for step, point in enumerate(result.points):
        avg = 0.98 * avg + 0.02 * losses[step]
        assert point.smoothed == pytest.approx(avg / (1 - 0.98 ** (step + 1)))


def test_a_short_range_runs_every_step() -> None:
    result = _run(num_steps=30, max_lr=1e-2)
    assert result.stop_reason == FINISHED
    assert len(result.points) == 30
    assert result.points[-1].lr == pytest.approx(1e-2)


def test_the_same_seed_gives_the_same_curve() -> None:
    first, second = _run(), _run()
    assert first.to_dict() == second.to_dict()


def test_the_callers_model_is_unchanged() -> None:
    x, y = _blobs()
    model = build_model({**_spec(), "preprocess": [{"type": "standardize"}]})
    params = model.params.copy()
    lr_range_test(model, x, y, min_lr=1e-3, max_lr=10.0, num_steps=40)
    assert np.array_equal(model.params, params)
    assert model.optimizer.t == 0
    assert not model.preprocess[0].fitted
    assert model.labels is None


def test_a_cancel_request_stops_after_the_current_step() -> None:
    seen: list[int] = []
    result = _run(should_stop=lambda: len(seen) >= 5, on_step=lambda step, _: seen.append(step))
    assert result.stop_reason == "cancelled"
    assert len(result.points) == 5


def test_no_suggestion_when_the_loss_never_falls() -> None:
    lrs = np.geomspace(1e-3, 1.0, 20)
    assert suggest_lr(lrs, np.linspace(1.0, 2.0, 20)) is None


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"min_lr": 0.0}, "min_lr"),
        ({"max_lr": float("inf")}, "max_lr"),
        ({"min_lr": 1.0, "max_lr": 0.5}, "max_lr"),
        ({"num_steps": 1}, "num_steps"),
        ({"num_steps": 5000}, "num_steps"),
    ],
)
def test_a_bad_range_names_its_field(options: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        _run(**options)
    assert caught.value.field == field
