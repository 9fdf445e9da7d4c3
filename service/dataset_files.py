"""Uploaded dataset files -> normalized arrays and the metadata the API reports.

nn_core's loaders do the parsing (and never unpickle); this module picks the loader for a
format, normalizes what comes back so it can be stored without pickle and trained on directly
(X 2-D numeric or 1-D unicode texts; y int64, float64 or unicode), works out the task and
class balance, and turns every parse failure into a 4xx naming the field at fault. Hostile
sizes are refused before NumPy allocates for them.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from nn_core.datasets.idx import read_idx
from nn_core.datasets.loaders import decode_text, load_csv, load_npz, load_text_labels
from nn_core.errors import DataError
from service.datasets_store import (
    TASK_CLASSIFICATION,
    TASK_MULTILABEL,
    TASK_REGRESSION,
    TASK_TEXT,
    check_split,
)
from service.errors import BadRequest, PayloadTooLarge, Unprocessable, invalid

FORMATS = ("csv", "npz", "idx", "text")
#: Integer labels with more distinct values than this are treated as a regression target.
MAX_INT_CLASSES = 1000
#: String labels with more distinct values than this are refused (not a usable class set).
MAX_STRING_CLASSES = 10_000
#: Cap on any one decoded array (gzip IDX, npz members, fixed-width text arrays).
MAX_DECODED_BYTES = 1 << 30
#: Cap on a parsed dataset (X and y together): it is stored as one value, and SQLite's
#: default limit for one string or blob is 10^9 bytes (Postgres bytea: 1 GiB).
MAX_STORED_BYTES = 900_000_000
#: Feature names kept in the metadata (a CSV may have thousands of columns).
MAX_FEATURE_NAMES = 1000

_EXTENSIONS = {
    ".csv": "csv",
    ".npz": "npz",
    ".idx": "idx",
    ".ubyte": "idx",
    ".txt": "text",
    ".tsv": "text",
    ".text": "text",
}


@dataclass
class ParsedDataset:
    """An upload as it will be stored: arrays plus the metadata columns of its Dataset row."""

    x: np.ndarray
    y: np.ndarray
    task: str
    classes: list[Any] | None
    class_balance: dict[str, int] | None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.y)

    @property
    def n_features(self) -> int:
        """Width of X; 0 for text, whose width depends on the model's featurizer."""
        return 0 if self.task == TASK_TEXT else int(self.x.shape[1])


