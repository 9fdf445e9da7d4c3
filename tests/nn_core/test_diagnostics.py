"""Per-layer diagnostics and plain-words warnings, on real training runs of small networks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from nn_core.datasets.synthetic import make_xor
from nn_core.diagnostics import BINS, Diagnostics
from nn_core.errors import SpecError
from nn_core.spec import build_model, model_to_spec
from nn_core.training import Trainer
from nn_core.training_warnings import find_warnings, merge_warnings


def dense(units: int, activation: str, **extra: Any) -> dict[str, Any]:
    return {"type": "dense", "units": units, "activation": activation, **extra}


def fit(
    layers: list[dict[str, Any]],
    *,
    loss: str = "binary_crossentropy",
    optimizer: dict[str, Any] | None = None,
    n: int = 200,
    noise: float = 0.0,
    **training: Any,
) -> tuple[Trainer, list[dict[str, Any]], list[dict[str, Any]]]:
    """Train on XOR; the diagnostics records and the warnings merged after each of them."""
    spec = {
        "input_dim": 2,
        "preprocess": [{"type": "standardize"}],
        "layers": layers,
        "loss": loss,
        "optimizer": optimizer or {"name": "adam", "lr": 0.01},
        "training": {"epochs": 5, "batch_size": 32, "seed": 0, **training},
    }
    x, y = make_xor(n, noise=noise, seed=0)
    trainer = Trainer(build_model(spec))
    records: list[dict[str, Any]] = []
    warnings: list[dict[str, Any]] = []

    def report(tr: Trainer, record: dict[str, Any]) -> None:
        nonlocal warnings
        records.append(record)
        warnings = merge_warnings(warnings, find_warnings(record, tr.history))

    trainer.fit(x, y, callbacks=[Diagnostics(report)])
    return trainer, records, warnings


HEALTHY_TANH = [dense(8, "tanh"), dense(8, "tanh"), dense(1, "sigmoid")]
HEALTHY_RELU = [dense(16, "relu"), dense(16, "relu"), dense(1, "sigmoid")]


def test_a_record_per_epoch_with_every_statistic() -> None:
    trainer, records, _ = fit(HEALTHY_TANH, epochs=3)
    assert [r["epoch"] for r in records] == [1, 2, 3]
    layers = records[-1]["layers"]
    assert [lay["index"] for lay in layers] == [0, 1, 2]
    first = layers[0]
    assert first["weights"]["norm"] == pytest.approx(
        float(np.linalg.norm(trainer.model.layers[0].params["W"]))
    )
    for key in ("weights", "gradients", "activations"):
        hist = first[key]["histogram"]
        assert len(hist["counts"]) == BINS and hist["min"] <= hist["max"]
    assert sum(first["activations"]["histogram"]["counts"]) == 200 * 8  # all rows: n < sample
    assert 0 < first["update_ratio"] < 1
    assert first["saturated"] is not None and first["dead"] is None


def test_cadence_sample_and_off() -> None:
    _, records, _ = fit(HEALTHY_RELU, epochs=4, diagnostics={"every": 2, "sample": 50})
    assert [r["epoch"] for r in records] == [2, 4]
    assert sum(records[0]["layers"][0]["activations"]["histogram"]["counts"]) == 50 * 16
    assert records[0]["layers"][0]["dead"] is not None
    _, none, _ = fit(HEALTHY_RELU, epochs=2, diagnostics=False)
    assert none == []


def test_diagnostics_leave_training_unchanged() -> None:
    on, _, _ = fit(HEALTHY_RELU, epochs=3, validation_split=0.2)
    off, _, _ = fit(HEALTHY_RELU, epochs=3, validation_split=0.2, diagnostics=False)
    np.testing.assert_array_equal(on.model.params, off.model.params)
    assert model_to_spec(on.model)["training"]["diagnostics"] == {"every": 1, "sample": 256}
    assert model_to_spec(off.model)["training"]["diagnostics"] is False


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"every": 0}, "training.diagnostics.every"),
        ({"sample": "x"}, "training.diagnostics.sample"),
        ({"often": 1}, "training.diagnostics.often"),
        (3, "training.diagnostics"),
    ],
)
def test_bad_config_names_the_field(value: Any, field: str) -> None:
    spec = {"input_dim": 2, "layers": HEALTHY_TANH, "loss": "binary_crossentropy"}
    with pytest.raises(SpecError) as info:
        build_model({**spec, "training": {"diagnostics": value}})
    assert info.value.field == field


@pytest.mark.parametrize("layers", [HEALTHY_TANH, HEALTHY_RELU], ids=["tanh", "relu"])
def test_healthy_networks_raise_no_warning(layers: list[dict[str, Any]]) -> None:
    _, _, warnings = fit(layers, epochs=30, validation_split=0.25)
    assert warnings == []


SIGMOID_DEEP = [dense(16, "sigmoid", initializer={"name": "normal", "std": 0.1})] * 8
BIG_LINEAR = [dense(32, "identity", initializer={"name": "normal", "std": 1.0})] * 6


@pytest.mark.parametrize(
    ("code", "layers", "options"),
    [
        ("vanishing_gradients", [*SIGMOID_DEEP, dense(1, "sigmoid")], {"epochs": 2}),
        (
            "exploding_gradients",
            [*BIG_LINEAR, dense(1, "identity")],
            {
                "loss": "mse",
                "optimizer": {"name": "sgd", "lr": 1e-3},
                "epochs": 1,
                "batch_size": 200,
            },
        ),
        (
            "dead_relus",
            [dense(16, "relu"), dense(16, "relu"), dense(1, "sigmoid")],
            {"optimizer": {"name": "sgd", "lr": 50.0}, "epochs": 3},
        ),
        (
            "saturated_units",
            [
                dense(16, "sigmoid", initializer={"name": "normal", "std": 20.0}),
                dense(1, "sigmoid"),
            ],
            {"epochs": 2},
        ),
        (
            "loss_rising",
            [dense(8, "tanh"), dense(1, "identity")],
            {"loss": "mse", "optimizer": {"name": "sgd", "lr": 1.0}, "epochs": 10},
        ),
        (
            "overfitting",
            [dense(128, "relu"), dense(128, "relu"), dense(1, "sigmoid")],
            {"epochs": 40, "validation_split": 0.5, "n": 60, "noise": 0.5, "batch_size": 8},
        ),
    ],
)
def test_each_warning_on_a_network_built_for_it(
    code: str, layers: list[dict[str, Any]], options: dict[str, Any]
) -> None:
    _, _, warnings = fit(layers, **options)
    found = {w["code"]: w for w in warnings}
    assert code in found, warnings
    assert found[code]["epoch"] >= 1 and len(found[code]["message"]) > 40


def test_a_warning_keeps_the_epoch_first_seen() -> None:
    first = [{"code": "dead_relus", "message": "m", "epoch": 2}]
    again = [
        {"code": "dead_relus", "message": "m", "epoch": 5},
        {"code": "x", "message": "n", "epoch": 5},
    ]
    assert merge_warnings(first, again) == [*first, again[1]]
