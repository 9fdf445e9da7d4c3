"""Output heads: the one place that knows what a loss's outputs mean."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from nn_core.errors import DataError, SpecError
from nn_core.heads import Head, HingeHead, MultiLabelHead, SigmoidHead, SoftmaxHead
from nn_core.losses import LOSSES, Loss, build_loss
from nn_core.preprocessing import LabelEncoder
from nn_core.spec import build_model
from nn_core.training import Trainer

F32 = np.dtype(np.float32)


def _spec(units: int, activation: str, loss: str) -> dict[str, object]:
    return {
        "input_dim": 2,
        "layers": [{"type": "dense", "units": units, "activation": activation}],
        "loss": loss,
        "training": {"epochs": 1, "batch_size": 4},
    }


@pytest.mark.parametrize(
    ("loss", "units", "head", "binary"),
    [
        ("categorical_crossentropy", 3, SoftmaxHead, False),
        ("categorical_crossentropy", 2, SoftmaxHead, True),
        ("binary_crossentropy", 1, SigmoidHead, True),
        ("binary_crossentropy", 3, MultiLabelHead, False),
        ("hinge", 1, HingeHead, False),
        ("mse", 2, Head, False),
        ("sse", 1, Head, False),
        ("mae", 1, Head, False),
    ],
)
def test_each_loss_picks_its_head_once(
    loss: str, units: int, head: type[Head], binary: bool
) -> None:
    picked = build_loss(loss).head(units)
    assert type(picked) is head
    assert picked.binary is binary
    assert picked.is_classifier is (head is not Head)


def test_every_registered_loss_has_a_head() -> None:
    for name, cls in LOSSES.items():
        assert isinstance(cls().head(1), Head), name


def test_hinge_refuses_more_than_one_output_naming_the_layer() -> None:
    with pytest.raises(SpecError) as error:
        build_model(_spec(2, "identity", "hinge"))
    assert error.value.field == "layers[0].units"


def test_targets_are_encoded_per_head() -> None:
    labels = LabelEncoder().fit(np.array(["no", "yes"]))
    y = np.array(["yes", "no", "yes"])
    assert SoftmaxHead(2, "ce").encode_targets(y, labels, F32, "y").tolist() == [1, 0, 1]
    column = SigmoidHead(1, "bce").encode_targets(y, labels, F32, "y")
    assert column.dtype == F32 and column[:, 0].tolist() == [1, 0, 1]
    signs = HingeHead(1, "hinge").encode_targets(y, labels, F32, "y")
    assert signs[:, 0].tolist() == [1, -1, 1]
    one_hot = np.eye(3)[[0, 2]]
    assert SoftmaxHead(3, "ce").encode_targets(one_hot, None, F32, "y").shape == (2, 3)
    with pytest.raises(DataError, match="one-hot rows need 2 columns"):
        SoftmaxHead(2, "ce").encode_targets(one_hot, None, F32, "y")
    three = LabelEncoder().fit(np.array([0, 1, 2]))
    with pytest.raises(DataError, match="binary_crossentropy is binary but the labels have 3"):
        SigmoidHead(1, "binary_crossentropy").encode_targets(np.array([0, 2]), three, F32, "y")
    with pytest.raises(DataError, match="3 classes but the output layer has 2 units"):
        SoftmaxHead(2, "ce").encode_targets(np.array([0, 2]), three, F32, "y")
    with pytest.raises(DataError, match="expected 2 target columns"):
        Head(2, "mse").encode_targets(np.zeros((3, 1)), None, F32, "y")


def test_thresholds_move_binary_decisions_only() -> None:
    p = np.array([[0.3], [0.6], [0.9]], dtype=F32)
    sigmoid = SigmoidHead(1, "bce")
    assert sigmoid.decide(p, 2).tolist() == [0, 1, 1]
    assert sigmoid.decide(p, 2, threshold=0.7).tolist() == [0, 0, 1]
    assert sigmoid.decide(p, 2, threshold=0.3).tolist() == [1, 1, 1]  # at or above

    two = np.array([[0.7, 0.3], [0.4, 0.6]], dtype=F32)
    softmax = SoftmaxHead(2, "ce")
    assert softmax.decide(two, 2).tolist() == [0, 1]
    assert softmax.decide(two, 2, threshold=0.65).tolist() == [0, 0]
    assert softmax.decide(two, 2, threshold=0.2).tolist() == [1, 1]

    three = np.array([[0.5, 0.2, 0.3]], dtype=F32)
    assert SoftmaxHead(3, "ce").decide(three, 3, threshold=0.1).tolist() == [0]  # argmax


def test_decode_reads_predictions_for_each_head() -> None:
    decoded = SigmoidHead(1, "bce").decode(np.array([[0.8]], dtype=F32), ["ham", "spam"], 0.9)
    assert decoded.labels == ["ham"]
    assert decoded.probabilities is not None
    assert decoded.probabilities[0].tolist() == pytest.approx([0.2, 0.8])
    assert decoded.values is None and not decoded.multilabel

    hinge = HingeHead(1, "hinge").decode(np.array([[-2.0], [0.5]], dtype=F32), ["a", "b"])
    assert hinge.labels == ["a", "b"] and hinge.probabilities is None
    assert hinge.values is not None and hinge.values[:, 0].tolist() == [-2.0, 0.5]

    multi = MultiLabelHead(3, "bce").decode(np.array([[0.9, 0.1, 0.5]], dtype=F32), [0, 1, 2])
    assert multi.multilabel and multi.labels == [[0, 2]]

    values = np.array([[1.5, 2.5]], dtype=F32)
    regression = Head(2, "mse").decode(values, [])
    assert regression.labels is None and regression.values is values


def test_counting_correct_agrees_with_deciding_on_logits() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 3)).astype(F32)
    target = rng.integers(0, 3, size=50)
    head = SoftmaxHead(3, "ce")
    expected = int((head.decide(head.predictions(logits), 3) == target).sum())
    assert head.count_correct(logits, target) == expected

    one = rng.normal(size=(50, 1)).astype(F32)
    column = rng.integers(0, 2, size=(50, 1)).astype(F32)
    sigmoid = SigmoidHead(1, "bce")
    decided = sigmoid.decide(sigmoid.predictions(one), 2)
    assert sigmoid.count_correct(one, column) == int((decided == column[:, 0]).sum())


def test_model_decodes_with_its_labels_and_a_threshold() -> None:
    model = build_model(_spec(1, "sigmoid", "binary_crossentropy"))
    x = np.array([[1, 0], [0, 1], [1, 1], [0, 0]] * 4, dtype=F32)
    Trainer(model).fit(x, np.array(["no", "yes", "yes", "no"] * 4))
    assert model.classes == ["no", "yes"]
    out = model.predict(x[:2])
    assert model.decode(out, threshold=0.0).labels == ["yes", "yes"]
    assert model.decode(out, threshold=1.01).labels == ["no", "no"]
    assert model.labels_from_outputs(out, threshold=0.0).tolist() == ["yes", "yes"]


class _SquaredHinge(Loss):
    """A loss added in one place: its value, gradient and head, nothing else."""

    name: ClassVar[str] = "squared_hinge_test"

    def value_and_grad(self, out: np.ndarray, target: np.ndarray) -> tuple[float, np.ndarray]:
        margin = np.maximum(0.0, 1.0 - target * out)
        grad = (-2.0 * target * margin / out.size).astype(out.dtype)
        return float((margin * margin).sum()) / out.size, grad

    def head(self, output_dim: int, field: str = "units") -> Head:
        return HingeHead(output_dim, self.name)


def test_a_new_loss_needs_only_its_class(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(LOSSES, _SquaredHinge.name, _SquaredHinge)
    spec = _spec(1, "identity", _SquaredHinge.name)
    spec["layers"] = [
        {"type": "dense", "units": 8, "activation": "tanh"},
        {"type": "dense", "units": 1},
    ]
    spec["optimizer"] = {"name": "adam", "lr": 0.05}
    spec["training"] = {"epochs": 200, "batch_size": 4, "seed": 0}
    model = build_model(spec)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=F32)
    y = np.array(["no", "yes", "yes", "no"])
    history = Trainer(model).fit(x, y)
    assert history[-1]["accuracy"] == 1.0
    assert model.predict_labels(x).tolist() == y.tolist()
