"""The classic lesson: a perceptron cannot learn XOR; a two-layer MLP learns it to 100%."""

from __future__ import annotations

import numpy as np

from nn_core.perceptron import Perceptron
from nn_core.spec import build_model
from nn_core.training import Trainer

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
XOR_Y = np.array([0, 1, 1, 0])


def test_perceptron_learns_and() -> None:
    p = Perceptron(2, lr=1.0, seed=0)
    assert p.fit(XOR_X, np.array([0, 0, 0, 1]), epochs=50)
    np.testing.assert_array_equal(p.predict(XOR_X), [0, 0, 0, 1])
    assert p.errors[-1] == 0


def test_perceptron_cannot_learn_xor() -> None:
    for seed in range(5):
        p = Perceptron(2, lr=1.0, seed=seed)
        assert not p.fit(XOR_X, XOR_Y, epochs=1000)
        assert min(p.errors) >= 1  # never an error-free epoch
        # No line separates XOR: at best 3 of the 4 points are right.
        assert (p.predict(XOR_X) == XOR_Y).mean() <= 0.75


def test_two_layer_mlp_learns_xor() -> None:
    spec = {
        "input_dim": 2,
        "layers": [
            {"type": "dense", "units": 4, "activation": "tanh"},
            {"type": "dense", "units": 1, "activation": "sigmoid"},
        ],
        "loss": "binary_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.05},
        "training": {"epochs": 500, "batch_size": 4, "seed": 0},
    }
    for seed in range(3):
        spec["training"]["seed"] = seed  # type: ignore[index]
        model = build_model(spec)
        trainer = Trainer(model)
        trainer.fit(XOR_X, XOR_Y)
        np.testing.assert_array_equal(model.predict_labels(XOR_X), XOR_Y)
        assert trainer.history[-1]["accuracy"] == 1.0


def test_single_layer_network_cannot_learn_xor() -> None:
    """The same training loop with no hidden layer tops out at 75%."""
    spec = {
        "input_dim": 2,
        "layers": [{"type": "dense", "units": 1, "activation": "sigmoid"}],
        "loss": "binary_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.05},
        "training": {"epochs": 500, "batch_size": 4},
    }
    model = build_model(spec)
    Trainer(model).fit(XOR_X, XOR_Y)
    assert (model.predict_labels(XOR_X) == XOR_Y).mean() <= 0.75