def infer_format(filename: str | None, has_labels_file: bool) -> str | None:
    """The format named by a file's extension (".gz" looked through); None when unclear."""
    if has_labels_file:
        return "idx"
    if not filename:
        return None
    suffixes = [s.lower() for s in PurePath(filename).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    if suffixes and suffixes[-1] in _EXTENSIONS:
        return _EXTENSIONS[suffixes[-1]]
    if suffixes and suffixes[-1].endswith("-ubyte"):  # train-images.idx3-ubyte
        return "idx"
    return None


def parse_upload(
    fmt: str,
    data: bytes,
    *,
    test_fraction: float,
    label_column: str | None = None,
    labels: bytes | None = None,
) -> ParsedDataset:
    """Parse one upload; raises BadRequest/Unprocessable/PayloadTooLarge naming the field."""
    try:
        if fmt == "csv":
            parsed = _parse_csv(data, label_column)
        elif fmt == "npz":
            parsed = _parse_npz(data)
        elif fmt == "idx":
            parsed = _parse_idx(data, labels)
        elif fmt == "text":
            parsed = _parse_text(data)
        else:
            raise invalid(
                "format", f"one of {', '.join(FORMATS)}", summary=f"unknown format {fmt!r}"
            )
    except DataError as exc:
        raise _data_error(fmt, exc) from None
    except MemoryError:
        raise PayloadTooLarge.for_field(
            "file", "too large to parse", summary="the file is too large to parse in memory"
        ) from None
    stored = parsed.x.nbytes + parsed.y.nbytes
    if stored > MAX_STORED_BYTES:
        raise PayloadTooLarge.for_field(
            "file",
            "decoded dataset too large",
            summary=f"the dataset decodes to {stored:,} bytes; "
            f"at most {MAX_STORED_BYTES:,} can be stored",
        )
    if parsed.n_rows < 2:
        raise invalid(
            "file",
            f"has {parsed.n_rows} row(s)",
            summary="a dataset needs at least 2 rows (one to train on, one to test with)",
        )
    check_split(parsed.y, parsed.task, test_fraction)
    return parsed


def _data_error(fmt: str, exc: DataError) -> Unprocessable:
    """Map an nn_core field to the request field: the form field, or file.<column/array>."""
    where = exc.field if exc.field in ("label_column", "file", "labels") else f"file.{exc.field}"
    return invalid(where, exc.message, summary=f"the {fmt} file cannot be used: {exc.message}")


# ----------------------------------------------------------------------------- formats


def _parse_csv(data: bytes, label_column: str | None) -> ParsedDataset:
    if not label_column or not label_column.strip():
        raise invalid(
            "label_column",
            "required for CSV",
            summary="CSV uploads need label_column: the name of the column holding the labels",
        )
    label_column = label_column.strip()
    try:
        x, y = load_csv(data, label_column)
        header = _csv_header(data)
    except csv.Error as exc:
        raise BadRequest.for_field(
            "file", str(exc), summary=f"the CSV file cannot be parsed: {exc}"
        ) from None
    names = [h for h in header if h != label_column]
    meta: dict[str, Any] = {"label_column": label_column}
    if len(names) <= MAX_FEATURE_NAMES:
        meta["feature_names"] = names
    return _finish(x, y, meta)


def _csv_header(data: bytes) -> list[str]:
    for row in csv.reader(io.StringIO(decode_text(data))):
        if any(cell.strip() for cell in row):
            return [cell.strip() for cell in row]
    return []


def _parse_npz(data: bytes) -> ParsedDataset:
    x, y = load_npz(data, max_array_bytes=MAX_DECODED_BYTES)
    meta: dict[str, Any] = {}
    if x.ndim > 2:
        meta["input_shape"] = [int(d) for d in x.shape[1:]]
    return _finish(x, y, meta, y_field="y")


def _parse_idx(images: bytes, labels: bytes | None) -> ParsedDataset:
    if labels is None:
        raise invalid(
            "labels",
            "required for IDX",
            summary="IDX uploads need two files: the images as 'file' and the labels as 'labels'",
        )
    x = read_idx(images, field="file", max_bytes=MAX_DECODED_BYTES)
    y = read_idx(labels, field="labels", max_bytes=MAX_DECODED_BYTES)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError("labels", f"must be a 1-D integer IDX array, got {y.dtype}{list(y.shape)}")
    if len(y) != len(x):
        raise DataError("labels", f"has {len(y)} labels for {len(x)} images")
    meta: dict[str, Any] = {}
    if x.ndim > 2:
        meta["input_shape"] = [int(d) for d in x.shape[1:]]
    return _finish(x, y, meta, y_field="labels")


def _parse_text(data: bytes) -> ParsedDataset:
    _check_text_size(data)
    texts, labels = load_text_labels(data)
    classes, balance = _class_stats(labels, "file")
    return ParsedDataset(texts, labels, TASK_TEXT, classes, balance, {})


def _check_text_size(data: bytes) -> None:
    """NumPy stores texts fixed-width: rows x longest line x 4 bytes; refuse absurd shapes."""
    lines = data.split(b"\n")
    need = len(lines) * max(map(len, lines)) * 4
    if need > MAX_DECODED_BYTES:
        raise PayloadTooLarge.for_field(
            "file",
            "text array too large",
            summary=f"{len(lines):,} lines whose longest has {max(map(len, lines)):,} bytes "
            f"would need {need:,} bytes as a text array (limit {MAX_DECODED_BYTES:,}); "
            "split the file or shorten the longest lines",
        )


# ----------------------------------------------------------------------------- normalizing


def _finish(
    x: np.ndarray, y: np.ndarray, meta: dict[str, Any], y_field: str = "file"
) -> ParsedDataset:
    """Numeric X as a finite 2-D array, y as a class/target vector, and the task they imply."""
    x = _normalize_x(x)
    y, task, extra = _normalize_y(y, y_field)
    meta.update(extra)
    if task == TASK_CLASSIFICATION:
        classes, balance = _class_stats(y, y_field)
        return ParsedDataset(x, y, task, classes, balance, meta)
    return ParsedDataset(x, y, task, None, None, meta)


def _normalize_x(x: np.ndarray) -> np.ndarray:
    if x.dtype.kind == "b":
        x = x.astype(np.uint8)
    if x.dtype.kind not in "iuf":
        raise DataError("X", f"must be numeric, got {x.dtype}")
    x = x.reshape(len(x), -1) if x.ndim != 2 else x
    if x.shape[1] == 0:
        raise DataError("X", "has no feature columns")
    if x.dtype.kind == "f":
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise DataError("X", f"row {int(np.argmax(bad))} contains NaN or infinite values")
    return np.ascontiguousarray(x.astype(x.dtype.newbyteorder("=")))


def _normalize_y(y: np.ndarray, where: str) -> tuple[np.ndarray, str, dict[str, Any]]:
    """(y, task, metadata): int/str labels classify, floats regress, 2-D may be one-hot."""
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise DataError(where, "labels contain NaN or infinite values")
    if y.ndim == 2:
        return _two_dim_y(y)
    if y.dtype.kind in "iu":
        y = y.astype(np.int64)
        if len(np.unique(y)) > MAX_INT_CLASSES:
            return y.astype(np.float64), TASK_REGRESSION, {"target": "integer values"}
        return y, TASK_CLASSIFICATION, {}
    if y.dtype.kind == "f":
        return y.astype(np.float64), TASK_REGRESSION, {}
    return y.astype(str), TASK_CLASSIFICATION, {}


def _two_dim_y(y: np.ndarray) -> tuple[np.ndarray, str, dict[str, Any]]:
    if y.dtype.kind in "U":
        raise DataError("y", "string labels must be 1-D")
    binary = bool(np.isin(y, (0, 1)).all())
    if binary and (y.sum(axis=1) == 1).all():
        return y.argmax(axis=1).astype(np.int64), TASK_CLASSIFICATION, {"one_hot": True}
    if binary:
        return y.astype(np.int64), TASK_MULTILABEL, {"outputs": int(y.shape[1])}
    return y.astype(np.float64), TASK_REGRESSION, {"outputs": int(y.shape[1])}


def _class_stats(y: np.ndarray, where: str) -> tuple[list[Any], dict[str, int]]:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) > MAX_STRING_CLASSES:
        raise DataError(
            where,
            f"has {len(classes):,} distinct labels; at most "
            f"{MAX_STRING_CLASSES:,} classes are supported",
        )
    values = classes.tolist()
    return values, {str(c): int(n) for c, n in zip(values, counts.tolist(), strict=True)}
