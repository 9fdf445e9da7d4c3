"""Final metrics of a trained model, stored with its model version.

Computed on the held-out test split, never on data the model trained on: a classification
report with the confusion matrix (and ROC AUC for two classes) for classifiers, MSE/RMSE/MAE/R2
for regression, plus the last epoch's training and validation figures.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nn_core.errors import DataError
from nn_core.metrics import classification_report, regression_report
from nn_core.training import Trainer


def json_safe(value: Any) -> Any:
    """NumPy scalars to Python, NaN/inf to None (Postgres JSON refuses NaN)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def holdout_report(trainer: Trainer, x_test: np.ndarray, y_test: np.ndarray) -> dict[str, Any]:
    """Loss/accuracy on the test split plus the task's report (or why it is missing)."""
    model = trainer.model
    if len(x_test) == 0:
        return {"n_samples": 0}
    try:
        result: dict[str, Any] = dict(trainer.evaluate(x_test, y_test))
        if model.is_classifier and model.labels is not None:
            scores = model.predict(x_test)
            predicted = model.labels_from_outputs(scores)
            binary = len(model.labels.classes) == 2 and scores.shape[1] <= 2
            report = classification_report(
                y_test,
                predicted,
                y_score=scores if binary else None,
                labels=model.labels.classes,
            )
        elif model.is_classifier:
            report = {}
        else:
            report = regression_report(y_test, model.predict(x_test))
    except DataError as exc:  # e.g. a label in the test split the model never saw
        return {"n_samples": len(x_test), "report_error": exc.message}
    return {**report, **result}


def final_metrics(
    trainer: Trainer,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    dataset: str,
    n_train: int,
) -> dict[str, Any]:
    model = trainer.model
    last = dict(trainer.history[-1]) if trainer.history else {}
    return json_safe(
        {
            "task": "classification" if model.is_classifier else "regression",
            "dataset": dataset,
            "n_train": n_train,
            "n_test": len(x_test),
            "epochs": trainer.epoch,
            "stop_reason": trainer.stop_reason,
            "test": holdout_report(trainer, x_test, y_test),
            "final_epoch": last,
        }
    )
