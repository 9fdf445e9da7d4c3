"""Explanations for the serving routes: request terms (class labels, raw rows, texts) in,
nn_core.explain's attributions out, every bad value a 422 naming its field.

`:explain` explains numeric models feature by feature; /v1/mnist/predict turns integrated
gradients of the predicted digit into a 28x28 saliency map; /v1/spam/score maps gradient x
input on the featurized vector back to the text's own tokens and n-grams (the hashing
featurizer keeps no vocabulary, so `TextFeatures.column_keys` reads them from the text).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nn_core import explain as attribution
from nn_core.datasets.text import TextFeatures
from nn_core.errors import DataError
from nn_core.model import Model as NNModel
from service.errors import invalid

#: nn_core's name for a field -> the request's.
_FIELDS = {"X": "instances", "baseline": "baseline", "steps": "steps", "target": "target"}


def target_column(model: NNModel, target: Any, field: str = "target") -> int:
    """The output column of `target`: a class label of a classifier (as :predict shows it),
    or a regression output's index; 422 naming `field` otherwise."""
    if model.is_classifier:
        classes = model.classes
        for i, label in enumerate(classes):
            if label == target or str(label) == str(target):
                return i
        shown = ", ".join(repr(c) for c in classes[:10])
        raise invalid(field, f"unknown class {target!r}; the model's classes are {shown}")
    outputs = model.output_dim
    if isinstance(target, bool) or not isinstance(target, int) or not 0 <= target < outputs:
        raise invalid(field, f"a regression model takes the index of an output, 0..{outputs - 1}")
    return target


def predicted_columns(model: NNModel, labels: list[Any] | None) -> np.ndarray | None:
    """The columns of the labels a single-label classifier predicted (decided as :predict
    decides them, threshold included); None lets nn_core choose (argmax, or output 0)."""
    if labels is None or model.head.multilabel:
        return None
    return np.array([model.classes.index(label) for label in labels], dtype=np.int64)


def explain(
    model: NNModel,
    x: np.ndarray,
    *,
    method: attribution.Method,
    columns: Any,
    baseline: np.ndarray | None = None,
    steps: int = attribution.DEFAULT_STEPS,
    encoded: bool = False,
) -> attribution.Explanation:
    """nn_core.explain with its errors as 422s naming the request's fields."""
    try:
        return attribution.explain(
            model,
            x,
            method=method,
            columns=columns,
            baseline=baseline,
            steps=steps,
            encoded=encoded,
        )
    except DataError as exc:
        field = _FIELDS.get(exc.field, exc.field)
        raise invalid(field, exc.message.split(": ", 1)[-1]) from None


def saliency_maps(model: NNModel, x: np.ndarray, columns: np.ndarray, side: int) -> np.ndarray:
    """(n, side, side) integrated gradients of each image's class `columns`, from a black
    image, in the model's input units."""
    result = explain(model, x, method="integrated_gradients", columns=columns)
    return result.attributions.reshape(len(x), side, side)


@dataclass(frozen=True)
class TextFeature:
    """One token, bigram, character n-gram ("#" prefix) or hand feature ("[name]") of a text,
    with its attribution toward the class explained."""

    feature: str
    weight: float


def top_text_features(
    model: NNModel, texts: list[str], column: int, k: int
) -> list[list[TextFeature]]:
    """Per text, the `k` features that moved class `column`'s probability most (either
    way), by gradient x input on the featurized vector, strongest first. Keys of one text
    that share a hashed column share its weight and are listed together ("a | b")."""
    featurizer = model.preprocess[0] if model.preprocess else None
    if not isinstance(featurizer, TextFeatures) or len(model.preprocess) != 1:
        raise invalid(
            "explain", "only models whose one transform is text_features say which words count"
        )
    features = model.encode_inputs(np.array(texts, dtype=object), "texts")
    result = explain(model, features, method="gradient_x_input", columns=column, encoded=True)
    tops = []
    for text, row in zip(texts, result.attributions, strict=True):
        keyed = featurizer.column_keys(text)
        moved = sorted((c for c in keyed if row[c] != 0.0), key=lambda c: -abs(float(row[c])))
        tops.append([TextFeature(" | ".join(keyed[c]), float(row[c])) for c in moved[:k]])
    return tops
