"""Per-layer training diagnostics and plain-words warnings, as clients read them."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Histogram(BaseModel):
    """Counts of `counts`-many equal bins spanning [min, max], a range chosen per tensor."""

    min: float
    max: float
    counts: list[int]


class TensorStats(BaseModel):
    """Statistics of one tensor's finite values (null when it has none)."""

    mean: float | None
    std: float | None
    norm: float | None = Field(description="L2 norm")
    histogram: Histogram | None


class LayerDiagnostics(BaseModel):
    index: int = Field(description="Position in spec.layers")
    type: str = Field(description="Layer type, e.g. dense")
    activation: str | None = Field(
        description="The activation the layer applies (identity when the loss applies it)"
    )
    param: str | None = Field(
        description="The parameter `weights` and `gradients` describe (W, or gamma for "
        "batchnorm); null for a layer without parameters"
    )
    weights: TensorStats | None
    gradients: TensorStats | None = Field(
        description="The gradient of the loss on the sample rows with respect to `param`"
    )
    activations: TensorStats = Field(description="The layer's outputs on the sample rows")
    update_ratio: float | None = Field(
        description="||dW|| / ||W|| of the epoch's last optimizer step (healthy: about 1e-3)"
    )
    saturated: float | None = Field(
        description="Share of sigmoid outputs below 0.02 or above 0.98 (|tanh| above 0.98); "
        "null for other activations"
    )
    dead: float | None = Field(
        description="Share of ReLU units that output zero for every sample row; null for "
        "other activations"
    )


class EpochDiagnostics(BaseModel):
    """Per-layer statistics after one epoch, on a fixed sample of training rows."""

    epoch: int
    sample_loss: float | None = Field(description="The loss on the sample rows")
    layers: list[LayerDiagnostics]


class DiagnosticsPage(BaseModel):
    job_id: str
    items: list[EpochDiagnostics]
    total: int = Field(description="Epochs with diagnostics recorded so far")
    next_after_epoch: int | None = Field(
        description="Pass as after_epoch for the next page; null when nothing more is stored yet"
    )


class DiagnosticsEvent(EpochDiagnostics):
    """Data of an SSE `diagnostics` event."""

    job_id: str


class TrainingWarning(BaseModel):
    """Something wrong with how the job trains, in plain words with the likely fix."""

    code: str = Field(
        description="vanishing_gradients | exploding_gradients | dead_relus | saturated_units "
        "| loss_rising | overfitting",
        examples=["dead_relus"],
    )
    message: str = Field(description="What is wrong and what to change in the spec")
    epoch: int = Field(description="The epoch after which it was first seen")
