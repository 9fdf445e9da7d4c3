"""Uploaded data -> arrays: CSV with a label column, NPZ with X and y, "label<TAB>text" lines.

Every error says what is wrong and where (column, line, array), because these messages go
straight back to whoever uploaded the file. Nothing is ever unpickled: NPZ members are
checked from their headers (dtype, size) before NumPy loads them with allow_pickle=False.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections import Counter
from typing import Any

import numpy as np

from nn_core.errors import DataError

Source = bytes | str | os.PathLike[str]

#: Cap on the size of one array in an NPZ, checked from its header before loading.
MAX_ARRAY_BYTES = 1 << 30
#: First-line labels that mark a header row in a label<TAB>text file.
TEXT_HEADER_LABELS = frozenset({"label", "labels", "class", "category", "target", "v1"})


def _read_bytes(source: Source) -> bytes:
    if isinstance(source, bytes):
        return source
    with open(source, "rb") as fh:
        return fh.read()


def decode_text(data: bytes) -> str:
    """UTF-8 (a BOM is dropped), falling back to Latin-1, which decodes any byte string."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


# ----------------------------------------------------------------------------- CSV


def load_csv(
    source: Source,
    label_column: str,
    *,
    delimiter: str = ",",
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from a CSV with a header row; every column but `label_column` is a feature.

    Labels come back as int64 when all are integers, float64 when all are numbers, else as
    strings (a unicode array).
    """
    rows = list(csv.reader(io.StringIO(decode_text(_read_bytes(source))), delimiter=delimiter))
    numbered = [(i + 1, row) for i, row in enumerate(rows) if any(cell.strip() for cell in row)]
    if not numbered:
        raise DataError("file", "is empty; expected a header row and data rows")
    header = [name.strip() for name in numbered[0][1]]
    body = numbered[1:]
    _check_header(header, label_column)
    if not body:
        raise DataError("file", "has a header but no data rows")
    for line, row in body:
        if len(row) != len(header):
            raise DataError(
                "file", f"line {line} has {len(row)} fields, the header has {len(header)}"
            )
    label_at = header.index(label_column)
    columns = list(zip(*(row for _, row in body), strict=True))
    lines = [line for line, _ in body]
    features = [
        _numeric_column(name, columns[j], lines, dtype)
        for j, name in enumerate(header)
        if j != label_at
    ]
    x = np.stack(features, axis=1)
    return x, _label_column(label_column, columns[label_at], lines)


def _check_header(header: list[str], label_column: str) -> None:
    if label_column not in header:
        shown = ", ".join(repr(h) for h in header[:20])
        raise DataError(
            "label_column", f"column {label_column!r} not found; available columns: {shown}"
        )
    if len(header) < 2:
        raise DataError("file", "needs at least one feature column besides the label")
    duplicates = sorted(name for name, n in Counter(header).items() if n > 1)
    if duplicates:
        raise DataError("file", f"duplicate column names: {', '.join(map(repr, duplicates))}")


def _numeric_column(name: str, cells: tuple[str, ...], lines: list[int], dtype: Any) -> np.ndarray:
    try:
        values = np.array([c.strip() for c in cells], dtype=np.float64)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return values.astype(dtype)
    for cell, line in zip(cells, lines, strict=True):  # slow path: find the first bad cell
        try:
            number = float(cell)
        except ValueError:
            what = "is empty" if not cell.strip() else f"{cell.strip()[:40]!r} is not a number"
            raise DataError(name, f"line {line}: {what}") from None
        if not np.isfinite(number):
            raise DataError(name, f"line {line}: {cell.strip()!r} is not a finite number")
    raise AssertionError("unreachable: a column failed to parse but every cell parsed")


def _label_column(name: str, cells: tuple[str, ...], lines: list[int]) -> np.ndarray:
    labels = [c.strip() for c in cells]
    for label, line in zip(labels, lines, strict=True):
        if not label:
            raise DataError(name, f"line {line}: the label is empty")
    for kind in (np.int64, np.float64):
        try:
            values = np.array(labels, dtype=kind)
        except (ValueError, OverflowError):
            continue
        if kind is np.int64 or np.isfinite(values).all():
            return values
    return np.array(labels, dtype=str)


# ----------------------------------------------------------------------------- NPZ


def load_npz(
    source: Source, *, max_array_bytes: int = MAX_ARRAY_BYTES
) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from an .npz holding numeric X and numeric or string y of the same length."""
    data = _read_bytes(source)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(
            "file", "is not an .npz archive (expected arrays X and y saved with np.savez)"
        ) from None
    with archive:
        names = {n.removesuffix(".npy"): n for n in archive.namelist() if n.endswith(".npy")}
        for key in ("X", "y"):
            if key not in names:
                found = ", ".join(sorted(names)) or "none"
                raise DataError(key, f"array {key!r} missing from the .npz (found: {found})")
            _check_member(archive, names[key], key, max_array_bytes)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            x, y = npz["X"], npz["y"]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError("file", f"could not read the .npz: {exc}") from None
    return _check_xy(x, y)


def _check_member(archive: zipfile.ZipFile, member: str, key: str, max_bytes: int) -> None:
    """Validate an .npy member from its header alone: no object dtype, bounded size."""
    try:
        with archive.open(member) as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError(key, f"is not a valid .npy array: {exc}") from None
    if dtype.hasobject:
        raise DataError(
            key,
            "is an object array; only numeric (or, for y, string) arrays are "
            "accepted because loading object arrays would need pickle",
        )
    size = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if size > max_bytes:
        raise DataError(
            key, f"shape {list(shape)} needs {size:,} bytes, over the {max_bytes:,}-byte limit"
        )


def _check_xy(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if x.dtype.kind not in "biuf" or x.ndim < 1:
        raise DataError("X", f"must be a numeric array, got {x.dtype}{list(x.shape)}")
    if y.dtype.kind not in "biufU" or y.ndim not in (1, 2):
        raise DataError("y", f"must be a 1-D numeric or string array, got {y.dtype}{list(y.shape)}")
    if len(x) != len(y):
        raise DataError("y", f"has {len(y)} rows but X has {len(x)}")
    if len(x) == 0:
        raise DataError("X", "has no rows")
    return x, y


# ----------------------------------------------------------------------------- text


def load_text_labels(
    source: Source, *, header: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(texts, labels) as unicode arrays from "label<TAB>text" lines (the SMS Spam Collection).

    The text is everything after the first tab. A first line whose label is a column name
    such as "label" is skipped unless `header` says otherwise; blank lines are ignored.
    """
    text = decode_text(_read_bytes(source))
    # Split on newlines only: str.splitlines would also cut at form feeds and U+2028.
    lines = [(i + 1, line.removesuffix("\r")) for i, line in enumerate(text.split("\n"))]
    lines = [(n, line) for n, line in lines if line.strip()]
    if lines and _is_header(lines[0][1], header):
        lines = lines[1:]
    if not lines:
        raise DataError("file", "has no 'label<TAB>text' lines")
    labels, texts = [], []
    for n, line in lines:
        label, tab, body = line.partition("\t")
        if not tab:
            raise DataError("file", f"line {n}: expected 'label<TAB>text', found no tab")
        if not label.strip():
            raise DataError("file", f"line {n}: the label is empty")
        labels.append(label.strip())
        texts.append(body)
    return np.array(texts, dtype=str), np.array(labels, dtype=str)


def _is_header(line: str, header: bool | None) -> bool:
    if header is not None:
        return header
    return line.partition("\t")[0].strip().lower() in TEXT_HEADER_LABELS
