"""Evaluation metrics in plain NumPy, matching scikit-learn's definitions.

Classification scores never divide by zero: a class that is never predicted has precision 0
(sklearn's ``zero_division=0``), so reports are always finite and JSON-safe. Labels may be ints
or strings; label order is sorted unless given.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from nn_core.errors import DataError

Average = Literal["binary", "macro", "micro", "weighted"]
AVERAGES = ("binary", "macro", "micro", "weighted")


def _vector(y: Any, field: str) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(field, f"must be 1-D, got shape {arr.shape}")
    return arr


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _vector(y_true, "y_true"), _vector(y_pred, "y_pred")
    if len(t) != len(p):
        raise DataError("y_pred", f"has {len(p)} entries but y_true has {len(t)}")
    if len(t) == 0:
        raise DataError("y_true", "is empty")
    return t, p


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    return np.divide(num, den, out=np.zeros_like(num), where=den != 0)


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of exact matches."""
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: Any, y_pred: Any, labels: Any = None) -> np.ndarray:
    """int64 matrix C[i, j] = count of true labels[i] predicted as labels[j].

    `labels` defaults to the sorted union of both arrays; samples whose labels are not listed
    are ignored (as in sklearn).
    """
    t, p = _pair(y_true, y_pred)
    order = _labels(t, p, labels)
    ti, tok = _index_of(order, t)
    pi, pok = _index_of(order, p)
    keep = tok & pok
    k = len(order)
    flat = np.bincount(ti[keep] * k + pi[keep], minlength=k * k)
    return flat.reshape(k, k).astype(np.int64)


