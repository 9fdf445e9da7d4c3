"""The search space and the Optuna study rebuilt from trial records (no database needed)."""

from __future__ import annotations

from typing import Any

import pytest

from service.errors import Unprocessable
from service.models import TrialState
from service.sweeps import space, study
from service.sweeps.study import StudyConfig, TrialRecord

SPEC: dict[str, Any] = {
    "layers": [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ],
    "optimizer": {"name": "adam", "lr": 0.05},
}


def config(sampler: str = "tpe", pruner: str = "none", **space_: Any) -> StudyConfig:
    search_space = space_ or {
        "optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
        "layers[0].units": {"type": "int", "low": 2, "high": 5},
        "layers[0].activation": {"type": "categorical", "choices": ["tanh", "relu"]},
    }
    return StudyConfig("sweep_test", search_space, sampler, {"name": pruner}, "maximize", 3, 10)


def complete(number: int, value: float, params: dict[str, Any]) -> TrialRecord:
    curve = {epoch: value * epoch / 10 for epoch in range(1, 11)}
    return TrialRecord(number, TrialState.COMPLETE, params, value, curve)


def test_paths_select_one_every_or_a_slice_of_the_layers() -> None:
    assert space.apply_params(SPEC, {"layers[*].units": 4})["layers"][2]["units"] == 4
    hidden = space.apply_params(SPEC, {"layers[:-1].activation": "relu"})["layers"]
    assert [layer["activation"] for layer in hidden] == ["relu", "relu", "softmax"]
    assert space.apply_params(SPEC, {"layers[-1].units": 3})["layers"][2]["units"] == 3
    assert space.apply_params(SPEC, {"optimizer.momentum": 0.9})["optimizer"]["momentum"] == 0.9
    assert SPEC["layers"][0]["units"] == 8  # the base spec is never changed


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("layers[3].units", "out of range"),
        ("layers[5:].units", "selects none"),
        ("optimizer.lr.x", "holds a float"),
        ("training.epochs", "no 'training'"),
        ("layers[0]", "must end in a key"),
        ("layers[x].units", "index, * or a slice"),
        ("layers..units", "is not a key"),
    ],
)
def test_bad_paths_name_the_parameter(path: str, message: str) -> None:
    with pytest.raises(Unprocessable) as raised:
        space.set_path(dict(SPEC), path, 1, f"search_space.{path}")
    [detail] = raised.value.details
    assert detail.field == f"search_space.{path}"
    assert message in detail.message


@pytest.mark.parametrize("sampler", study.SAMPLERS)
def test_every_sampler_asks_inside_the_space_and_is_reproducible(sampler: str) -> None:
    cfg = config(
        sampler,
        **{
            "optimizer.lr": {"type": "float", "low": 0.01, "high": 0.05, "step": 0.01},
            "layers[0].units": {"type": "int", "low": 2, "high": 5},
        },
    )
    trials: list[TrialRecord] = []
    for number in range(6):
        asked = study.ask(cfg, trials)
        assert study.ask(cfg, trials) == asked  # the same rows: the same decision
        assert 0.01 <= asked.params["optimizer.lr"] <= 0.05
        assert asked.params["layers[0].units"] in range(2, 6)
        value = asked.params["optimizer.lr"] * asked.params["layers[0].units"]
        trials.append(complete(number, value, asked.params))
        trials[-1].system_attrs = asked.system_attrs
    points = {tuple(t.params.values()) for t in trials}
    assert len(points) >= 4  # reseeded per trial: not one point proposed over and over


def test_grid_visits_every_point_once() -> None:
    cfg = config("grid", **{"layers[0].units": {"type": "int", "low": 2, "high": 5}})
    trials: list[TrialRecord] = []
    for number in range(4):
        asked = study.ask(cfg, trials)
        trials.append(
            TrialRecord(number, TrialState.RUNNING, asked.params, system_attrs=asked.system_attrs)
        )
    assert sorted(t.params["layers[0].units"] for t in trials) == [2, 3, 4, 5]


def test_initial_trials_come_first() -> None:
    cfg = config()
    initial = [{"optimizer.lr": 0.01, "layers[0].units": 3, "layers[0].activation": "relu"}]
    assert study.ask(cfg, [], initial).params == initial[0]
    first = complete(0, 0.5, initial[0])
    assert study.ask(cfg, [first], initial).params != initial[0]


def _train(
    cfg: StudyConfig, trials: list[TrialRecord], params: dict[str, Any], curve: list[float]
) -> TrialRecord:
    """A trial as a sweep runs it: the pruner is asked after each epoch (and its system
    attributes kept, as trials.py does); returns the trial, complete unless pruned."""
    trial = TrialRecord(len(trials), TrialState.RUNNING, params)
    trials.append(trial)
    for epoch, value in enumerate(curve, start=1):
        trial.intermediate[epoch] = value
        decision = study.should_prune(cfg, trials, trial.number)
        trial.system_attrs = decision.system_attrs
        if decision.prune:
            trial.state = TrialState.PRUNED
            return trial
    trial.state, trial.value = TrialState.COMPLETE, curve[-1]
    return trial


@pytest.mark.parametrize("pruner", ["median", "successive_halving", "hyperband"])
def test_pruners_stop_a_trial_far_behind_and_spare_a_leader(pruner: str) -> None:
    cfg = config(pruner=pruner)
    params = {"optimizer.lr": 0.01, "layers[0].units": 3, "layers[0].activation": "tanh"}
    trials: list[TrialRecord] = []
    for n in range(8):
        _train(cfg, trials, params, [0.5 + n / 100 + epoch / 100 for epoch in range(10)])
    leader = _train(cfg, trials, params, [0.99] * 10)
    assert leader.state == TrialState.COMPLETE
    weak = _train(cfg, trials, params, [0.01] * 10)
    assert weak.state == TrialState.PRUNED and len(weak.intermediate) < 10
    if pruner != "median":  # successive halving keeps its rungs on the trials
        assert any(key.startswith("completed_rung") for key in weak.system_attrs)


def test_best_and_importances() -> None:
    cfg = config()
    trials = [
        complete(n, lr * 10, {"optimizer.lr": lr, "layers[0].units": u, "layers[0].activation": a})
        for n, (lr, u, a) in enumerate(
            [(0.01, 2, "tanh"), (0.05, 3, "relu"), (0.09, 4, "tanh"), (0.02, 5, "relu")]
        )
    ]
    trials.append(TrialRecord(4, TrialState.PRUNED, trials[0].params, intermediate={1: 9.0}))
    best = study.best(cfg, trials)
    assert best is not None and best.number == 2
    found = study.importances(cfg, trials)
    assert found is not None and set(found) == set(cfg.search_space)
    assert sum(found.values()) == pytest.approx(1.0)
    assert study.importances(cfg, trials[:1]) is None  # too few complete trials
