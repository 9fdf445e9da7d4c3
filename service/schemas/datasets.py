"""Dataset resources: built-in catalog entries and a caller's uploads share one shape."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ClassLabel = int | float | str


class DatasetOut(BaseModel):
    """A dataset as listed and described; fields that do not apply to one source are null."""

    id: str = Field(
        description="Upload id (ds_...), or the catalog name for built-ins; "
        "use it as `dataset` in a training job",
        examples=["ds_4f1c2a9b0e7d3a61"],
    )
    name: str = Field(examples=["iris"])
    source: Literal["builtin", "upload"]
    task: str = Field(
        description="classification, regression, multilabel, or text (X holds raw strings)",
        examples=["classification"],
    )
    format: str | None = Field(
        default=None, description="Uploaded file format: csv, npz, idx or text"
    )
    description: str | None = None
    available: bool = Field(
        description="Usable now: always for uploads; for built-ins, generated or files on disk"
    )
    n_rows: int = Field(description="Rows in total (train + test)")
    n_train: int | None = Field(default=None, description="Rows in the training split")
    n_test: int | None = Field(default=None, description="Rows in the held-out test split")
    n_features: int | None = Field(
        default=None, description="Width of X; null for text (it depends on the featurizer)"
    )
    classes: list[ClassLabel] | None = Field(
        default=None, description="Class labels, sorted (null for regression)"
    )
    class_names: list[str] | None = Field(
        default=None, description="Human-readable class names (built-ins)"
    )
    class_balance: dict[str, int] | None = Field(
        default=None, description="Rows per class label (uploads)"
    )
    test_fraction: float | None = Field(
        default=None,
        description="Held-out fraction of an upload (split stratified by class, fixed seed)",
    )
    size_bytes: int | None = Field(
        default=None, description="Stored size of an upload (normalized npz)"
    )
    created_at: datetime | None = None


class DatasetList(BaseModel):
    datasets: list[DatasetOut]


#: Printable, no path separators: names show up in URLs, file names and logs.
NAME_PATTERN = r"^[^\x00-\x1f\x7f/\\]+$"


class DatasetUploadFields(BaseModel):
    """The text fields of a dataset upload (multipart/form-data, next to the file parts)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="Unique among your datasets; defaults to the file name without extension",
    )
    format: Literal["csv", "npz", "idx", "text"] | None = Field(
        default=None,
        description="csv (header row, label_column), npz (arrays X and y), idx (file = images, "
        "labels = labels) or text (label<TAB>text lines); inferred from the file name if omitted",
    )
    label_column: str | None = Field(
        default=None, max_length=200, description="CSV only: the column holding the labels"
    )
    test_fraction: float = Field(
        default=0.2,
        gt=0.0,
        lt=1.0,
        description="Fraction held out for the test split (stratified by class, fixed seed)",
    )
