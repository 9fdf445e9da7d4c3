"""Uploaded dataset files -> normalized arrays and the metadata the API reports.

nn_core's loaders do the parsing (and never unpickle); this module picks the loader for a
format, normalizes what comes back so it can be stored without pickle and trained on directly
(X 2-D numeric or 1-D unicode texts; y int64, float64 or unicode), works out the task and
class balance, and turns every parse failure into a 4xx naming the field at fault. Hostile
sizes are refused before NumPy allocates for them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

import numpy as np

from nn_core.datasets.compression import DecodedTooLarge, unpack
from nn_core.datasets.idx import TYPES as IDX_TYPES
from nn_core.datasets.idx import read_idx
from nn_core.datasets.loaders import load_npz, load_text_labels, read_csv
from nn_core.errors import DataError
from service.datasets_store import (
    DEFAULT_TEST_FRACTION,
    TASK_CLASSIFICATION,
    TASK_MULTILABEL,
    TASK_REGRESSION,
    TASK_TEXT,
    check_split,
)
from service.errors import PayloadTooLarge, Unprocessable, invalid

FORMATS = ("csv", "npz", "idx", "text")
#: Integer labels with more distinct values than this are treated as a regression target.
MAX_INT_CLASSES = 1000
#: String labels with more distinct values than this are refused (not a usable class set).
MAX_STRING_CLASSES = 10_000
#: Default cap on what one upload decodes to (unpacked files, declared npz/IDX arrays,
#: fixed-width text arrays, the stored X and y): settings.max_dataset_bytes in the service.
MAX_DATASET_BYTES = 256 << 20
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
class UploadPart:
    """One file part of an upload as received: the form field, the bytes, the client's name."""

    field: str
    data: bytes
    filename: str | None

    def describe(self) -> dict[str, Any]:
        """What lineage needs: the SHA-256 of the bytes as the user has them (the same as
        `sha256sum` prints), their size and name."""
        return {
            "part": self.field,
            "name": self.filename,
            "sha256": hashlib.sha256(self.data).hexdigest(),
            "size_bytes": len(self.data),
        }


@dataclass
class ParsedDataset:
    """An upload as it will be stored: arrays plus the metadata columns of its Dataset row.

    With a test file its rows come last in x and y: `n_test_rows` of them.
    """

    x: np.ndarray
    y: np.ndarray
    task: str
    classes: list[Any] | None
    class_balance: dict[str, int] | None
    meta: dict[str, Any] = field(default_factory=dict)
    n_test_rows: int = 0
    #: How the file was read, shown on the dataset: files (name, sha256, size), label_column,
    #: header, compression.
    file_info: dict[str, Any] = field(default_factory=dict)

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


@dataclass
class ReadOptions:
    """The form fields that say how to read the files."""

    format: str | None = None
    label_column: str | None = None
    header: bool | None = None
    #: None: 0.2, or 0 with a test_file.
    test_fraction: float | None = None

    def fraction(self, has_test_file: bool) -> float:
        """The test fraction to store: 0 when the test rows come from a test_file."""
        if has_test_file:
            return 0.0
        return DEFAULT_TEST_FRACTION if self.test_fraction is None else self.test_fraction


