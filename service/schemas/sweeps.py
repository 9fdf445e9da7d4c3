"""Request and response models of the sweeps API (hyperparameter studies).

The search space, sampler and pruner are checked in service/sweeps/submit.py, where every
error can name its path (e.g. search_space.layers[0].units.high).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service.schemas.jobs import MODEL_NAME_PATTERN, ModelVersionRef
from service.schemas.types import WHOLE

SweepStatusName = Literal["queued", "running", "succeeded", "failed", "cancelled"]
TrialStateName = Literal["running", "complete", "pruned", "failed", "cancelled"]


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: str = Field(
        min_length=1,
        max_length=64,
        description="A per-epoch training metric: loss, accuracy, or val_loss, val_accuracy "
        "(which need training.validation_split)",
        examples=["val_accuracy"],
    )
    direction: Literal["maximize", "minimize"] = "maximize"


class SweepSubmit(BaseModel):
    """Tune `spec` on `dataset`: each trial trains the spec with sampled values at the search
    space's paths as an ordinary job; the best trial becomes a version of `model_name`."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    dataset: str = Field(min_length=1, max_length=200, examples=["xor"])
    model_name: str = Field(pattern=MODEL_NAME_PATTERN, examples=["xor-sweep"])
    spec: dict[str, Any] | Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="An nn_core spec, or a preset name (GET /v1/presets)"
    )
    search_space: dict[str, dict[str, Any]] = Field(
        description="Spec path -> parameter: {type: float|int, low, high, log?, step?} or "
        "{type: categorical, choices}. Paths: optimizer.lr, layers[0].units, "
        "layers[*].activation (every layer), layers[:-1].units (all but the last)",
        examples=[
            {
                "optimizer.lr": {"type": "float", "low": 0.001, "high": 0.1, "log": True},
                "layers[0].units": {"type": "int", "low": 2, "high": 64},
                "layers[0].activation": {"type": "categorical", "choices": ["tanh", "relu"]},
            }
        ],
    )
    objective: Objective = Field(default_factory=lambda: Objective(metric="val_accuracy"))
    n_trials: Annotated[int, Field(strict=True, ge=1, le=1000), WHOLE] = 20
    max_parallel: Annotated[int, Field(strict=True, ge=1, le=64), WHOLE] = 2
    sampler: Literal["tpe", "random", "grid", "cmaes"] = "tpe"
    pruner: str | dict[str, Any] = Field(
        default="median",
        description='"median", "successive_halving", "hyperband" or "none"; or an object '
        'with a name and options, e.g. {"name": "median", "n_startup_trials": 5, '
        '"n_warmup_steps": 2}',
    )
    seed: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1), WHOLE] | None = Field(
        default=None, description="Seeds the sampler (default: random, stored)"
    )
    initial_trials: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=1000,
        description="Parameters of the first trials, as known starting points (Optuna's "
        "enqueue_trial); every parameter must be given",
    )
    epochs: Annotated[int, Field(strict=True, ge=1), WHOLE] | None = Field(
        default=None, description="Overrides spec.training.epochs"
    )
    validation_split: float | None = Field(
        default=None, ge=0.0, lt=1.0, strict=True, description="Overrides training.validation_split"
    )
    test_fraction: float | None = Field(default=None, gt=0.0, lt=1.0, strict=True)
    n_samples: Annotated[int, Field(strict=True, ge=10, le=100_000), WHOLE] | None = None
    noise: float | None = Field(default=None, ge=0.0, le=1.0, strict=True)


class TrialResponse(BaseModel):
    number: int
    state: TrialStateName
    params: dict[str, Any]
    value: float | None = Field(description="The objective at the trial's last epoch")
    job_id: str | None
    job_status: str | None = Field(description="The trial job's status")
    epoch: int = Field(description="Epochs the trial job has completed")
    intermediate_values: dict[int, float] = Field(
        default_factory=dict, description="Objective per epoch (what the pruner saw)"
    )
    failure_reason: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class BestTrial(BaseModel):
    number: int
    job_id: str | None
    params: dict[str, Any]
    value: float
    model_version: ModelVersionRef | None = Field(
        description="The version registered from it, once the sweep has succeeded"
    )


class SweepLinks(BaseModel):
    self: str
    events: str
    cancel: str
    jobs: str = Field(description="The sweep's trial jobs (GET /v1/jobs?sweep_id=...)")


class SweepResponse(BaseModel):
    id: str = Field(examples=["sweep_9f2c4e1a7b3d5f60"])
    status: SweepStatusName
    model_name: str
    dataset: str
    objective: Objective
    n_trials: int
    max_parallel: int
    sampler: str
    pruner: dict[str, Any]
    seed: int
    search_space: dict[str, Any]
    spec: dict[str, Any] = Field(description="The base spec every trial starts from")
    counts: dict[str, int] = Field(
        description="Trials by state: running, complete, pruned, failed, cancelled"
    )
    best_trial: BestTrial | None
    importances: dict[str, float] | None = Field(
        description="Optuna's parameter importances (sum to 1), once the sweep has finished "
        "with at least two complete trials"
    )
    cancel_requested: bool
    failure_reason: str | None
    trials: list[TrialResponse]
    created_at: datetime
    finished_at: datetime | None
    links: SweepLinks


class SweepSummary(BaseModel):
    id: str
    status: SweepStatusName
    model_name: str
    dataset: str
    n_trials: int
    counts: dict[str, int]
    created_at: datetime
    finished_at: datetime | None


class SweepList(BaseModel):
    items: list[SweepSummary]
    total: int
    limit: int
    offset: int
    next_offset: int | None
