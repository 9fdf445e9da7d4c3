"""The fit loop: shuffled mini-batches, validation, schedules, early stopping, callbacks.

A Trainer owns everything that changes while training besides the model's parameters: the
random stream (shuffling and dropout), the completed-epoch count, the history and the
early-stopping state. `nn_core.serialize.save_state` stores all of it, so training 2N epochs
gives bit-for-bit the same model as training N, saving, loading and training N more.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from nn_core.callbacks import Callback
from nn_core.errors import DataError, SpecError
from nn_core.model import Model
from nn_core.rng import split_rng, train_rng

#: why a fit call ended
COMPLETED = "completed"
EARLY_STOPPING = "early_stopping"
CANCELLED = "cancelled"
NON_FINITE_LOSS = "non_finite_loss"
NON_FINITE_WEIGHTS = "non_finite_weights"
EPOCHS_DONE = "epochs_done"  # the requested number of epochs ran, more remain in the spec


class EarlyStopping:
    """State of early stopping on a monitored metric, with restore-best-weights."""

    def __init__(self, model: Model) -> None:
        cfg = model.training.early_stopping
        assert cfg is not None
        self.cfg = cfg
        self.best: float | None = None
        self.best_epoch = 0
        self.wait = 0
        self.best_params: np.ndarray | None = None
        self.best_buffers: dict[str, np.ndarray] = {}

    def update(self, model: Model, logs: dict[str, Any]) -> bool:
        """Record this epoch; True when training should stop."""
        value = logs.get(self.cfg.monitor)
        if value is None:
            raise SpecError(
                "training.early_stopping.monitor",
                f"metric {self.cfg.monitor!r} is not "
                f"computed; available: {', '.join(sorted(logs))}",
            )
        delta = self.cfg.min_delta
        improved = self.best is None or (
            value < self.best - delta if self.cfg.minimize else value > self.best + delta
        )
        if improved:
            self.best, self.best_epoch, self.wait = float(value), int(logs["epoch"]), 0
            if self.cfg.restore_best_weights:
                self.best_params = model.params.copy()
                self.best_buffers = {k: v.copy() for k, v in model.named_buffers().items()}
            return False
        self.wait += 1
        return self.wait >= self.cfg.patience

    def restore(self, model: Model) -> None:
        if self.cfg.restore_best_weights and self.best_params is not None:
            model.params[...] = self.best_params
            for key, buf in model.named_buffers().items():
                buf[...] = self.best_buffers[key]


class Trainer:
    def __init__(self, model: Model) -> None:
        self.model = model
        self.rng = train_rng(model.training.seed)
        self.epoch = 0  # completed epochs
        self.history: list[dict[str, Any]] = []
        self.stop_reason: str | None = None
        self.early = EarlyStopping(model) if model.training.early_stopping else None
        self._batch: tuple[np.ndarray, np.ndarray] | None = None
        #: the encoded training split while `fit` runs (callbacks such as Diagnostics read it)
        self.train_data: tuple[np.ndarray, np.ndarray] | None = None

    # ----------------------------------------------------------------- data

    def split(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Train/validation row indices from the spec's validation_split (same every call)."""
        fraction = self.model.training.validation_split
        order = split_rng(self.model.training.seed).permutation(n)
        n_val = round(n * fraction)
        if fraction > 0 and (n_val == 0 or n_val == n):
            raise DataError("training.validation_split", f"leaves an empty split of {n} rows")
        return np.sort(order[n_val:]), np.sort(order[:n_val])

    def prepare(
        self, x: Any, y: Any, validation_data: tuple[Any, Any] | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Encode inputs/targets; fit preprocessing on the training split the first time."""
        x_arr = x if isinstance(x, np.ndarray) else np.asarray(x)
        y_arr = y if isinstance(y, np.ndarray) else np.asarray(y)
        if len(x_arr) != len(y_arr):
            raise DataError("y", f"has {len(y_arr)} rows but X has {len(x_arr)}")
        if len(x_arr) == 0:
            raise DataError("X", "is empty")
        if validation_data is None and self.model.training.validation_split > 0:
            train_idx, val_idx = self.split(len(x_arr))
            validation_data = (x_arr[val_idx], y_arr[val_idx])
            x_arr, y_arr = x_arr[train_idx], y_arr[train_idx]
        if not self.fitted:
            self.model.fit_preprocessing(x_arr, y_arr)
        x_val = t_val = None
        if validation_data is not None:
            x_val = self.model.encode_inputs(validation_data[0], "X_val")
            t_val = self.model.encode_targets(validation_data[1], "y_val")
        return self.model.encode_inputs(x_arr), self.model.encode_targets(y_arr), x_val, t_val

    @property
    def fitted(self) -> bool:
        model = self.model
        transforms = all(t.fitted for t in model.preprocess)
        return transforms and (model.labels is not None or not model.is_classifier)

    # ----------------------------------------------------------------- training

    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason

    def fit(
        self,
        x: Any,
        y: Any,
        *,
        validation_data: tuple[Any, Any] | None = None,
        epochs: int | None = None,
        callbacks: list[Callback] | None = None,
    ) -> list[dict[str, Any]]:
        """Train `epochs` more epochs (default: up to the spec's training.epochs in total).

        Returns the history of every epoch so far; `stop_reason` says why this call ended.
        """
        model, cfg = self.model, self.model.training
        target = cfg.epochs if epochs is None else self.epoch + epochs
        callbacks = callbacks or []
        x_tr, t_tr, x_val, t_val = self.prepare(x, y, validation_data)
        self._check_monitors(x_val is not None)
        self.stop_reason = None
        self.train_data = (x_tr, t_tr)
        for cb in callbacks:
            cb.on_train_begin(self)
        x_buf, t_buf = self._batch_buffers(x_tr, t_tr)
        # Overflow is detected (non-finite loss or weights stop training with a reason), so
        # NumPy's warnings would only be noise.
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while self.epoch < target and self.stop_reason is None:
                logs = self._run_epoch(x_tr, t_tr, x_buf, t_buf, callbacks)
                if logs is None:
                    break
                if x_val is not None and t_val is not None:
                    logs.update(self.evaluate_encoded(x_val, t_val, prefix="val_"))
                self._end_epoch(logs, callbacks)
        if self.stop_reason is None:
            self.stop_reason = COMPLETED if self.epoch >= cfg.epochs else EPOCHS_DONE
        if self.early is not None and self.stop_reason in (COMPLETED, EARLY_STOPPING):
            self.early.restore(model)
        for cb in callbacks:
            cb.on_train_end(self)
        self.train_data = None
        return self.history

    def _batch_buffers(self, x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One batch of inputs and targets, gathered in place from the shuffled rows.

        Gathering each batch into these small buffers, rather than a shuffled copy of the
        whole set each epoch, spares writing and re-reading that copy (188 MB for
        Fashion-MNIST) and hands the matrix products a batch that is still in cache: about
        9% of an epoch at batch 128. Kept across fit calls."""
        bs = self.model.training.batch_size
        shapes = ((bs, *x.shape[1:]), (bs, *t.shape[1:]))
        old = self._batch
        if old is None or any(
            buf.shape != shape or buf.dtype != arr.dtype
            for buf, shape, arr in zip(old, shapes, (x, t), strict=True)
        ):
            self._batch = (np.empty(shapes[0], x.dtype), np.empty(shapes[1], t.dtype))
        assert self._batch is not None
        return self._batch

    def _check_monitors(self, has_validation: bool) -> None:
        if has_validation:
            return
        es = self.model.training.early_stopping
        if es is not None and es.monitor.startswith("val_"):
            raise SpecError(
                "training.early_stopping.monitor",
                f"{es.monitor!r} needs validation "
                "data: set training.validation_split or pass a validation set",
            )
        monitor = self.model.schedule.monitor
        if monitor is not None and monitor.startswith("val_"):
            raise SpecError("schedule.monitor", f"{monitor!r} needs validation data")

    def _run_epoch(
        self,
        x_tr: np.ndarray,
        t_tr: np.ndarray,
        x_buf: np.ndarray,
        t_buf: np.ndarray,
        callbacks: list[Callback],
    ) -> dict[str, Any] | None:
        model, cfg = self.model, self.model.training
        started = time.perf_counter()
        lr = model.schedule.lr(model.optimizer.lr, self.epoch)
        order = self.rng.permutation(len(x_tr)) if cfg.shuffle else None
        regularized = model.regularized
        n, bs = len(x_tr), cfg.batch_size
        total_loss, correct = 0.0, 0
        for batch, start in enumerate(range(0, n, bs)):
            if order is None:
                xb, tb = x_tr[start : start + bs], t_tr[start : start + bs]
            else:
                rows = order[start : start + bs]
                # np.take into the preallocated buffers: no hidden copy.
                xb = np.take(x_tr, rows, axis=0, out=x_buf[: len(rows)], mode="clip")
                tb = np.take(t_tr, rows, axis=0, out=t_buf[: len(rows)], mode="clip")
            out = model.forward(xb, training=True, rng=self.rng)
            loss, grad = model.loss.value_and_grad(out, tb)
            if regularized:
                loss += model.penalty()
            if not math.isfinite(loss):
                self.stop_reason = NON_FINITE_LOSS
                return None
            model.backward(grad)
            model.optimizer.step(model.params, model.grads, lr)
            total_loss += loss * len(xb)
            if model.is_classifier:
                correct += model.head.count_correct(out, tb)
            for cb in callbacks:
                cb.on_batch_end(self, batch)
            if self.stop_reason is not None:
                return None
        logs: dict[str, Any] = {"epoch": self.epoch + 1, "loss": total_loss / n}
        if model.is_classifier:
            logs["accuracy"] = correct / n
        logs["lr"] = lr
        logs["seconds"] = time.perf_counter() - started
        return logs

    def _end_epoch(self, logs: dict[str, Any], callbacks: list[Callback]) -> None:
        model = self.model
        self.epoch += 1
        self.history.append(logs)
        if not np.isfinite(model.params).all():
            self.stop_reason = NON_FINITE_WEIGHTS
        model.schedule.update(logs)
        if self.early is not None and self.stop_reason is None and self.early.update(model, logs):
            self.stop_reason = EARLY_STOPPING
        for cb in callbacks:
            cb.on_epoch_end(self, logs)

    # ----------------------------------------------------------------- evaluation

    def evaluate_encoded(self, x: np.ndarray, t: np.ndarray, prefix: str = "") -> dict[str, float]:
        """Loss (with penalties) and accuracy in evaluation mode on encoded data."""
        model = self.model
        total, correct, batch = 0.0, 0, 4096
        for start in range(0, len(x), batch):
            out = model.forward(x[start : start + batch])
            tb = t[start : start + batch]
            total += model.loss.value(out, tb) * len(out)
            if model.is_classifier:
                correct += model.head.count_correct(out, tb)
        result = {f"{prefix}loss": total / len(x) + model.penalty()}
        if model.is_classifier:
            result[f"{prefix}accuracy"] = correct / len(x)
        return result

    def evaluate(self, x: Any, y: Any, prefix: str = "") -> dict[str, float]:
        return self.evaluate_encoded(
            self.model.encode_inputs(x), self.model.encode_targets(y), prefix
        )


def train(model: Model, x: Any, y: Any, **kwargs: Any) -> Trainer:
    """Convenience: a fresh Trainer fitted for the spec's epochs."""
    trainer = Trainer(model)
    trainer.fit(x, y, **kwargs)
    return trainer