def parse_upload(
    file: UploadPart,
    options: ReadOptions,
    *,
    labels: UploadPart | None = None,
    test_file: UploadPart | None = None,
    test_labels: UploadPart | None = None,
    max_bytes: int = MAX_DATASET_BYTES,
    cancelled: Callable[[], bool] | None = None,
) -> ParsedDataset:
    """Unpack (gzip/zip), parse and check one upload, with its own test file when given.

    Nothing may decode to more than `max_bytes`: archives stop inflating there, npz and IDX
    arrays are judged from their headers before allocation (413 naming the part and the
    figures). Raises BadRequest/Unprocessable/PayloadTooLarge naming the field (file,
    test_file, labels, label_column, ...) and, for text formats, the line. CSV parsing polls
    `cancelled` (the client went away) and stops with nn_core's ParseCancelled.
    """
    parts = [p for p in (file, labels, test_file, test_labels) if p is not None]
    files = [part.describe() for part in parts]
    if test_file is not None and options.test_fraction:
        raise invalid(
            "test_fraction",
            "must be 0 or absent with a test_file",
            summary="a test_file is used as the test split as is; drop test_fraction",
        )
    unpacked = {part.field: _unpack(part, max_bytes) for part in parts}
    data, inner, compression = unpacked[file.field]
    fmt = options.format or infer_format(inner, labels is not None)
    if fmt is None:
        raise invalid(
            "body.format",
            "required",
            summary=f"cannot tell the format of {file.filename or 'the file'!r}; send format "
            "(csv, npz, idx or text)",
        )
    if labels is not None and fmt != "idx":
        raise invalid(
            "body.labels",
            "only for format idx",
            summary="a separate labels file is only used by the idx format",
        )
    labels_data = _labels(unpacked, "labels")
    parsed = _guarded(
        fmt, "file", lambda: _parse(fmt, data, options, labels_data, max_bytes, cancelled)
    )
    # First: the cheapest check, and a 413 says more than what follows.
    _check_sizes(parsed, max_bytes)
    if parsed.task == TASK_CLASSIFICATION or parsed.task == TASK_TEXT:
        _check_two_classes(parsed)
    if test_file is not None:
        test_options = _test_options(options, parsed)
        test_data = unpacked[test_file.field][0]
        test_labels_data = _labels(unpacked, "test_labels")
        test = _guarded(
            fmt,
            "test_file",
            lambda: _parse(fmt, test_data, test_options, test_labels_data, max_bytes, cancelled),
        )
        parsed = _with_test_rows(parsed, test)
    elif test_labels is not None:
        raise invalid("body.test_labels", "only with a test_file", summary="send the test_file too")
    parsed.meta["format"] = fmt
    parsed.file_info = {
        **{
            k: parsed.meta[k]
            for k in ("label_column", "header", "feature_names")
            if k in parsed.meta
        },
        "compression": compression,
        "files": files,
    }
    if test_file is not None:
        _check_sizes(parsed, max_bytes)
    else:
        check_split(parsed.y, parsed.task, options.fraction(False))
    return parsed


def _unpack(part: UploadPart, max_bytes: int) -> tuple[bytes, str | None, str | None]:
    try:
        return unpack(part.data, part.filename, field=part.field, max_bytes=max_bytes)
    except DecodedTooLarge as exc:
        raise _too_large(part.field, exc) from None
    except DataError as exc:
        raise invalid(
            part.field, exc.message, summary=f"{part.field} cannot be read: {exc.message}"
        ) from None


def _labels(unpacked: dict[str, tuple[bytes, str | None, str | None]], part: str) -> bytes | None:
    return unpacked[part][0] if part in unpacked else None


def _guarded(fmt: str, part: str, parse: Callable[[], ParsedDataset]) -> ParsedDataset:
    """Run a parser, turning its DataError into a 4xx under the form field `part`."""
    try:
        return parse()
    except DecodedTooLarge as exc:
        raise _too_large(_where(part, exc.field), exc) from None
    except DataError as exc:
        raise _data_error(fmt, part, exc) from None
    except MemoryError:
        raise PayloadTooLarge.for_field(
            part, "too large to parse", summary="the file is too large to parse in memory"
        ) from None


def _too_large(where: str, exc: DecodedTooLarge) -> PayloadTooLarge:
    """413 naming the part: the nn_core message carries the figures (declared and limit)."""
    reason = exc.message.removeprefix(f"{exc.field}: ")
    return PayloadTooLarge.for_field(
        where, reason, summary=f"{where} is too large: {reason} (NNS_MAX_DATASET_BYTES)"
    )