def _index_of(order: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Position of each value in `order` and whether it is there at all."""
    sorter = np.argsort(order, kind="stable")
    try:
        pos = np.searchsorted(order, values, sorter=sorter)
    except TypeError:  # e.g. int labels against str values: nothing matches
        return np.zeros(len(values), dtype=np.int64), np.zeros(len(values), dtype=bool)
    pos = np.minimum(pos, len(order) - 1)
    idx = sorter[pos]
    return idx, order[idx] == values


def _counts(
    t: np.ndarray, p: np.ndarray, order: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """True positives, predicted counts and supports per label, over all samples (so
    predictions of unlisted labels still count against recall, as in sklearn)."""
    k = len(order)
    ti, tok = _index_of(order, t)
    pi, pok = _index_of(order, p)
    hit = tok & pok & (ti == pi)
    tp = np.bincount(ti[hit], minlength=k)
    return tp, np.bincount(pi[pok], minlength=k), np.bincount(ti[tok], minlength=k)


def _labels(t: np.ndarray, p: np.ndarray, labels: Any) -> np.ndarray:
    order = np.unique(np.concatenate([t, p])) if labels is None else _vector(labels, "labels")
    if len(order) == 0 or len(np.unique(order)) != len(order):
        raise DataError("labels", "must be non-empty and unique")
    return order


def per_class_scores(
    y_true: Any, y_pred: Any, labels: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(labels, precision, recall, f1, support) arrays, one entry per label."""
    t, p = _pair(y_true, y_pred)
    order = _labels(t, p, labels)
    tp, predicted, support = _counts(t, p, order)
    precision = _safe_div(tp, predicted)
    recall = _safe_div(tp, support)
    f1 = _safe_div(2 * tp, predicted + support)
    return order, precision, recall, f1, support


def precision_recall_f1(
    y_true: Any,
    y_pred: Any,
    average: Average = "binary",
    pos_label: Any = 1,
    labels: Any = None,
) -> tuple[float, float, float]:
    """Precision, recall and F1 like sklearn's ``precision_recall_fscore_support``.

    binary: scores of `pos_label` only (at most two classes); macro: unweighted mean over
    classes; weighted: mean weighted by support; micro: from pooled counts.
    """
    t, p = _pair(y_true, y_pred)
    if average not in AVERAGES:
        raise DataError("average", f"must be one of {', '.join(AVERAGES)}, got {average!r}")
    if average == "binary":
        present = np.unique(np.concatenate([t, p]))
        if len(present) > 2:
            raise DataError("average", f"'binary' needs at most 2 classes, got {len(present)}")
        if len(present) == 2 and pos_label not in present.tolist():
            raise DataError("pos_label", f"{pos_label!r} is not one of {present.tolist()}")
        labels = [pos_label]
    order, prec, rec, f1, support = per_class_scores(t, p, labels)
    if average == "binary":
        return float(prec[0]), float(rec[0]), float(f1[0])
    if average == "macro":
        return float(prec.mean()), float(rec.mean()), float(f1.mean())
    if average == "weighted":
        total = support.sum()
        if total == 0:
            return 0.0, 0.0, 0.0
        w = support / total
        return float(prec @ w), float(rec @ w), float(f1 @ w)
    tp, predicted, actual = (float(c.sum()) for c in _counts(t, p, order))
    return (
        tp / predicted if predicted else 0.0,
        tp / actual if actual else 0.0,
        2 * tp / (predicted + actual) if predicted + actual else 0.0,
    )


def precision(y_true: Any, y_pred: Any, average: Average = "binary", pos_label: Any = 1) -> float:
    return precision_recall_f1(y_true, y_pred, average, pos_label)[0]


def recall(y_true: Any, y_pred: Any, average: Average = "binary", pos_label: Any = 1) -> float:
    return precision_recall_f1(y_true, y_pred, average, pos_label)[1]


def f1(y_true: Any, y_pred: Any, average: Average = "binary", pos_label: Any = 1) -> float:
    return precision_recall_f1(y_true, y_pred, average, pos_label)[2]


def _positive_scores(y_score: Any, n: int) -> np.ndarray:
    score = np.asarray(y_score, dtype=np.float64)
    if score.ndim == 2 and score.shape[1] in (1, 2):
        score = score[:, -1]  # (n, 2) probabilities: the positive (second) class column
    if score.ndim != 1 or len(score) != n:
        raise DataError(
            "y_score",
            f"needs one score per sample (or (n, 2) probabilities), "
            f"got shape {score.shape} for {n} samples",
        )
    if not np.isfinite(score).all():
        raise DataError("y_score", "contains NaN or infinite values")
    return score


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their mean rank."""
    order = np.argsort(values, kind="mergesort")
    sorted_vals = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_vals[1:] != sorted_vals[:-1]])
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0
    ranks = np.empty(len(values))
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y_true: Any, y_score: Any, pos_label: Any = None) -> float:
    """Binary ROC AUC via the Mann-Whitney U statistic (tied scores count one half).

    `pos_label` defaults to the larger of the two labels, as sklearn's ``roc_auc_score``.
    """
    t = _vector(y_true, "y_true")
    if len(t) == 0:
        raise DataError("y_true", "is empty")
    score = _positive_scores(y_score, len(t))
    classes = np.unique(t)
    if len(classes) > 2:
        raise DataError("y_true", f"roc_auc is binary; got {len(classes)} classes")
    if pos_label is None:
        pos_label = classes[-1]
    positive = t == pos_label
    n_pos = int(positive.sum())
    n_neg = len(t) - n_pos
    if n_pos == 0 or n_neg == 0:
        raise DataError("y_true", "roc_auc needs both classes present")
    rank_sum = _average_ranks(score)[positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _targets(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    try:
        t = np.asarray(y_true, dtype=np.float64)
        p = np.asarray(y_pred, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise DataError("y_pred", f"must be numeric: {exc}") from None
    t = t.reshape(len(t), -1) if t.ndim else t.reshape(1, 1)
    p = p.reshape(len(p), -1) if p.ndim else p.reshape(1, 1)
    if t.shape != p.shape:
        raise DataError("y_pred", f"has shape {p.shape} but y_true has {t.shape}")
    if len(t) == 0:
        raise DataError("y_true", "is empty")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise DataError("y_pred", "contains NaN or infinite values")
    return t, p


def mse(y_true: Any, y_pred: Any) -> float:
    """Mean squared error, averaged over outputs too."""
    t, p = _targets(y_true, y_pred)
    return float(np.mean((t - p) ** 2))


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error, averaged over outputs too."""
    t, p = _targets(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


def r2(y_true: Any, y_pred: Any) -> float:
    """Coefficient of determination, the uniform mean over outputs.

    A constant target gives 1.0 when predicted exactly and 0.0 otherwise (sklearn's
    ``force_finite``), never NaN or -inf.
    """
    t, p = _targets(y_true, y_pred)
    ss_res = ((t - p) ** 2).sum(axis=0)
    ss_tot = ((t - t.mean(axis=0)) ** 2).sum(axis=0)
    scores = np.where(ss_res == 0, 1.0, 0.0)
    ok = ss_tot != 0
    scores[ok] = 1.0 - ss_res[ok] / ss_tot[ok]
    return float(scores.mean())


def _plain(value: Any) -> Any:
    """NumPy scalar -> Python int/float/str/bool for JSON."""
    return value.item() if isinstance(value, np.generic) else value


def classification_report(
    y_true: Any, y_pred: Any, y_score: Any = None, labels: Any = None
) -> dict[str, Any]:
    """Accuracy, per-class and averaged precision/recall/F1, the confusion matrix and, when
    binary scores for the second label are given, ROC AUC. Plain ints/floats/lists only."""
    t, p = _pair(y_true, y_pred)
    order, prec, rec, f1s, support = per_class_scores(t, p, labels)
    cm = confusion_matrix(t, p, order)
    names = [_plain(v) for v in order]
    report: dict[str, Any] = {
        "n_samples": len(t),
        "accuracy": accuracy(t, p),
        "labels": names,
        "per_class": {
            str(name): {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1s[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "macro": {
            "precision": float(prec.mean()),
            "recall": float(rec.mean()),
            "f1": float(f1s.mean()),
        },
        "weighted": dict(
            zip(
                ("precision", "recall", "f1"),
                precision_recall_f1(t, p, "weighted", labels=order),
                strict=True,
            )
        ),
        "confusion_matrix": cm.tolist(),
    }
    if y_score is not None and len(order) == 2:
        present = np.unique(t)
        report["roc_auc"] = roc_auc(t, y_score, pos_label=order[1]) if len(present) == 2 else None
    return report


def regression_report(y_true: Any, y_pred: Any) -> dict[str, Any]:
    """MSE, RMSE, MAE and R^2 as plain floats."""
    t, p = _targets(y_true, y_pred)
    err = mse(t, p)
    return {
        "n_samples": len(t),
        "mse": err,
        "rmse": float(np.sqrt(err)),
        "mae": mae(t, p),
        "r2": r2(t, p),
    }
