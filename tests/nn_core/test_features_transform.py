"""The "features" transform: the TensorFlow Playground's derived input columns, in the model."""

from __future__ import annotations

import numpy as np
import pytest

from nn_core.datasets.synthetic import make_circle
from nn_core.errors import DataError, SpecError
from nn_core.preprocessing import build_transform
from nn_core.serialize import load_model, save_model
from nn_core.spec import build_model, model_to_spec
from nn_core.training import train


def test_columns_are_computed_in_the_order_given() -> None:
    transform = build_transform({"type": "features", "columns": ["x1*x2", "x1^2", "sin x2", "x1"]})
    x = np.array([[2.0, 3.0], [-1.0, 0.5]])
    out = transform.transform(x, np.dtype(np.float64))
    expected = np.array([[6.0, 4.0, np.sin(3.0), 2.0], [-0.5, 1.0, np.sin(0.5), -1.0]])
    np.testing.assert_allclose(out, expected)
    assert transform.config() == {"type": "features", "columns": ["x1*x2", "x1^2", "sin x2", "x1"]}


@pytest.mark.parametrize("columns", [[], ["x3"], ["x1", "x1"], "x1"])
def test_bad_columns_name_the_field(columns: object) -> None:
    with pytest.raises(SpecError) as info:
        build_transform({"type": "features", "columns": columns}, "preprocess[0]")
    assert info.value.field == "preprocess[0]"


def test_wrong_width_is_a_data_error() -> None:
    transform = build_transform({"type": "features", "columns": ["x1"]})
    with pytest.raises(DataError):
        transform.transform(np.zeros((2, 3)), np.dtype(np.float64))


def spec(columns: list[str]) -> dict[str, object]:
    return {
        "input_dim": 2,
        "preprocess": [{"type": "features", "columns": columns}],
        "layers": [{"type": "dense", "units": 2, "activation": "softmax"}],
        "loss": "categorical_crossentropy",
        "optimizer": {"name": "adam", "lr": 0.1},
        "training": {"epochs": 60, "batch_size": 32, "seed": 1},
    }


def test_squares_make_circle_linearly_separable_and_survive_a_round_trip() -> None:
    x, y = make_circle(300, 0.0, seed=3)
    model = build_model(spec(["x1^2", "x2^2"]))
    train(model, x, y)
    assert model.layers[0].params["W"].shape == (2, 2)
    accuracy = float(np.mean(model.predict_labels(x) == y))
    assert accuracy > 0.95
    again = load_model(save_model(model))
    assert model_to_spec(again)["preprocess"] == [{"type": "features", "columns": ["x1^2", "x2^2"]}]
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-6)