def _parse(
    fmt: str,
    data: bytes,
    options: ReadOptions,
    labels: bytes | None,
    max_bytes: int,
    cancelled: Callable[[], bool] | None = None,
) -> ParsedDataset:
    if fmt == "csv":
        limit = min(max_bytes, MAX_STORED_BYTES)
        return _parse_csv(data, options.label_column, options.header, limit, cancelled)
    if fmt == "npz":
        return _parse_npz(data, max_bytes)
    if fmt == "idx":
        return _parse_idx(data, labels, max_bytes)
    if fmt == "text":
        return _parse_text(data, options.header, max_bytes)
    raise invalid("format", f"one of {', '.join(FORMATS)}", summary=f"unknown format {fmt!r}")


def _test_options(options: ReadOptions, train: ParsedDataset) -> ReadOptions:
    """The test file is read like the training file: same header choice and label column."""
    label = train.meta.get("label_column")
    header = train.meta.get("header", options.header)
    if label is not None and not header:
        label = str(train.meta["label_index"])
    return ReadOptions(options.format, label, header, 0.0)


def _with_test_rows(train: ParsedDataset, test: ParsedDataset) -> ParsedDataset:
    """One dataset whose last rows are the test file's, after checking the two agree."""
    if test.task != train.task:
        raise invalid(
            "test_file",
            f"its labels make a {test.task} task",
            summary=f"the test_file's labels make a {test.task} task, the file's a {train.task}",
        )
    if train.x.shape[1:] != test.x.shape[1:]:
        raise invalid(
            "test_file",
            f"has {test.x.shape[1:]} features per row, the file {train.x.shape[1:]}",
            summary="the test_file must have the same columns as the file",
        )
    names = train.meta.get("feature_names"), test.meta.get("feature_names")
    if train.meta.get("header") and names[0] != names[1]:
        raise invalid(
            "test_file",
            f"columns {names[1]!r} differ from the file's {names[0]!r}",
            summary="the test_file must have the same columns as the file",
        )
    y_test = test.y
    if train.y.dtype.kind != y_test.dtype.kind:
        y_test = y_test.astype(str if train.y.dtype.kind == "U" else train.y.dtype)
    if train.classes is not None:
        unknown = sorted(set(np.unique(y_test).tolist()) - set(train.classes), key=str)
        if unknown:
            raise invalid(
                "test_file",
                f"has labels the file does not: {unknown[:10]!r}",
                summary="every test label must occur in the training file, or the model "
                f"cannot predict it: {unknown[:10]!r}",
            )
    x = np.concatenate([train.x, test.x])
    y = np.concatenate([train.y, y_test])
    classes, balance = _class_stats(y, "file") if train.classes is not None else (None, None)
    return ParsedDataset(x, y, train.task, classes, balance, train.meta, len(test.y))


def _check_two_classes(parsed: ParsedDataset) -> None:
    if parsed.classes is not None and len(parsed.classes) < 2:
        raise invalid(
            "file",
            f"has one class only ({parsed.classes[0]!r})",
            summary=f"every label is {parsed.classes[0]!r}: a classifier needs at least two "
            "classes (is label_column the right column?)",
        )


def _check_sizes(parsed: ParsedDataset, max_bytes: int) -> None:
    stored = parsed.x.nbytes + parsed.y.nbytes
    limit = min(max_bytes, MAX_STORED_BYTES)
    if stored > limit:
        raise PayloadTooLarge.for_field(
            "file",
            f"decodes to {stored:,} bytes, over the {limit:,}-byte limit",
            summary=f"the dataset decodes to {stored:,} bytes; at most {limit:,} can be "
            "stored (NNS_MAX_DATASET_BYTES)",
        )
    if parsed.n_rows - parsed.n_test_rows < 2:
        raise invalid(
            "file",
            f"has {parsed.n_rows - parsed.n_test_rows} row(s)",
            summary="a dataset needs at least 2 rows",
        )


