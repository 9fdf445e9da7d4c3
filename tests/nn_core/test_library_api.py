"""nn_core as a Python library: networks built from objects with keyword arguments train like
the same spec, keyword constructors and spec entries agree, bad values name the parameter, and
the package's modules import without cycles."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import nn_core.errors
from nn_core.activations import ACTIVATIONS, ELU, LeakyReLU, ReLU, Tanh, build_activation
from nn_core.errors import SpecError
from nn_core.initializers import Initializer, build_initializer
from nn_core.layers import LAYERS, ActivationLayer, BatchNorm, Dense, Dropout, Maxout, build_layer
from nn_core.losses import LOSSES, BinaryCrossEntropy, CategoricalCrossEntropy, build_loss
from nn_core.model import Model
from nn_core.optimizers import (
    OPTIMIZERS,
    SGD,
    Adagrad,
    Adam,
    AdamW,
    Momentum,
    Nesterov,
    RMSprop,
    build_optimizer,
)
from nn_core.regularizers import Regularizer, build_regularizer
from nn_core.schedules import (
    SCHEDULES,
    Constant,
    Cosine,
    Exponential,
    ReduceOnPlateau,
    StepDecay,
    build_schedule,
)
from nn_core.spec import build_model, model_to_spec
from nn_core.training import Trainer
from nn_core.training_config import TrainingConfig

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
XOR_Y = np.array([0, 1, 1, 0])

XOR_SPEC: dict[str, Any] = {
    "input_dim": 2,
    "layers": [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 2, "activation": "softmax"},
    ],
    "loss": "categorical_crossentropy",
    "optimizer": {"name": "adam", "lr": 0.05},
    "schedule": {"name": "constant"},
    "training": {"epochs": 150, "batch_size": 4, "seed": 0},
}


def _xor_model() -> Model:
    model = Model(
        input_dim=2,
        layers=[Dense(units=8, activation="tanh"), Dense(units=2, activation="softmax")],
        loss=CategoricalCrossEntropy(),
        optimizer=Adam(lr=0.05),
        schedule=Constant(),
        training=TrainingConfig(epochs=150, batch_size=4, seed=0),
    )
    return model


def test_network_built_from_objects_learns_xor() -> None:
    model = _xor_model()
    trainer = Trainer(model)
    trainer.fit(XOR_X, XOR_Y)
    np.testing.assert_array_equal(model.predict_labels(XOR_X), XOR_Y)
    assert trainer.history[-1]["accuracy"] == 1.0


def test_objects_and_spec_give_the_same_model_and_training() -> None:
    from_objects, from_spec = _xor_model(), build_model(XOR_SPEC)
    assert model_to_spec(from_objects) == model_to_spec(from_spec)
    np.testing.assert_array_equal(from_objects.params, from_spec.params)
    Trainer(from_objects).fit(XOR_X, XOR_Y, epochs=20)
    Trainer(from_spec).fit(XOR_X, XOR_Y, epochs=20)
    np.testing.assert_array_equal(from_objects.params, from_spec.params)
    assert from_objects.params.dtype == np.float32


# Each object built with keyword arguments, next to the spec entry meaning the same thing.
LAYER_PAIRS: list[tuple[Any, dict[str, Any]]] = [
    (Dense(units=3), {"type": "dense", "units": 3}),
    (
        Dense(
            5,
            activation=LeakyReLU(alpha=0.2),
            initializer=Initializer("normal", std=0.1),
            bias_initializer="zeros",
            regularizer=Regularizer(l1=0.001, l2=0.01),
            dropout=0.2,
            use_bias=False,
        ),
        {
            "type": "dense",
            "units": 5,
            "activation": {"name": "leaky_relu", "alpha": 0.2},
            "initializer": {"name": "normal", "std": 0.1},
            "regularizer": {"l1": 0.001, "l2": 0.01},
            "dropout": 0.2,
            "use_bias": False,
        },
    ),
    (
        Dense(units=4, activation={"name": "elu", "alpha": 0.5}, regularizer={"l2": 0.1}),
        {"type": "dense", "units": 4, "activation": ELU(alpha=0.5), "regularizer": {"l2": 0.1}},
    ),
    (Dense(units=4, activation="relu"), {"type": "dense", "units": 4, "activation": "relu"}),
    (Maxout(units=8, pieces=3), {"type": "maxout", "units": 8, "pieces": 3}),
    (Dropout(rate=0.5), {"type": "dropout", "rate": 0.5}),
    (BatchNorm(momentum=0.2, eps=1e-3), {"type": "batchnorm", "momentum": 0.2, "eps": 1e-3}),
    (BatchNorm(), {"type": "batchnorm"}),
    (ActivationLayer(activation="tanh"), {"type": "activation", "activation": "tanh"}),
]

OPTIMIZER_PAIRS: list[tuple[Any, Any]] = [
    (SGD(lr=0.1, clip_norm=None), {"name": "sgd", "lr": 0.1}),
    (SGD(), "sgd"),
    (Momentum(lr=0.1, momentum=0.5), {"name": "momentum", "lr": 0.1, "momentum": 0.5}),
    (Nesterov(clip_norm=2.0), {"name": "nesterov", "clip_norm": 2.0}),
    (Adagrad(eps=1e-6), {"name": "adagrad", "eps": 1e-6}),
    (RMSprop(rho=0.8), {"name": "rmsprop", "rho": 0.8}),
    (Adam(lr=1e-3, beta1=0.8), {"name": "adam", "lr": 1e-3, "beta1": 0.8}),
    (AdamW(weight_decay=0.1), {"name": "adamw", "weight_decay": 0.1}),
]

SCHEDULE_PAIRS: list[tuple[Any, Any]] = [
    (Constant(), None),
    (StepDecay(step_size=10, gamma=0.1), "step"),
    (Exponential(gamma=0.9), {"name": "exponential", "gamma": 0.9}),
    (Cosine(t_max=None, min_lr=0.0), "cosine"),
    (Cosine(t_max=20, min_lr=1e-4), {"name": "cosine", "t_max": 20, "min_lr": 1e-4}),
    (
        ReduceOnPlateau(monitor="loss", factor=0.5, patience=2),
        {"name": "reduce_on_plateau", "monitor": "loss", "factor": 0.5, "patience": 2},
    ),
]

ACTIVATION_PAIRS: list[tuple[Any, Any]] = [
    (ReLU(), "relu"),
    (Tanh(), {"name": "tanh"}),
    (LeakyReLU(), "leaky_relu"),
    (LeakyReLU(alpha=0.1), {"name": "leaky_relu", "alpha": 0.1}),
    (ELU(alpha=0.5), {"name": "elu", "alpha": 0.5}),
]


@pytest.mark.parametrize(("obj", "entry"), LAYER_PAIRS)
def test_layer_keywords_and_spec_entry_agree(obj: Any, entry: dict[str, Any]) -> None:
    built = build_layer(entry, "layers[0]")
    assert type(built) is type(obj)
    assert built.config() == obj.config()
    assert type(obj).from_config(obj.config(), "layers[0]").config() == obj.config()


@pytest.mark.parametrize(("obj", "entry"), OPTIMIZER_PAIRS)
def test_optimizer_keywords_and_spec_entry_agree(obj: Any, entry: Any) -> None:
    assert build_optimizer(entry).config() == obj.config()
    assert type(obj).from_config(obj.config(), "optimizer").config() == obj.config()


@pytest.mark.parametrize(("obj", "entry"), SCHEDULE_PAIRS)
def test_schedule_keywords_and_spec_entry_agree(obj: Any, entry: Any) -> None:
    assert build_schedule(entry).config() == obj.config()
    assert type(obj).from_config(obj.config(), "schedule").config() == obj.config()


@pytest.mark.parametrize(("obj", "entry"), ACTIVATION_PAIRS)
def test_activation_keywords_and_spec_entry_agree(obj: Any, entry: Any) -> None:
    assert build_activation(entry).config() == obj.config()


def test_initializer_regularizer_and_loss_keywords_agree() -> None:
    assert build_initializer("he_normal", "f").config() == Initializer("he_normal").config()
    normal = build_initializer({"name": "normal", "std": 0.05}, "f")
    assert normal.config() == Initializer("normal", std=0.05).config()
    assert build_regularizer({"l1": 0.5}, "f").config() == Regularizer(l1=0.5).config()
    assert build_regularizer(None, "f").config() == Regularizer().config() is None
    assert build_loss("categorical_crossentropy").config() == CategoricalCrossEntropy().config()
    assert build_loss("binary_crossentropy").config() == BinaryCrossEntropy().config()


def test_every_registered_class_builds_from_keywords() -> None:
    """Defaults live in the constructors: an entry giving only the name means the defaults."""
    for name, activation in ACTIVATIONS.items():
        assert activation().config() == build_activation(name).config()
    for name, optimizer in OPTIMIZERS.items():
        assert optimizer().config() == build_optimizer(name).config()
    for name, schedule in SCHEDULES.items():
        assert schedule().config() == build_schedule(name).config()
    for name, loss in LOSSES.items():
        assert loss().config() == build_loss(name).config() == name
    assert {type(obj).type for obj, _ in LAYER_PAIRS} == set(LAYERS)


def test_keyword_defaults_are_the_spec_defaults() -> None:
    assert Dense(units=2).config() == {
        "type": "dense",
        "units": 2,
        "activation": "identity",
        "initializer": "glorot_uniform",
        "bias_initializer": "zeros",
        "regularizer": None,
        "dropout": 0.0,
        "use_bias": True,
    }
    assert Dense(units=2, activation="relu").config()["initializer"] == "he_normal"
    assert Adam().config() == {
        "name": "adam",
        "lr": 0.01,
        "clip_norm": None,
        "beta1": 0.9,
        "beta2": 0.999,
        "eps": 1e-8,
    }
    assert ReduceOnPlateau().config() == {
        "name": "reduce_on_plateau",
        "monitor": "val_loss",
        "mode": "min",
        "factor": 0.1,
        "patience": 5,
        "min_delta": 0.0,
        "min_lr": 0.0,
    }


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Dense(units=0), "units"),
        (lambda: Dense(units=2.5), "units"),
        (lambda: Dense(units=2, activation="rleu"), "activation"),
        (
            lambda: Dense(units=2, activation={"name": "leaky_relu", "alpha": 2.0}),
            "activation.alpha",
        ),
        (lambda: Dense(units=2, initializer="xavier"), "initializer"),
        (lambda: Dense(units=2, regularizer={"l3": 1.0}), "regularizer.l3"),
        (lambda: Dense(units=2, dropout=1.0), "dropout"),
        (lambda: Dense(units=2, use_bias=1), "use_bias"),
        (lambda: Maxout(units=2, pieces=1), "pieces"),
        (lambda: Dropout(rate=1.0), "rate"),
        (lambda: BatchNorm(eps=0.0), "eps"),
        (lambda: ActivationLayer(activation="rleu"), "activation"),
        (lambda: LeakyReLU(alpha=2.0), "alpha"),
        (lambda: Initializer("xavier"), "name"),
        (lambda: Initializer("normal", std=-1.0), "std"),
        (lambda: Regularizer(l2=-1.0), "l2"),
        (lambda: SGD(lr=-1.0), "lr"),
        (lambda: SGD(lr=0.1, clip_norm=0.0), "clip_norm"),
        (lambda: Adam(beta1=1.0), "beta1"),
        (lambda: Momentum(momentum=float("nan")), "momentum"),
        (lambda: StepDecay(step_size=0), "step_size"),
        (lambda: Cosine(t_max=0), "t_max"),
        (lambda: ReduceOnPlateau(mode="sideways"), "mode"),
    ],
)
def test_bad_keyword_values_name_the_parameter(build: Any, field: str) -> None:
    with pytest.raises(SpecError) as err:
        build()
    assert err.value.field == field, str(err.value)
    assert str(err.value).startswith(f"{field}: ")


def test_spec_entries_name_the_full_path() -> None:
    with pytest.raises(SpecError) as err:
        build_layer(
            {"type": "dense", "units": 2, "activation": {"name": "elu", "alpha": -1}}, "layers[3]"
        )
    assert err.value.field == "layers[3].activation.alpha"
    assert str(err.value) == "layers[3].activation.alpha: must be in [0.0, inf], got -1"
    with pytest.raises(SpecError) as err:
        build_optimizer({"name": "adam", "beta2": 1}, "spec.optimizer")
    assert err.value.field == "spec.optimizer.beta2"


def test_schedule_declares_what_it_monitors() -> None:
    assert Constant().monitor is None
    assert ReduceOnPlateau(monitor="val_accuracy", mode="max").monitor == "val_accuracy"
    model = Model(
        input_dim=2,
        layers=[Dense(units=2, activation="softmax")],
        loss=CategoricalCrossEntropy(),
        optimizer=SGD(),
        schedule=ReduceOnPlateau(),
        training=TrainingConfig(epochs=1),
    )
    with pytest.raises(SpecError) as err:
        Trainer(model).fit(XOR_X, XOR_Y)
    assert err.value.field == "schedule.monitor"


def _import_graph() -> dict[str, set[str]]:
    """nn_core's modules and the nn_core modules each imports anywhere in its source
    (including imports under TYPE_CHECKING or inside functions)."""
    root = Path(nn_core.errors.__file__).resolve().parent
    files = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        imported: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    sub = f"{base}.{alias.name}"
                    imported.add(sub if sub in files else base)
        graph[name] = {dep for dep in imported if dep in files and dep != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_import_graph_has_no_cycles() -> None:
    graph = _import_graph()
    assert "nn_core.training" in graph and "nn_core.datasets.text" in graph
    assert "nn_core.callbacks" in graph["nn_core.training"]  # the walk sees real edges
    assert _cycles(graph) == []


def test_cycle_finder_reports_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
