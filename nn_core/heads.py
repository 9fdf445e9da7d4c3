"""Output heads: what a network's output means, decided once from the loss and output width.

A head owns every question about the kind of output (as scikit-learn's MLP decides its output
activation once from the target type): how labels become the targets its loss expects, how
raw network outputs (logits for the fused cross-entropies) become predictions, how
predictions become class indices (where a binary decision threshold applies), and how correct
predictions are counted during training. The model, the trainer and the service ask the head;
nothing else compares loss names. A loss picks its head in `Loss.head(output_dim)`.

Class indices are positions in the model's LabelEncoder; the model decodes them to labels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from nn_core.activations import sigmoid, softmax
from nn_core.errors import DataError
from nn_core.preprocessing import LabelEncoder, as_matrix

#: Where a probability becomes the positive class when no threshold is given.
DEFAULT_THRESHOLD = 0.5


@dataclass
class Decoded:
    """A batch of predictions read the way the head reads them."""

    #: Labels of the probability columns (classifiers), JSON-safe; [] for regression.
    classes: list[Any]
    #: (n, len(classes)) class probabilities; None for hinge and regression.
    probabilities: np.ndarray | None
    #: The decided label per row (a list of labels per row for multi-label heads); None for
    #: regression.
    labels: list[Any] | None
    #: (n, outputs) regression values, or (n, 1) hinge scores; None otherwise.
    values: np.ndarray | None
    #: Each row's label is a list of labels (multi-label heads).
    multilabel: bool = False


class Head:
    """Regression: real-valued targets, the network output is the prediction."""

    #: Stable name of the kind of output (reported with metrics).
    kind: ClassVar[str] = "regression"
    #: Targets are class labels (fitted by a LabelEncoder) rather than real values.
    is_classifier: ClassVar[bool] = False
    #: Predictions are class probabilities (rather than scores or values).
    has_probabilities: ClassVar[bool] = False
    #: Each row may belong to several classes at once.
    multilabel: ClassVar[bool] = False

    def __init__(self, output_dim: int, loss_name: str) -> None:
        self.output_dim = output_dim
        self.loss_name = loss_name

    @property
    def binary(self) -> bool:
        """One probability of a positive class: the outputs a decision threshold applies to."""
        return False

    @property
    def n_columns(self) -> int:
        """Class columns a classifier answers (probabilities, or the two sides of a score)."""
        return 0

    def encode_targets(
        self, y: np.ndarray, labels: LabelEncoder | None, dtype: np.dtype[Any], field: str
    ) -> np.ndarray:
        """Labels or values -> what the loss expects (class indices, 0/1 or +-1 columns,
        one-hot rows, reals)."""
        target = as_matrix(y, dtype, field)
        if target.shape[1] != self.output_dim:
            raise DataError(
                field, f"expected {self.output_dim} target columns, got {target.shape[1]}"
            )
        return target

    def predictions(self, out: np.ndarray) -> np.ndarray:
        """Network outputs -> predictions (probabilities for the fused cross-entropies)."""
        return out

    def probabilities(self, predictions: np.ndarray, n_classes: int) -> np.ndarray | None:
        """(n, n_classes) class probabilities, or None for heads that answer scores."""
        return None

    def decide(
        self, predictions: np.ndarray, n_classes: int, threshold: float | None = None
    ) -> np.ndarray:
        """Class indices (n,) below `n_classes`; a bool (n, n_classes) matrix for multi-label
        heads. `threshold` moves the cut of binary heads (None: argmax or 0.5)."""
        raise DataError("model", "is a regression model; it predicts values, not classes")

    def decode(
        self, predictions: np.ndarray, classes: list[Any], threshold: float | None = None
    ) -> Decoded:
        """Predictions -> probabilities, labels (from `classes`, in column order) or values."""
        if not self.is_classifier:
            return Decoded([], None, None, predictions)
        probs = self.probabilities(predictions, len(classes))
        chosen = self.decide(predictions, len(classes), threshold)
        labels: list[Any]
        if self.multilabel:
            labels = [[classes[j] for j in np.flatnonzero(row)] for row in chosen]
        else:
            labels = [classes[i] for i in chosen.tolist()]
        values = predictions[:, :1] if probs is None else None
        return Decoded(classes, probs, labels, values, self.multilabel)

    def count_correct(self, out: np.ndarray, target: np.ndarray) -> int:
        """Correct predictions in a batch of network outputs (logits for fused losses) and
        encoded targets; 0 for regression."""
        return 0

    def explained_output(self, out: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray]:
        """What an explanation of `column` follows (a class's probability or score, or an
        output value) per row of network outputs `out`, and its gradient with respect to
        `out`: the head's part of the backward pass down to the input."""
        grad = np.zeros_like(out)
        grad[:, column] = 1.0
        return out[:, column].copy(), grad