def _data_error(fmt: str, part: str, exc: DataError) -> Unprocessable:
    where = _where(part, exc.field)
    return invalid(where, exc.message, summary=f"the {fmt} {part} cannot be used: {exc.message}")


def _where(part: str, field: str) -> str:
    """Map an nn_core field to the request field: the form field, or <part>.<column/array>."""
    if field == "label_column":
        return "label_column"
    if field in ("file", "labels"):
        return part if field == "file" else part.replace("file", "labels")
    return f"{part}.{field}"


# ----------------------------------------------------------------------------- formats


def _parse_csv(
    data: bytes,
    label_column: str | None,
    header: bool | None,
    max_bytes: int,
    cancelled: Callable[[], bool] | None,
) -> ParsedDataset:
    label = label_column.strip() if label_column and label_column.strip() else None
    table = read_csv(data, label, header=header, max_bytes=max_bytes, cancelled=cancelled)
    meta: dict[str, Any] = {
        "label_column": table.label_name,
        "label_index": table.label_index,
        "header": table.header,
    }
    if len(table.feature_names) <= MAX_FEATURE_NAMES:
        meta["feature_names"] = table.feature_names
    return _finish(table.x, table.y, meta)


def _parse_npz(data: bytes, max_bytes: int) -> ParsedDataset:
    x, y = load_npz(data, max_array_bytes=max_bytes, max_total_bytes=max_bytes)
    meta: dict[str, Any] = {}
    if x.ndim > 2:
        meta["input_shape"] = [int(d) for d in x.shape[1:]]
    return _finish(x, y, meta, y_field="y")


def _parse_idx(images: bytes, labels: bytes | None, max_bytes: int) -> ParsedDataset:
    if labels is None:
        raise invalid(
            "labels",
            "required for IDX",
            summary="IDX uploads need two files: the images as 'file' and the labels as 'labels'",
        )
    declared = _idx_bytes(images) + _idx_bytes(labels)
    if declared > max_bytes:
        raise DecodedTooLarge(
            "file",
            f"IDX headers declare {declared:,} bytes of images and labels, over the "
            f"{max_bytes:,}-byte limit",
        )
    x = read_idx(images, field="file", max_bytes=max_bytes)
    y = read_idx(labels, field="labels", max_bytes=max_bytes)
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise DataError("labels", f"must be a 1-D integer IDX array, got {y.dtype}{list(y.shape)}")
    if len(y) != len(x):
        raise DataError("labels", f"has {len(y)} labels for {len(x)} images")
    meta: dict[str, Any] = {}
    if x.ndim > 2:
        meta["input_shape"] = [int(d) for d in x.shape[1:]]
    return _finish(x, y, meta, y_field="labels")


def _idx_bytes(data: bytes) -> int:
    """The payload size an IDX header declares (0 when the header is malformed: read_idx
    then says what is wrong with it)."""
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_TYPES:
        return 0
    ndim = data[3]
    if len(data) < 4 + 4 * ndim:
        return 0
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    return int(np.prod(dims, dtype=object)) * IDX_TYPES[data[2]].itemsize


def _parse_text(data: bytes, header: bool | None, max_bytes: int) -> ParsedDataset:
    _check_text_size(data, max_bytes)
    texts, labels = load_text_labels(data, header=header)
    classes, balance = _class_stats(labels, "file")
    return ParsedDataset(texts, labels, TASK_TEXT, classes, balance, {})


def _check_text_size(data: bytes, max_bytes: int) -> None:
    """NumPy stores texts fixed-width: rows x longest line x 4 bytes; refuse absurd shapes."""
    lines = data.split(b"\n")
    need = len(lines) * max(map(len, lines)) * 4
    if need > max_bytes:
        raise PayloadTooLarge.for_field(
            "file",
            "text array too large",
            summary=f"{len(lines):,} lines whose longest has {max(map(len, lines)):,} bytes "
            f"would need {need:,} bytes as a text array (limit {max_bytes:,}); "
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
