"""Uploaded data -> arrays: CSV (with or without a header), NPZ with X and y, "label<TAB>text".

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from nn_core.datasets.compression import DecodedTooLarge
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


def decode_text(data: bytes, field: str = "file") -> str:
    """UTF-8 text (a BOM is dropped); anything else is refused, saying at which line and byte.

    Guessing another encoding would silently turn labels into different strings.
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            field,
            f"is not UTF-8 text: line {line} has the byte 0x{data[exc.start]:02x} at byte "
            f"offset {exc.start}; save the file as UTF-8",
        ) from None


# ----------------------------------------------------------------------------- CSV

#: Header names taken as the label when no label column is named (compared lower-cased).
LABEL_NAMES = ("label", "target", "class", "y")
#: Rows after the first that header detection looks at.
HEADER_SAMPLE_ROWS = 50


@dataclass
class CsvTable:
    """A parsed CSV: features, labels, and how the file was read (for the caller to show)."""

    x: np.ndarray
    y: np.ndarray
    #: Names of the feature columns; a headerless file's columns are named "0", "1", ...
    feature_names: list[str]
    label_name: str
    #: The label's 0-based column index in the file.
    label_index: int
    header: bool


def load_csv(
    source: Source,
    label_column: str | int | None = None,
    *,
    header: bool | None = None,
    delimiter: str = ",",
    dtype: Any = np.float64,
) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from a CSV; every column but the label column is a feature (see read_csv)."""
    table = read_csv(source, label_column, header=header, delimiter=delimiter, dtype=dtype)
    return table.x, table.y


def read_csv(
    source: Source,
    label_column: str | int | None = None,
    *,
    header: bool | None = None,
    delimiter: str = ",",
    dtype: Any = np.float64,
    max_bytes: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> CsvTable:
    """Parse a CSV with or without a header row.

    `header` None detects it (`looks_like_header`). `label_column` is a column name, or a
    0-based index (an int or a string of digits; negative counts from the end) when no column
    has that name; None takes the column named label/target/class/y, else the last column.
    Labels come back as int64 when all are integers, float64 when all are numbers, else as
    strings (a unicode array). Errors name the line (and column) at fault.

    `max_bytes` caps what the cells decode to (8 bytes each, as float64), checked row by row
    while reading, so an oversized file fails (DecodedTooLarge) before its Python lists are
    all built. `cancelled` is polled between chunks of rows: when it answers True (the client
    went away) reading stops with ParseCancelled.
    """
    numbered = _csv_rows(decode_text(_read_bytes(source)), delimiter, max_bytes, cancelled)
    if not numbered:
        raise DataError("file", "is empty; expected rows of comma-separated values")
    detected = header is None
    if header is None:
        header = looks_like_header([row for _, row in numbered[: HEADER_SAMPLE_ROWS + 1]])
    width = len(numbered[0][1])
    names = [c.strip() for c in numbered[0][1]] if header else [str(j) for j in range(width)]
    body = numbered[1:] if header else numbered
    _check_columns(names)
    label_at = _label_index(names, label_column, header)
    if not body:
        raise DataError("file", "has a header but no data rows")
    for line, row in body:
        if len(row) != width:
            first = "the header" if header else f"line {numbered[0][0]}"
            raise DataError(
                "file", f"line {line} has {len(row)} fields, expected {width} as {first} has"
            )
    columns = list(zip(*(row for _, row in body), strict=True))
    lines = [line for line, _ in body]
    hint = " (if it is a header row, send header=true)" if detected and not header else ""
    features = [
        _numeric_column(name, j, columns[j], lines, dtype, hint)
        for j, name in enumerate(names)
        if j != label_at
    ]
    return CsvTable(
        x=np.stack(features, axis=1),
        y=_label_column(names[label_at], columns[label_at], lines),
        feature_names=[name for j, name in enumerate(names) if j != label_at],
        label_name=names[label_at],
        label_index=label_at,
        header=header,
    )


class ParseCancelled(Exception):
    """The caller's `cancelled` answered True: nobody waits for the result any more."""


#: Cells read between two polls of `cancelled` (a poll costs next to nothing; a chunk, ms).
CANCEL_POLL_CELLS = 1 << 16