class _Labelled(Head):
    is_classifier = True

    def _indices(self, y: np.ndarray, labels: LabelEncoder | None, field: str) -> np.ndarray:
        if labels is None:
            raise DataError(field, "the label encoder is not fitted; call fit_preprocessing first")
        return labels.encode(y)


class SoftmaxHead(_Labelled):
    """One class per row: softmax probabilities over the output units, argmax decides (or,
    over two classes, the second class's probability against a threshold). Targets are
    labels (encoded as indices) or one-hot / probability rows."""

    kind = "softmax"
    has_probabilities = True

    @property
    def binary(self) -> bool:
        return self.output_dim == 2

    @property
    def n_columns(self) -> int:
        return self.output_dim

    def encode_targets(
        self, y: np.ndarray, labels: LabelEncoder | None, dtype: np.dtype[Any], field: str
    ) -> np.ndarray:
        if y.ndim == 2:
            if y.shape[1] != self.output_dim:
                raise DataError(
                    field, f"one-hot rows need {self.output_dim} columns, got {y.shape[1]}"
                )
            return np.ascontiguousarray(y, dtype=dtype)
        idx = self._indices(y, labels, field)
        n_classes = len(labels.classes) if labels is not None else 0
        if n_classes > self.output_dim:
            raise DataError(
                field, f"{n_classes} classes but the output layer has {self.output_dim} units"
            )
        return idx

    def predictions(self, out: np.ndarray) -> np.ndarray:
        return softmax(out)

    def probabilities(self, predictions: np.ndarray, n_classes: int) -> np.ndarray:
        return predictions[:, :n_classes]

    def decide(
        self, predictions: np.ndarray, n_classes: int, threshold: float | None = None
    ) -> np.ndarray:
        if threshold is not None and self.binary and n_classes == 2:
            return (predictions[:, 1] >= threshold).astype(np.int64)
        return predictions[:, :n_classes].argmax(axis=1)

    def explained_output(self, out: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray]:
        p = softmax(out)
        value = p[:, column].copy()
        grad = p * -value[:, None]  # d p_c / d z_j = p_c (1[j = c] - p_j)
        grad[:, column] += value
        return value, grad

    def count_correct(self, out: np.ndarray, target: np.ndarray) -> int:
        truth = target if target.ndim == 1 else target.argmax(axis=1)
        return int((out.argmax(axis=1) == truth).sum())


class _TwoClassColumn(_Labelled):
    """Two classes in one output column: a 0/1 target column (sigmoid) or -1/+1 (hinge)."""

    #: The target of class index i is i * target_scale + target_shift.
    target_scale: ClassVar[float] = 1.0
    target_shift: ClassVar[float] = 0.0

    @property
    def n_columns(self) -> int:
        return 2

    def encode_targets(
        self, y: np.ndarray, labels: LabelEncoder | None, dtype: np.dtype[Any], field: str
    ) -> np.ndarray:
        idx = self._indices(y, labels, field)
        n_classes = len(labels.classes) if labels is not None else 0
        if n_classes > 2:
            raise DataError(
                field, f"{self.loss_name} is binary but the labels have {n_classes} classes"
            )
        column = idx.astype(dtype).reshape(-1, 1)
        if self.target_scale != 1.0:
            column *= self.target_scale
        if self.target_shift:
            column += self.target_shift
        return column

    def _positive(self, predictions: np.ndarray, cut: float, n_classes: int) -> np.ndarray:
        """Index 1 where the column is at or above `cut` (> for a score), capped to the
        classes known (a model that saw one class in training answers that one)."""
        idx = (predictions[:, 0] >= cut).astype(np.int64)
        return np.minimum(idx, max(0, n_classes - 1))


