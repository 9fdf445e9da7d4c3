"""Learning-rate schedules, evaluated once per epoch (epoch = 0-based index of the epoch about
to run), so a resumed run gets exactly the rates it would have had without the interruption.

  constant           lr
  step               lr * gamma ** (epoch // step_size)
  exponential        lr * gamma ** epoch
  cosine             min_lr + (lr - min_lr) * (1 + cos(pi * min(epoch, t_max) / t_max)) / 2
  reduce_on_plateau  multiply by `factor` after `patience` epochs without improvement of
                     `monitor` by more than `min_delta`, never below `min_lr`
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from nn_core.errors import SpecError
from nn_core.params import Configurable, check_choice, check_int, check_number, check_object

SCHEDULES: dict[str, type[Schedule]] = {}


def register(cls: type[Schedule]) -> type[Schedule]:
    SCHEDULES[cls.name] = cls
    return cls


class Schedule(Configurable):
    """Built as ``StepDecay(step_size=10, gamma=0.1)``, or from
    ``{"name": "step", "step_size": 10, "gamma": 0.1}`` with `build_schedule`."""

    kind_key = "name"
    name: ClassVar[str] = ""
    #: the metric `update` reads each epoch, if any (the trainer checks it will be computed)
    monitor: str | None = None

    def lr(self, base_lr: float, epoch: int) -> float:
        return base_lr

    def update(self, logs: dict[str, Any]) -> None:
        """Called after each epoch with its metrics."""

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def state(self) -> dict[str, Any]:
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        pass


@register
class Constant(Schedule):
    name = "constant"


@register
class StepDecay(Schedule):
    name = "step"

    def __init__(self, step_size: int = 10, gamma: float = 0.1) -> None:
        self.step_size = check_int(step_size, "step_size", low=1)
        self.gamma = check_number(gamma, "gamma", low=0.0, high=1.0)

    def lr(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "step_size": self.step_size, "gamma": self.gamma}


@register
class Exponential(Schedule):
    name = "exponential"

    def __init__(self, gamma: float = 0.95) -> None:
        self.gamma = check_number(gamma, "gamma", low=0.0, high=1.0)

    def lr(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma**epoch

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "gamma": self.gamma}


@register
class Cosine(Schedule):
    name = "cosine"

    def __init__(self, t_max: int | None = None, min_lr: float = 0.0) -> None:
        """`t_max` None: the training's epochs."""
        self.t_max = None if t_max is None else check_int(t_max, "t_max", low=1)
        self.min_lr = check_number(min_lr, "min_lr", low=0.0)
        #: filled from training.epochs when t_max is not given
        self.default_t_max = 1

    def lr(self, base_lr: float, epoch: int) -> float:
        t_max = self.t_max or self.default_t_max
        progress = min(epoch, t_max) / t_max
        return self.min_lr + (base_lr - self.min_lr) * 0.5 * (1.0 + math.cos(math.pi * progress))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "t_max": self.t_max, "min_lr": self.min_lr}


@register
class ReduceOnPlateau(Schedule):
    name = "reduce_on_plateau"

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 5,
        min_delta: float = 0.0,
        min_lr: float = 0.0,
    ) -> None:
        self.monitor: str = str(monitor)
        self.mode = check_choice(mode, "mode", ("min", "max"))
        self.factor = check_number(
            factor, "factor", low=0.0, high=1.0, low_open=True, high_open=True
        )
        self.patience = check_int(patience, "patience", low=0)
        self.min_delta = check_number(min_delta, "min_delta", low=0.0)
        self.min_lr = check_number(min_lr, "min_lr", low=0.0)
        self.scale = 1.0
        self.best: float | None = None
        self.bad_epochs = 0

    def lr(self, base_lr: float, epoch: int) -> float:
        return max(base_lr * self.scale, self.min_lr)

    def update(self, logs: dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if value is None:
            return
        improved = self.best is None or (
            value < self.best - self.min_delta
            if self.mode == "min"
            else value > self.best + self.min_delta
        )
        if improved:
            self.best, self.bad_epochs = float(value), 0
            return
        self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            self.scale *= self.factor
            self.bad_epochs = 0

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "monitor": self.monitor,
            "mode": self.mode,
            "factor": self.factor,
            "patience": self.patience,
            "min_delta": self.min_delta,
            "min_lr": self.min_lr,
        }

    def state(self) -> dict[str, Any]:
        return {"scale": self.scale, "best": self.best, "bad_epochs": self.bad_epochs}

    def load_state(self, state: dict[str, Any]) -> None:
        self.scale = float(state["scale"])
        self.best = None if state["best"] is None else float(state["best"])
        self.bad_epochs = int(state["bad_epochs"])


def build_schedule(config: Any, field: str = "schedule") -> Schedule:
    if config is None:
        config = {"name": "constant"}
    if isinstance(config, str):
        config = {"name": config}
    check_object(config, field)
    name = config.get("name")
    if name not in SCHEDULES:
        raise SpecError(f"{field}.name", f"unknown schedule {name!r}", SCHEDULES)
    return SCHEDULES[name].from_config(config, field)
