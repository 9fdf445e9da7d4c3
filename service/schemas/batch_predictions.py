"""Request and response models of /v1/batch-predictions (a model over a whole dataset).

Only shapes are checked here; whether the model, version, alias and dataset exist, and
whether the split has rows, is checked at submit in service/jobs/batch_predict.py, so those
errors name their field too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from service.models import JobStatus
from service.schemas.jobs import MODEL_NAME_PATTERN
from service.schemas.types import VersionNumber

BatchSplit = Literal["all", "train", "test"]
BatchFormat = Literal["csv", "npz"]


class BatchPredictionSubmit(BaseModel):
    """Predict every row of `dataset` (or of its train or test split) with a model version."""

    # The document states the rule the validator below checks: not version and alias both.
    model_config = ConfigDict(
        extra="forbid",
        protected_namespaces=(),
        json_schema_extra={"not": {"required": ["version", "alias"]}},
    )

    model: Annotated[str, StringConstraints(pattern=MODEL_NAME_PATTERN)] = Field(
        description="The registered model's name", examples=["xor-net"]
    )
    version: VersionNumber | None = Field(
        default=None, description="The version number; default the latest (or the alias's)"
    )
    alias: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="An alias of the model (e.g. production); not with version"
    )
    dataset: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description="An upload's id or name, or a built-in dataset's name", examples=["xor"]
    )
    split: BatchSplit = Field(
        default="all", description="Which rows: all (stored order), train or test"
    )
    format: BatchFormat = Field(
        default="csv",
        description="csv: row, label, one probability column per class (value columns for "
        "regression); npz: arrays labels and probabilities (or values), no pickles",
    )

    @model_validator(mode="after")
    def _one_ref(self) -> BatchPredictionSubmit:
        if self.version is not None and self.alias is not None:
            raise ValueError("give version or alias, not both")
        return self


class BatchProgress(BaseModel):
    rows_done: int = Field(description="Rows predicted and written so far")
    total_rows: int = Field(description="Rows to predict (0 until the job has loaded them)")
    percent: float


class BatchLinks(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    self_: str = Field(alias="self", serialization_alias="self")
    result: str = Field(description="The file, once succeeded")
    job: str = Field(description="The underlying job (cancel at its /cancel)")
    events: str = Field(description="SSE progress: one `progress` event per chunk written")


class BatchPredictionResponse(BaseModel):
    """A batch prediction: where it is, and once succeeded how many rows its file holds."""

    model_config = ConfigDict(protected_namespaces=(), populate_by_name=True)

    id: str
    status: JobStatus
    model: str
    version: int
    dataset: str
    split: BatchSplit
    format: BatchFormat
    progress: BatchProgress
    rows: int | None = Field(description="Rows in the result file (succeeded only)")
    columns: list[str] | None = Field(description="CSV columns or NPZ arrays (succeeded only)")
    failure_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None = Field(
        default=None,
        description="When the result file is removed (NNS_BATCH_RESULT_TTL_HOURS after it "
        "succeeded); null before it succeeded or when results are kept for ever",
    )
    expired: bool = Field(
        default=False, description="The result file was removed; its download answers 410"
    )
    links: BatchLinks