class SigmoidHead(_TwoClassColumn):
    """One sigmoid unit: the probability of the positive (second) class, cut at a threshold."""

    kind = "sigmoid"
    has_probabilities = True

    @property
    def binary(self) -> bool:
        return True

    def predictions(self, out: np.ndarray) -> np.ndarray:
        return sigmoid(out)

    def probabilities(self, predictions: np.ndarray, n_classes: int) -> np.ndarray:
        p = predictions[:, 0]
        return np.stack([1.0 - p, p], axis=1)[:, :n_classes]

    def decide(
        self, predictions: np.ndarray, n_classes: int, threshold: float | None = None
    ) -> np.ndarray:
        cut = DEFAULT_THRESHOLD if threshold is None else threshold
        return self._positive(predictions, cut, n_classes)

    def explained_output(self, out: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray]:
        p = sigmoid(out[:, :1].copy())
        slope = p * (1.0 - p)
        if column == 0:  # the negative class: 1 - p
            return 1.0 - p[:, 0], -slope
        return p[:, 0].copy(), slope

    def count_correct(self, out: np.ndarray, target: np.ndarray) -> int:
        return _rows_all_right(out, target)


class HingeHead(_TwoClassColumn):
    """A linear score whose sign decides between two classes (targets -1/+1)."""

    kind = "hinge"
    target_scale = 2.0
    target_shift = -1.0

    def decide(
        self, predictions: np.ndarray, n_classes: int, threshold: float | None = None
    ) -> np.ndarray:
        idx = (predictions[:, 0] > 0).astype(np.int64)
        return np.minimum(idx, max(0, n_classes - 1))

    def explained_output(self, out: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray]:
        sign = 1.0 if column == 1 else -1.0  # the score toward the class explained
        return sign * out[:, 0], np.full_like(out, sign)

    def count_correct(self, out: np.ndarray, target: np.ndarray) -> int:
        return int(((out > 0) == (target > 0)).all(axis=1).sum())


class MultiLabelHead(_Labelled):
    """Several sigmoid units, each an independent yes/no: targets are (n, k) 0/1 rows."""

    kind = "multilabel"
    has_probabilities = True
    multilabel = True

    @property
    def n_columns(self) -> int:
        return self.output_dim

    def encode_targets(
        self, y: np.ndarray, labels: LabelEncoder | None, dtype: np.dtype[Any], field: str
    ) -> np.ndarray:
        if y.shape != (len(y), self.output_dim):
            raise DataError(field, f"multi-label targets need shape (n, {self.output_dim})")
        return np.ascontiguousarray(y, dtype=dtype)

    def predictions(self, out: np.ndarray) -> np.ndarray:
        return sigmoid(out)

    def probabilities(self, predictions: np.ndarray, n_classes: int) -> np.ndarray:
        return predictions[:, :n_classes]

    def decide(
        self, predictions: np.ndarray, n_classes: int, threshold: float | None = None
    ) -> np.ndarray:
        cut = DEFAULT_THRESHOLD if threshold is None else threshold
        return predictions[:, :n_classes] >= cut

    def explained_output(self, out: np.ndarray, column: int) -> tuple[np.ndarray, np.ndarray]:
        p = sigmoid(out[:, column].copy())
        grad = np.zeros_like(out)
        grad[:, column] = p * (1.0 - p)
        return p, grad

    def count_correct(self, out: np.ndarray, target: np.ndarray) -> int:
        return _rows_all_right(out, target)


def _rows_all_right(logits: np.ndarray, target: np.ndarray) -> int:
    """Rows whose every sigmoid unit is on the right side of 0.5 (logit 0)."""
    return int(((logits > 0) == (target > 0.5)).all(axis=1).sum())
