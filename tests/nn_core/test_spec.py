"""Specs: every registered name round-trips spec -> model -> spec; bad specs name the field."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nn_core.activations import ACTIVATIONS
from nn_core.errors import SpecError
from nn_core.initializers import INITIALIZERS
from nn_core.layers import LAYERS
from nn_core.losses import LOSSES
from nn_core.optimizers import OPTIMIZERS
from nn_core.preprocessing import TRANSFORMS
from nn_core.schedules import SCHEDULES
from nn_core.spec import build_model, model_to_spec, normalize_spec

BASE: dict[str, Any] = {
    "input_dim": 3,
    "layers": [{"type": "dense", "units": 4, "activation": "relu"}, {"type": "dense", "units": 1}],
    "loss": "mse",
}


def _with(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(BASE)
    spec.update(changes)
    return spec


def _round_trip(spec: dict[str, Any]) -> dict[str, Any]:
    first = model_to_spec(build_model(spec))
    json.dumps(first)  # JSON-safe
    assert model_to_spec(build_model(first)) == first
    return first


def _contains(full: Any, given: Any) -> bool:
    """Every value the user gave appears unchanged in the normalised spec."""
    if isinstance(given, dict):
        return isinstance(full, dict) and all(_contains(full.get(k), v) for k, v in given.items())
    if isinstance(given, list):
        return (
            isinstance(full, list)
            and len(full) == len(given)
            and all(_contains(f, g) for f, g in zip(full, given, strict=True))
        )
    return full == given


def _layers_for(layer: dict[str, Any]) -> list[dict[str, Any]]:
    return [layer, {"type": "dense", "units": 1}]


LAYER_EXAMPLES = {
    "dense": {
        "type": "dense",
        "units": 5,
        "activation": "tanh",
        "dropout": 0.2,
        "regularizer": {"l1": 0.001, "l2": 0.01},
        "use_bias": False,
    },
    "maxout": {"type": "maxout", "units": 4, "pieces": 3},
    "batchnorm": {"type": "batchnorm", "momentum": 0.2, "eps": 0.001},
    "dropout": {"type": "dropout", "rate": 0.5},
    "activation": {"type": "activation", "activation": "tanh"},
}


def test_layer_examples_cover_registry() -> None:
    assert set(LAYER_EXAMPLES) == set(LAYERS)


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layers_round_trip(name: str) -> None:
    spec = _with(layers=_layers_for(LAYER_EXAMPLES[name]))
    assert _contains(_round_trip(spec), spec)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activations_round_trip(name: str) -> None:
    spec = _with(layers=_layers_for({"type": "dense", "units": 3, "activation": name}))
    assert _round_trip(spec)["layers"][0]["activation"] in (
        name,
        {"name": name, "alpha": 0.01},
        {"name": name, "alpha": 1.0},
    )


def test_parametrised_activation_round_trips() -> None:
    act = {"name": "leaky_relu", "alpha": 0.1}
    spec = _with(layers=_layers_for({"type": "dense", "units": 3, "activation": act}))
    assert _round_trip(spec)["layers"][0]["activation"] == act


@pytest.mark.parametrize("name", INITIALIZERS)
def test_initializers_round_trip(name: str) -> None:
    spec = _with(layers=_layers_for({"type": "dense", "units": 3, "initializer": name}))
    assert _round_trip(spec)["layers"][0]["initializer"] in (name, {"name": "normal", "std": 0.01})


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_losses_round_trip(name: str) -> None:
    out = {
        "categorical_crossentropy": {"units": 3, "activation": "softmax"},
        "binary_crossentropy": {"units": 1, "activation": "sigmoid"},
    }.get(name, {"units": 1})
    spec = _with(loss=name, layers=[{"type": "dense", "units": 4}, {"type": "dense", **out}])
    assert _round_trip(spec)["loss"] == name


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_optimizers_round_trip(name: str) -> None:
    spec = _with(optimizer={"name": name, "lr": 0.003, "clip_norm": 1.5})
    assert _contains(_round_trip(spec), spec)


SCHEDULE_EXAMPLES = {
    "constant": {"name": "constant"},
    "step": {"name": "step", "step_size": 3, "gamma": 0.5},
    "exponential": {"name": "exponential", "gamma": 0.9},
    "cosine": {"name": "cosine", "t_max": 20, "min_lr": 0.0001},
    "reduce_on_plateau": {
        "name": "reduce_on_plateau",
        "monitor": "loss",
        "factor": 0.5,
        "patience": 2,
    },
}


@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedules_round_trip(name: str) -> None:
    spec = _with(schedule=SCHEDULE_EXAMPLES[name])
    assert _contains(_round_trip(spec), spec)


TRANSFORM_EXAMPLES: dict[str, dict[str, Any]] = {
    "standardize": {"type": "standardize"},
    "minmax": {"type": "minmax"},
    "scale": {"type": "scale", "factor": 0.5},
    "features": {"type": "features", "columns": ["x1^2", "x2^2", "x1*x2", "sin x1"]},
}
#: Transforms that only take a given input width (the Playground's features: two inputs).
TRANSFORM_INPUT_DIMS = {"features": 2}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
def test_transforms_round_trip(name: str) -> None:
    example = TRANSFORM_EXAMPLES.get(name, {"type": name})
    spec = _with(preprocess=[example])
    if TRANSFORMS[name].raw_input:
        spec["input_dim"] = None
    elif name in TRANSFORM_INPUT_DIMS:
        spec["input_dim"] = TRANSFORM_INPUT_DIMS[name]
    assert _contains(_round_trip(spec), spec)


def test_training_round_trip() -> None:
    training = {
        "epochs": 7,
        "batch_size": 16,
        "validation_split": 0.25,
        "shuffle": False,
        "seed": 42,
        "early_stopping": {"monitor": "val_loss", "patience": 3, "restore_best_weights": False},
    }
    spec = _with(training=training, dtype="float64")
    assert _contains(_round_trip(spec), spec)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"layers": []}, "layers"),
        ({"layers": [{"type": "dense"}]}, "layers[0].units"),
        ({"layers": [{"type": "dense", "units": 0}]}, "layers[0].units"),
        ({"layers": [{"type": "dense", "units": 2.5}]}, "layers[0].units"),
        ({"layers": [{"type": "dense", "units": True}]}, "layers[0].units"),
        ({"layers": [{"type": "conv", "units": 2}]}, "layers[0].type"),
        ({"layers": [{"type": "dense", "units": 2, "activaton": "relu"}]}, "layers[0].activaton"),
        ({"layers": [{"type": "dense", "units": 2, "activation": "rleu"}]}, "layers[0].activation"),
        ({"layers": [{"type": "dense", "units": 1, "dropout": 1.0}]}, "layers[0].dropout"),
        (
            {"layers": [{"type": "dense", "units": 1, "regularizer": {"l2": -1}}]},
            "layers[0].regularizer.l2",
        ),
        (
            {"layers": [{"type": "dense", "units": 1, "initializer": "xavier"}]},
            "layers[0].initializer",
        ),
        ({"loss": "cross_entropy"}, "loss"),
        ({"loss": "categorical_crossentropy"}, "layers[1].activation"),
        ({"optimizer": {"name": "adamax"}}, "optimizer.name"),
        ({"optimizer": {"name": "adam", "lr": -1}}, "optimizer.lr"),
        ({"optimizer": {"name": "adam", "lr": float("nan")}}, "optimizer.lr"),
        ({"optimizer": {"name": "adam", "beta1": 1.0}}, "optimizer.beta1"),
        ({"optimizer": {"name": "sgd", "momentum": 0.9}}, "optimizer.momentum"),
        ({"schedule": {"name": "linear"}}, "schedule.name"),
        ({"training": {"epochs": 0}}, "training.epochs"),
        ({"training": {"batch_size": "32"}}, "training.batch_size"),
        ({"training": {"validation_split": 1.0}}, "training.validation_split"),
        ({"training": {"early_stopping": {"patience": -1}}}, "training.early_stopping.patience"),
        ({"dtype": "float16"}, "dtype"),
        ({"input_dim": -3}, "input_dim"),
        ({"preprocess": [{"type": "pca"}]}, "preprocess[0].type"),
        ({"hidden": 3}, "hidden"),
    ],
)
def test_invalid_specs_name_the_field(change: dict[str, Any], field: str) -> None:
    with pytest.raises(SpecError) as err:
        build_model(_with(**change))
    assert err.value.field == field, str(err.value)
    assert field in str(err.value)


def test_unknown_names_list_allowed_values() -> None:
    with pytest.raises(SpecError) as err:
        build_model(_with(optimizer={"name": "adamax"}))
    assert err.value.allowed == sorted(OPTIMIZERS)


def test_parameter_limit_checked_before_allocation() -> None:
    huge = _with(input_dim=100_000, layers=[{"type": "dense", "units": 100_000}])
    with pytest.raises(SpecError, match="limit"):
        build_model(huge, max_params=1_000_000)


def test_normalize_spec_fills_defaults() -> None:
    full = normalize_spec(BASE)
    assert full["optimizer"]["name"] == "sgd"
    assert full["training"]["epochs"] == 10
    assert full["layers"][0]["initializer"] == "he_normal"  # ReLU gets He by default
    assert full["layers"][1]["initializer"] == "glorot_uniform"
