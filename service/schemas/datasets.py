"""Dataset resources: built-in catalog entries and a caller's uploads share one shape."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ClassLabel = int | float | str


class UploadedFile(BaseModel):
    """One file of an upload as the user sent it."""

    part: str = Field(description="The multipart field: file, labels, test_file, test_labels")
    name: str | None = Field(description="The file name as sent")
    sha256: str = Field(description="SHA-256 of the bytes as sent")
    size_bytes: int


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
        description="Held-out fraction of an upload (split stratified by class, fixed seed); "
        "0 when the upload came with its own test_file or is not split",
    )
    test_split: Literal["fraction", "test_file", "none"] | None = Field(
        default=None,
        description="Where an upload's test rows come from: a split of its rows by "
        "test_fraction, its test_file as is, or none (test_fraction 0: name a test_dataset "
        "when training). Download them with GET /v1/datasets/{ref}/split/test",
    )
    sha256: str | None = Field(
        default=None,
        description="SHA-256 of the uploaded file's bytes as you have them (compressed or "
        "not): `sha256sum file.csv` prints the same",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    test_sha256: str | None = Field(
        default=None, description="SHA-256 of the uploaded test_file, when one came with it"
    )
    label_column: str | None = Field(
        default=None,
        description="CSV: the label column used (its name; for a file without a header row, "
        "its 0-based index)",
    )
    header: bool | None = Field(
        default=None, description="CSV: whether the first row was read as a header"
    )
    feature_names: list[str] | None = Field(
        default=None, description="CSV: the feature columns, in order (up to 1000)"
    )
    compression: Literal["gzip", "zip"] | None = Field(
        default=None, description="How the upload was packed, if at all"
    )
    files: list[UploadedFile] | None = Field(
        default=None, description="The uploaded files (lineage: name, sha256, size)"
    )
    size_bytes: int | None = Field(
        default=None, description="Stored size of an upload (normalized npz)"
    )
    created_at: datetime | None = None


class DatasetList(BaseModel):
    datasets: list[DatasetOut]


#: Printable, no path separators: names show up in URLs, file names and logs. Not dots only
#: ("." and ".." are rewritten as URL path segments), and no "ds_" prefix (that is an id's).
NAME_PATTERN = r"^(?!ds_)(?!\.+$)[^\x00-\x1f\x7f/\\]+$"


class DatasetUploadFields(BaseModel):
    """The text fields of a dataset upload (multipart/form-data, next to the file parts)."""

    # Python's re: NAME_PATTERN's look-aheads are beyond the Rust engine (names are short).
    model_config = ConfigDict(extra="forbid", regex_engine="python-re")

    name: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        pattern=NAME_PATTERN,
        description="Unique among your datasets; defaults to the file name without "
        "extension. Not dots only, no control characters or slashes, no ds_ prefix",
    )
    format: Literal["csv", "npz", "idx", "text"] | None = Field(
        default=None,
        description="csv (label_column, header), npz (arrays X and y), idx (file = images, "
        "labels = labels) or text (label<TAB>text lines); inferred from the file name if "
        "omitted (looking through .gz, or at the one file in a .zip)",
    )
    label_column: str | None = Field(
        default=None,
        max_length=200,
        description="CSV only: the label column's name, or its 0-based index as digits "
        '("0" = first, "-1" = last). Default: a column named label, target, class or y '
        "(header rows only), else the last column",
    )
    header: bool | None = Field(
        default=None,
        description="CSV (and text): whether the first row is a header. Omitted: detected; "
        "the first row is a header when, in every column whose other rows are numbers, it "
        "holds a non-number. Send it when the guess is wrong (e.g. numeric column names)",
    )
    test_fraction: float | None = Field(
        default=None,
        ge=0.0,
        lt=1.0,
        description="Fraction held out for the test split (stratified by class, fixed seed; "
        "default 0.2); 0 = no split (name a test_dataset when training). Must be 0 or "
        "absent with a test_file",
    )
