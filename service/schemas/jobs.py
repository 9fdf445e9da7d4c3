"""Request and response models of the training-jobs API (the public contract in OpenAPI).

Only the shape of a request is checked here. What depends on settings (epochs, parameter
count, per-key job limit) or on nn_core (whether the spec builds) is checked when the job is
created, in service/jobs/submit.py, so every such error still names its field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
)

from nn_core.training_config import MAX_BATCH_SIZE, MAX_SEED
from service.schemas.diagnostics import TrainingWarning
from service.schemas.types import WHOLE

#: The largest `learning_rate` override: well above any rate that trains (the Playground's
#: and the range test's default top is 10), and finite, so 1e308 cannot reach the optimizer.
MAX_LEARNING_RATE = 1e3

#: Model names appear in URLs (/v1/models/{name}:predict), so they are kept URL-safe.
MODEL_NAME_PATTERN = r"^[A-Za-z0-9_.\-]{1,64}$"


#: What POST /v1/jobs accepts; batch predictions are submitted at /v1/batch-predictions.
SubmitKind = Literal["train", "lr_range_test"]
#: What a job is, as the job views report it.
JobKind = Literal["train", "lr_range_test", "batch_predict"]


class LRRangeOptions(BaseModel):
    """The learning-rate range test's sweep: `num_steps` mini-batches at rates rising
    exponentially from `min_lr` to `max_lr` (nn_core/lr_finder.py)."""

    model_config = ConfigDict(extra="forbid")

    min_lr: float = Field(
        default=1e-7, gt=0.0, le=1e6, allow_inf_nan=False, strict=True, description="First rate"
    )
    max_lr: float = Field(
        default=10.0,
        gt=0.0,
        le=1e6,
        allow_inf_nan=False,
        strict=True,
        description="Last rate; above min_lr",
    )
    num_steps: Annotated[int, Field(strict=True, ge=10, le=1000), WHOLE] = Field(
        default=100, description="Mini-batches (the test stops sooner once the loss blows up)"
    )


class JobSubmit(BaseModel):
    """Train `spec` on `dataset`; on success the model is registered as a new version of
    `model_name`. The overrides replace the matching spec values (e.g. `epochs` sets
    spec.training.epochs) so one spec file can serve many runs."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    spec: dict[str, Any] | Annotated[str, StringConstraints(min_length=1, max_length=100)] = Field(
        description="An nn_core model spec (input_dim, layers, loss, optimizer, training "
        '...), or the name of a preset from GET /v1/presets (e.g. "mnist-mlp", '
        '"spam-mlp"); the overrides below apply on top of either.',
        examples=[
            {
                "input_dim": 2,
                "layers": [
                    {"type": "dense", "units": 8, "activation": "tanh"},
                    {"type": "dense", "units": 2, "activation": "softmax"},
                ],
                "loss": "categorical_crossentropy",
                "optimizer": {"name": "adam", "lr": 0.05},
                "training": {"epochs": 50, "batch_size": 16},
            },
            "spam-mlp",
        ],
    )
    dataset: str = Field(
        min_length=1,
        max_length=200,
        description="A built-in dataset name (GET /v1/datasets) or the id or name of an upload.",
        examples=["xor"],
    )
    model_name: str = Field(
        pattern=MODEL_NAME_PATTERN,
        description="Model to register the trained version under (1-64 of A-Z a-z 0-9 _ . -).",
        examples=["xor-classifier"],
    )
    test_fraction: float | None = Field(
        default=None,
        gt=0.0,
        lt=1.0,
        strict=True,
        description="Held-out fraction for datasets without an official test split "
        "(default: the upload's own setting, else 0.2).",
    )
    test_dataset: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="The id or name of an upload used as the test split as is (every row), "
        "for a training upload sent with test_fraction 0; same columns and classes.",
    )
    # Numbers are strict (true is not 1, "3" is not 3); integers still accept 3.0.
    epochs: Annotated[int, Field(strict=True, ge=1), WHOLE] | None = Field(
        default=None, description="Overrides spec.training.epochs"
    )
    batch_size: Annotated[int, Field(strict=True, ge=1, le=MAX_BATCH_SIZE), WHOLE] | None = Field(
        default=None, description="Overrides spec.training.batch_size"
    )
    seed: Annotated[int, Field(strict=True, ge=0, le=MAX_SEED), WHOLE] | None = Field(
        default=None, description="Overrides spec.training.seed"
    )
    learning_rate: float | None = Field(
        default=None,
        gt=0.0,
        le=MAX_LEARNING_RATE,
        allow_inf_nan=False,
        strict=True,
        description="Overrides spec.optimizer.lr (finite, at most 1000)",
    )
    validation_split: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        strict=True,
        description="Overrides spec.training.validation_split",
    )
    n_samples: Annotated[int, Field(strict=True, ge=10, le=100_000), WHOLE] | None = Field(
        default=None,
        description="Synthetic datasets (xor, circle, gauss, spiral, plane, multi-gaussian) only: "
        "points to generate (default 1000)",
    )
    noise: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        strict=True,
        description="Synthetic datasets only: noise level, 0 to 0.5 as in the TensorFlow "
        "Playground (default 0)",
    )

    kind: SubmitKind = Field(
        default="train",
        description="train: train and register a version. lr_range_test: the learning-rate "
        "range test on the spec and dataset (lr_range), answering a loss curve and a "
        "suggested rate on the job (`lr_range`); it registers no version",
    )
    lr_range: LRRangeOptions | None = Field(
        default=None, description="lr_range_test only: the rates to try (defaults apply)"
    )

    @field_validator("spec", mode="wrap")
    @classmethod
    def _one_spec_error(cls, value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        """One error at `spec`, not one per union branch (dict[str,any], str)."""
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(
                "must be a spec object or a preset name (1-100 characters, see GET /v1/presets)"
            ) from None

    @field_validator("model_name")
    @classmethod
    def _not_only_dots(cls, value: str) -> str:
        if set(value) == {"."}:  # "." and ".." would be rewritten as URL path segments
            raise ValueError("must not consist of dots only")
        return value


class Progress(BaseModel):
    epoch: int = Field(description="Completed epochs")
    total_epochs: int = Field(description="Epochs in the spec (early stopping may end sooner)")
    percent: float = Field(ge=0.0, le=100.0)


class ModelVersionRef(BaseModel):
    """The model version a succeeded job registered."""

    model_config = ConfigDict(protected_namespaces=())

    id: int
    model_name: str
    version: int


class LRRangePoint(BaseModel):
    lr: float
    loss: float = Field(description="The mini-batch's loss at this rate")
    smoothed: float = Field(description="Bias-corrected moving average (beta 0.98) of the loss")


class LRRangeReport(BaseModel):
    """The range test's result: the curve and the rate where the smoothed loss fell fastest."""

    suggested_lr: float | None = Field(
        description="Steepest descent of the smoothed loss in log(lr), before its minimum; "
        "null when the loss never fell"
    )
    stop_reason: str = Field(description="finished | diverged (smoothed loss > 4x its best)")
    points: list[LRRangePoint]


class JobBatchReport(BaseModel):
    """A batch_predict job's batch: the version it predicts with and where its result is."""

    version: int = Field(description="The version of model_name, pinned at submit")
    split: str = Field(description="all | train | test")
    format: str = Field(description="csv | npz")
    rows: int | None = Field(description="Rows in the result file (succeeded only)")
    url: str = Field(description="The batch prediction (/v1/batch-predictions/{id})")
    result: str = Field(description="Its result file, once succeeded (410 once expired)")


class JobLinks(BaseModel):
    self: str
    metrics: str
    events: str
    cancel: str
    diagnostics: str = Field(description="Per-layer training statistics, per epoch")


class JobResponse(BaseModel):
    """A training job: state, progress, latest metrics and, once done, its outcome."""

    model_config = ConfigDict(protected_namespaces=())

    id: str = Field(examples=["job_9f2c4e1a7b3d5f60"])
    status: str = Field(
        description="queued | running | cancelling | succeeded | failed | cancelled",
        examples=["running"],
    )
    kind: JobKind = Field(
        default="train",
        description="train | lr_range_test | batch_predict (from POST /v1/batch-predictions)",
    )
    model_name: str
    dataset: str = Field(description="The dataset as submitted (name or upload id)")
    dataset_id: str | None = Field(description="The upload's id; null for built-in datasets")
    dataset_sha256: str | None = Field(
        default=None,
        description="Lineage: SHA-256 of the training upload's file as sent, recorded at "
        "submit (null for built-ins)",
    )
    test_dataset: str | None = Field(
        default=None, description="The test_dataset as submitted; null when none was named"
    )
    test_sha256: str | None = Field(
        default=None,
        description="Lineage: SHA-256 of the file the test rows came from when it is not the "
        "training file (the upload's test_file, or the test_dataset's file)",
    )
    spec: dict[str, Any] = Field(description="The complete spec, every default filled in")
    hyperparameters: dict[str, Any] = Field(description="Overrides and options as submitted")
    progress: Progress
    metrics: dict[str, Any] | None = Field(
        description="Metrics of the latest completed epoch (loss, accuracy, val_loss, lr ...)"
    )
    eta_seconds: float | None = Field(description="Estimated seconds until the last epoch")
    failure_reason: str | None
    warnings: list[TrainingWarning] = Field(
        default_factory=list,
        description="What looks wrong with how it trains (vanishing or exploding gradients, "
        "dead ReLUs, saturated units, rising loss, overfitting), each with its likely fix "
        "and the epoch it was first seen; from the per-layer diagnostics and the metrics",
    )
    cancel_requested: bool
    attempts: int = Field(description="Times a worker has started this job")
    model_version: ModelVersionRef | None = Field(
        description="The model version this job registered; null until it has succeeded"
    )
    test_metrics: dict[str, Any] | None = Field(
        description="Test-set metrics stored on that model version (held-out split: loss, "
        "accuracy, confusion matrix ... for classifiers; mse, r2 ... for regression); "
        "null until the version is registered",
    )
    lr_range: LRRangeReport | None = Field(
        default=None, description="A succeeded lr_range_test's curve and suggested rate"
    )
    batch: JobBatchReport | None = Field(
        default=None, description="A batch_predict job's version, split, rows and result link"
    )
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    links: JobLinks


class JobList(BaseModel):
    items: list[JobResponse]
    total: int = Field(description="Jobs matching the filter")
    limit: int
    offset: int
    next_offset: int | None = Field(description="Offset of the next page; null on the last")


class EpochMetrics(BaseModel):
    """One epoch of history. Keys besides these may appear (they are passed through)."""

    model_config = ConfigDict(extra="allow")

    epoch: int
    loss: float | None = None
    accuracy: float | None = None
    val_loss: float | None = None
    val_accuracy: float | None = None
    lr: float | None = None
    seconds: float | None = None


class MetricsPage(BaseModel):
    job_id: str
    items: list[EpochMetrics]
    total: int = Field(description="Epochs recorded so far")
    next_after_epoch: int | None = Field(
        description="Pass as after_epoch for the next page; null when nothing more is stored yet"
    )


class ProgressEvent(BaseModel):
    """Data of an SSE `progress` event (its SSE id is the epoch)."""

    job_id: str
    status: str
    epoch: int
    total_epochs: int
    percent: float
    metrics: dict[str, Any]
    eta_seconds: float | None
