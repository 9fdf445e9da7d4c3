"""Training callbacks: progress reporting, periodic checkpoints and cooperative cancellation.

Callbacks see the Trainer; to stop training they call ``trainer.request_stop(reason)``, which
the loop honours after the current batch. This module does not import nn_core.training (which
imports it): a callback is generic in the trainer it is handed, and relies only on the
`TrainerLike` protocol, so `Progress(report)` is typed by what `report` takes.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar


class TrainerLike(Protocol):
    """What these callbacks use of the trainer running them (nn_core.training.Trainer)."""

    @property
    def epoch(self) -> int:
        """Completed epochs."""
        ...

    @property
    def stop_reason(self) -> str | None: ...

    def request_stop(self, reason: str) -> None: ...


T = TypeVar("T", bound=TrainerLike)


class Callback(Generic[T]):
    def on_train_begin(self, trainer: T) -> None:
        pass

    def on_batch_end(self, trainer: T, batch: int) -> None:
        pass

    def on_epoch_end(self, trainer: T, logs: dict[str, Any]) -> None:
        pass

    def on_train_end(self, trainer: T) -> None:
        pass


class Progress(Callback[T]):
    """Calls `report(trainer, logs)` after every epoch."""

    def __init__(self, report: Callable[[T, dict[str, Any]], None]) -> None:
        self.report = report

    def on_epoch_end(self, trainer: T, logs: dict[str, Any]) -> None:
        self.report(trainer, logs)


class Checkpoint(Callback[T]):
    """Calls `save(trainer)` every `every` completed epochs (the caller serialises the state)."""

    def __init__(self, save: Callable[[T], None], every: int = 1) -> None:
        self.save = save
        self.every = max(1, every)

    def on_epoch_end(self, trainer: T, logs: dict[str, Any]) -> None:
        if trainer.epoch % self.every == 0 and trainer.stop_reason is None:
            self.save(trainer)


class Cancel(Callback[TrainerLike]):
    """Polls `should_cancel()` at most every `interval` seconds (it may hit a database) and
    stops training with reason "cancelled" once it answers True."""

    def __init__(self, should_cancel: Callable[[], bool], interval: float = 0.5) -> None:
        self.should_cancel = should_cancel
        self.interval = interval
        self._last = 0.0

    def _poll(self, trainer: TrainerLike) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            return
        self._last = now
        if self.should_cancel():
            trainer.request_stop("cancelled")

    def on_batch_end(self, trainer: TrainerLike, batch: int) -> None:
        self._poll(trainer)

    def on_epoch_end(self, trainer: TrainerLike, logs: dict[str, Any]) -> None:
        self._poll(trainer)
