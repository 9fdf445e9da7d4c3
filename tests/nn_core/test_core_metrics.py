"""Metrics agree with scikit-learn on random data, including the awkward cases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn import metrics as skm

from nn_core import metrics
from nn_core.errors import DataError


def _random_labels(seed: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, k, n)
    # Mostly right, sometimes wrong, so every score is away from 0 and 1.
    y_pred = np.where(rng.random(n) < 0.7, y_true, rng.integers(0, k, n))
    return y_true, y_pred


@pytest.mark.parametrize("seed", range(5))
def test_accuracy_and_confusion_matrix(seed: int) -> None:
    t, p = _random_labels(seed, 200, 4)
    assert metrics.accuracy(t, p) == pytest.approx(skm.accuracy_score(t, p))
    cm = metrics.confusion_matrix(t, p)
    assert cm.dtype == np.int64
    np.testing.assert_array_equal(cm, skm.confusion_matrix(t, p))
    labels = [3, 1, 7]  # custom order, a label never seen, others ignored
    np.testing.assert_array_equal(
        metrics.confusion_matrix(t, p, labels), skm.confusion_matrix(t, p, labels=labels)
    )


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_multiclass_averages_match_sklearn(seed: int, average: str) -> None:
    t, p = _random_labels(seed, 150, 5)
    ours = metrics.precision_recall_f1(t, p, average)  # type: ignore[arg-type]
    theirs = skm.precision_recall_fscore_support(t, p, average=average, zero_division=0)[:3]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("average", ["macro", "micro", "weighted"])
def test_label_subset_matches_sklearn(average: str) -> None:
    t, p = _random_labels(9, 120, 4)
    ours = metrics.precision_recall_f1(t, p, average, labels=[0, 2])  # type: ignore[arg-type]
    theirs = skm.precision_recall_fscore_support(
        t, p, average=average, labels=[0, 2], zero_division=0
    )[:3]
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_binary_with_pos_label(seed: int) -> None:
    t, p = _random_labels(seed, 100, 2)
    names = np.array(["ham", "spam"])
    for pos in ("ham", "spam"):
        ours = metrics.precision_recall_f1(names[t], names[p], pos_label=pos)
        theirs = skm.precision_recall_fscore_support(
            names[t], names[p], pos_label=pos, average="binary", zero_division=0
        )[:3]
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert metrics.precision(t, p) == pytest.approx(skm.precision_score(t, p))
    assert metrics.recall(t, p) == pytest.approx(skm.recall_score(t, p))
    assert metrics.f1(t, p) == pytest.approx(skm.f1_score(t, p))


def test_never_predicted_class_scores_zero_without_warning_or_crash() -> None:
    t = np.array([0, 0, 1, 1, 2, 2])
    p = np.array([0, 0, 1, 1, 1, 0])  # class 2 never predicted
    labels, prec, rec, f1, support = metrics.per_class_scores(t, p)
    assert labels.tolist() == [0, 1, 2]
    assert prec[2] == rec[2] == f1[2] == 0.0
    assert support.tolist() == [2, 2, 2]
    sk = skm.precision_recall_fscore_support(t, p, zero_division=0)
    np.testing.assert_allclose(np.stack([prec, rec, f1]), np.stack(sk[:3]))
    # Nothing positive at all: binary scores are 0, not NaN.
    assert metrics.precision_recall_f1([0, 0, 0], [0, 0, 0]) == (0.0, 0.0, 0.0)


def test_binary_refuses_more_than_two_classes_or_a_foreign_pos_label() -> None:
    with pytest.raises(DataError, match="at most 2 classes"):
        metrics.f1([0, 1, 2], [0, 1, 2])
    with pytest.raises(DataError, match="pos_label"):
        metrics.f1(["a", "b"], ["a", "b"], pos_label="c")
    with pytest.raises(DataError, match="average"):
        metrics.precision_recall_f1([0, 1], [0, 1], "samples")  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", range(6))
def test_roc_auc_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 300)
    # Rounded scores create many ties, the case a naive sort-based AUC gets wrong.
    score = np.round(y * 0.3 + rng.random(300), 1)
    assert metrics.roc_auc(y, score) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)
    proba = np.stack([1 - score, score], axis=1)
    assert metrics.roc_auc(y, proba) == pytest.approx(skm.roc_auc_score(y, score), abs=1e-12)


def test_roc_auc_string_labels_and_extremes() -> None:
    y = np.array(["ham", "spam", "ham", "spam"])
    assert metrics.roc_auc(y, [0.1, 0.9, 0.2, 0.8]) == 1.0
    assert metrics.roc_auc(y, [0.9, 0.1, 0.8, 0.2]) == 0.0
    assert metrics.roc_auc(y, [0.5, 0.5, 0.5, 0.5]) == 0.5
    assert metrics.roc_auc(y, [0.9, 0.1, 0.8, 0.2], pos_label="ham") == 1.0
    with pytest.raises(DataError, match="both classes"):
        metrics.roc_auc([1, 1], [0.2, 0.3])
    with pytest.raises(DataError, match="binary"):
        metrics.roc_auc([0, 1, 2], [0.2, 0.3, 0.4])
    with pytest.raises(DataError, match="NaN"):
        metrics.roc_auc([0, 1], [0.2, np.nan])


@pytest.mark.parametrize("seed", range(4))
def test_regression_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    t = rng.normal(size=(80, 3))
    p = t + rng.normal(scale=0.5, size=(80, 3))
    assert metrics.mse(t, p) == pytest.approx(skm.mean_squared_error(t, p))
    assert metrics.mae(t, p) == pytest.approx(skm.mean_absolute_error(t, p))
    assert metrics.r2(t, p) == pytest.approx(skm.r2_score(t, p))
    assert metrics.r2(t[:, 0], p[:, 0]) == pytest.approx(skm.r2_score(t[:, 0], p[:, 0]))


def test_r2_constant_target_is_finite() -> None:
    assert metrics.r2([2.0, 2.0, 2.0], [2.0, 2.0, 2.0]) == 1.0
    assert metrics.r2([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0


def test_classification_report_is_json_safe_and_consistent() -> None:
    rng = np.random.default_rng(3)
    names = np.array(["ham", "spam"])
    y = rng.integers(0, 2, 60)
    score = np.clip(y * 0.4 + rng.random(60) * 0.7, 0, 1)
    pred = (score >= 0.5).astype(int)
    report = metrics.classification_report(names[y], names[pred], y_score=score)
    json.dumps(report, allow_nan=False)
    assert report["labels"] == ["ham", "spam"]
    assert report["n_samples"] == 60
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    spam = report["per_class"]["spam"]
    assert spam["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert spam["support"] == int(y.sum())
    assert report["macro"]["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert report["weighted"]["recall"] == pytest.approx(
        skm.recall_score(y, pred, average="weighted")
    )
    assert report["confusion_matrix"] == skm.confusion_matrix(y, pred).tolist()
    assert report["roc_auc"] == pytest.approx(skm.roc_auc_score(y, score))
    assert all(type(v) is int for row in report["confusion_matrix"] for v in row)


def test_classification_report_multiclass_and_degenerate() -> None:
    t = np.array([0, 1, 2, 2])
    p = np.array([0, 1, 1, 1])
    report = metrics.classification_report(t, p, y_score=np.zeros(4))
    json.dumps(report, allow_nan=False)
    assert report["labels"] == [0, 1, 2]
    assert "roc_auc" not in report  # only for binary problems
    assert report["per_class"]["2"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 2}
    one_class = metrics.classification_report([1, 1], [1, 0], y_score=[0.9, 0.2])
    assert one_class["roc_auc"] is None  # undefined with one class present, not an error


def test_regression_report() -> None:
    report = metrics.regression_report([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    json.dumps(report, allow_nan=False)
    assert report == {
        "n_samples": 3,
        "mse": pytest.approx(4 / 3),
        "rmse": pytest.approx(np.sqrt(4 / 3)),
        "mae": pytest.approx(2 / 3),
        "r2": pytest.approx(skm.r2_score([1, 2, 3], [1, 2, 5])),
    }


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda: metrics.accuracy([1, 2], [1]), "y_pred"),
        (lambda: metrics.accuracy([], []), "y_true"),
        (lambda: metrics.accuracy(np.zeros((2, 2)), np.zeros((2, 2))), "y_true"),
        (lambda: metrics.mse([1.0, 2.0], [1.0, np.inf]), "y_pred"),
        (lambda: metrics.mse(["a"], ["b"]), "y_pred"),
        (lambda: metrics.confusion_matrix([1], [1], labels=[1, 1]), "labels"),
    ],
)
def test_bad_input_names_the_field(call: object, field: str) -> None:
    with pytest.raises(DataError) as info:
        call()  # type: ignore[operator]
    assert info.value.field == field
