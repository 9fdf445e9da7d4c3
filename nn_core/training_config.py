"""The ``training`` part of a spec: epochs, batches, validation and early stopping."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from nn_core.errors import SpecError
from nn_core.params import (
    check_bool,
    check_choice,
    check_int,
    check_keys,
    check_number,
    check_object,
)

MAX_SEED = 2**63 - 1
#: Rows per mini-batch at most: far more than any upload holds, yet a bound, so a spec (or a
#: request overriding it) can never ask for an absurd slice.
MAX_BATCH_SIZE = 1_000_000


@dataclass(frozen=True)
class EarlyStoppingConfig:
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.
    mode "auto" minimises losses and errors and maximises everything else (accuracy, f1...)."""

    monitor: str = "val_loss"
    mode: str = "auto"
    patience: int = 10
    min_delta: float = 0.0
    restore_best_weights: bool = True

    @property
    def minimize(self) -> bool:
        if self.mode != "auto":
            return self.mode == "min"
        return any(word in self.monitor for word in ("loss", "error", "mse", "mae"))


@dataclass(frozen=True)
class DiagnosticsConfig:
    """Per-layer statistics every `every` epochs on a fixed sample of `sample` training rows
    (nn_core/diagnostics.py); a fixed sample keeps epochs comparable and the cost small."""

    every: int = 1
    sample: int = 256


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int = 10
    batch_size: int = 32
    validation_split: float = 0.0
    shuffle: bool = True
    seed: int = 0
    early_stopping: EarlyStoppingConfig | None = None
    diagnostics: DiagnosticsConfig | None = DiagnosticsConfig()

    def config(self) -> dict[str, Any]:
        out = asdict(self)
        out["early_stopping"] = None if self.early_stopping is None else asdict(self.early_stopping)
        out["diagnostics"] = False if self.diagnostics is None else asdict(self.diagnostics)
        return out


def build_early_stopping(config: Any, field: str) -> EarlyStoppingConfig | None:
    if config is None or config is False:
        return None
    if config is True:
        return EarlyStoppingConfig()
    check_object(config, field)
    check_keys(config, field, EarlyStoppingConfig.__dataclass_fields__)
    defaults = EarlyStoppingConfig()
    monitor = config.get("monitor", defaults.monitor)
    if not isinstance(monitor, str) or not monitor:
        raise SpecError(f"{field}.monitor", "must be a metric name such as 'val_loss'")
    return EarlyStoppingConfig(
        monitor=monitor,
        mode=check_choice(
            config.get("mode", defaults.mode), f"{field}.mode", ("auto", "min", "max")
        ),
        patience=check_int(config.get("patience", defaults.patience), f"{field}.patience", low=0),
        min_delta=check_number(config.get("min_delta", 0.0), f"{field}.min_delta", low=0.0),
        restore_best_weights=check_bool(
            config.get("restore_best_weights", True), f"{field}.restore_best_weights"
        ),
    )


def build_diagnostics(config: Any, field: str) -> DiagnosticsConfig | None:
    """`false` (or null) turns them off, `true` or absent means the defaults."""
    if config is None or config is False:
        return None
    if config is True:
        return DiagnosticsConfig()
    check_object(config, field)
    check_keys(config, field, DiagnosticsConfig.__dataclass_fields__)
    return DiagnosticsConfig(
        every=check_int(config.get("every", 1), f"{field}.every", low=1, high=1_000_000),
        sample=check_int(config.get("sample", 256), f"{field}.sample", low=1, high=10_000),
    )


def build_training(config: Any, field: str = "training") -> TrainingConfig:
    if config is None:
        config = {}
    check_object(config, field)
    check_keys(config, field, TrainingConfig.__dataclass_fields__)
    defaults = TrainingConfig()
    return TrainingConfig(
        epochs=check_int(config.get("epochs", defaults.epochs), f"{field}.epochs", low=1),
        batch_size=check_int(
            config.get("batch_size", defaults.batch_size),
            f"{field}.batch_size",
            low=1,
            high=MAX_BATCH_SIZE,
        ),
        validation_split=check_number(
            config.get("validation_split", 0.0),
            f"{field}.validation_split",
            low=0.0,
            high=1.0,
            high_open=True,
        ),
        shuffle=check_bool(config.get("shuffle", True), f"{field}.shuffle"),
        seed=check_int(config.get("seed", 0), f"{field}.seed", low=0, high=MAX_SEED),
        early_stopping=build_early_stopping(
            config.get("early_stopping"), f"{field}.early_stopping"
        ),
        diagnostics=build_diagnostics(config.get("diagnostics", True), f"{field}.diagnostics"),
    )