def _csv_rows(
    text: str,
    delimiter: str,
    max_bytes: int | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> list[tuple[int, list[str]]]:
    """Non-blank rows with the line each ends on (quoted fields may span lines).

    Linear in the cells: each is looked at once. Stops at the first row that takes the cells
    past `max_bytes` / 8 (each becomes a float64) and polls `cancelled` every
    CANCEL_POLL_CELLS cells."""
    reader = csv.reader(io.StringIO(text), delimiter=delimiter)
    rows: list[tuple[int, list[str]]] = []
    max_cells = None if max_bytes is None else max_bytes // 8
    cells = next_poll = 0
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                rows.append((reader.line_num, row))
                cells += len(row)
                if max_cells is not None and cells > max_cells:
                    raise DecodedTooLarge(
                        "file",
                        f"holds more than {max_cells:,} values by line {reader.line_num} "
                        f"(8 bytes each), over the {max_bytes:,}-byte limit",
                    )
                if cancelled is not None and cells >= next_poll:
                    if cancelled():
                        raise ParseCancelled
                    next_poll = cells + CANCEL_POLL_CELLS
    except csv.Error as exc:
        raise DataError("file", f"line {reader.line_num + 1}: {exc}") from None
    return rows


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def looks_like_header(rows: list[list[str]]) -> bool:
    """Whether the first row names the columns rather than holding data.

    It does when, in every column whose cells in the following rows are all numbers, the
    first row's cell is not a number (and there is at least one such column). A data row
    with one stray bad cell is therefore not mistaken for a header, and a header whose
    names are numbers is not detected: send header=true for it. A lone row is a header when
    it has any cell that is not a number.
    """
    first, rest = rows[0], rows[1:]
    if not rest:
        return any(cell.strip() and not _is_number(cell) for cell in first)
    numeric = [
        j for j in range(len(first)) if all(j < len(row) and _is_number(row[j]) for row in rest)
    ]
    return bool(numeric) and all(not _is_number(first[j]) for j in numeric)


def _label_index(names: list[str], label_column: str | int | None, header: bool) -> int:
    if label_column is None:
        lowered = [name.lower() for name in names]
        matches = [lowered.index(n) for n in LABEL_NAMES if header and n in lowered]
        return matches[0] if matches else len(names) - 1
    if isinstance(label_column, str) and label_column in names:
        return names.index(label_column)
    index = _as_index(label_column)
    if index is not None and -len(names) <= index < len(names):
        return index % len(names)
    shown = ", ".join(repr(h) for h in names[:20]) + (", ..." if len(names) > 20 else "")
    what = "columns" if header else f"{len(names)} columns, indexes 0 to {len(names) - 1}"
    raise DataError(
        "label_column", f"column {label_column!r} not found; the file has {what}: {shown}"
    )


def _as_index(label_column: str | int) -> int | None:
    if isinstance(label_column, int):
        return label_column
    text = label_column.strip()
    digits = text.removeprefix("-")
    return int(text) if digits.isdigit() else None


def _check_columns(names: list[str]) -> None:
    if len(names) < 2:
        raise DataError("file", "needs at least one feature column besides the label")
    duplicates = sorted(name for name, n in Counter(names).items() if n > 1)
    if duplicates:
        raise DataError("file", f"duplicate column names: {', '.join(map(repr, duplicates))}")


def _numeric_column(
    name: str, index: int, cells: tuple[str, ...], lines: list[int], dtype: Any, hint: str
) -> np.ndarray:
    try:
        values = np.array([c.strip() for c in cells], dtype=np.float64)
    except ValueError:
        values = None
    if values is not None and np.isfinite(values).all():
        return values.astype(dtype)
    for cell, line in zip(cells, lines, strict=True):  # slow path: find the first bad cell
        where = f"line {line}, column {index}"
        try:
            number = float(cell)
        except ValueError:
            what = "is empty" if not cell.strip() else f"{cell.strip()[:40]!r} is not a number"
            raise DataError(name, f"{where}: {what}{hint if line == lines[0] else ''}") from None
        if not np.isfinite(number):
            raise DataError(name, f"{where}: {cell.strip()!r} is not a finite number")
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
    source: Source, *, max_array_bytes: int = MAX_ARRAY_BYTES, max_total_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(X, y) from an .npz holding numeric X and numeric or string y of the same length.

    `max_total_bytes` caps X and y together, judged from the zip directory and the .npy
    headers before anything is inflated or allocated (DecodedTooLarge, field "file"): a
    small archive of deflated zeros may declare gigabytes.
    """
    data = _read_bytes(source)
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise DataError(
            "file", "is not an .npz archive (expected arrays X and y saved with np.savez)"
        ) from None
    with archive:
        names = {n.removesuffix(".npy"): n for n in archive.namelist() if n.endswith(".npy")}
        sizes: dict[str, int] = {}
        for key in ("X", "y"):
            if key not in names:
                found = ", ".join(sorted(names)) or "none"
                raise DataError(key, f"array {key!r} missing from the .npz (found: {found})")
            sizes[key] = _check_member(archive, names[key], key)
    declared = sum(sizes.values())
    if max_total_bytes is not None and declared > max_total_bytes:
        raise DecodedTooLarge(
            "file",
            f"arrays X and y would decode to {declared:,} bytes from a {len(data):,}-byte "
            f"file, over the {max_total_bytes:,}-byte limit",
        )
    for key, size in sizes.items():
        if size > max_array_bytes:
            raise DecodedTooLarge(
                key, f"needs {size:,} bytes, over the {max_array_bytes:,}-byte limit"
            )
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            x, y = npz["X"], npz["y"]
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise DataError("file", f"could not read the .npz: {exc}") from None
    return _check_xy(x, y)


def _check_member(archive: zipfile.ZipFile, member: str, key: str) -> int:
    """Validate an .npy member from its header alone (no object dtype, bounded size, no more
    data declared than the member holds); its array's size in bytes."""
    held = archive.getinfo(member).file_size
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
    if size > held:
        raise DataError(
            key, f"shape {list(shape)} declares {size:,} bytes; the file holds {held:,}"
        )
    return size


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
