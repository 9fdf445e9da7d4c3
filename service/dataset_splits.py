"""An upload's train or test split as CSV, so its test metrics can be checked with other tools.

One line per row: `row` (the 0-based data row in the uploaded file the row came from: the
test_file's for test rows of an upload that came with one; header and blank lines are not
counted), then the features, then the label. Numbers are written so they read back exactly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

import numpy as np

from service.datasets_store import TASK_TEXT, upload_split
from service.models import Dataset

#: An upload's stored arrays as `datasets_store.upload_arrays` gives them: X, y, meta.
Arrays = tuple[np.ndarray, np.ndarray, dict[str, Any]]

#: Rows per chunk of the streamed answer.
CHUNK_ROWS = 2000


def split_csv(
    upload: Dataset, arrays: Arrays, part: str, test_fraction: float | None
) -> Iterator[str]:
    """The CSV text of the `part` ("train" or "test") split, in chunks. The arrays are read
    (and checked) by the caller before the answer starts, so a damaged file is a clear error
    instead of a cut-off download."""
    x, y, meta = arrays
    train, test = upload_split(upload, y, test_fraction)
    rows = train if part == "train" else test
    first_row = len(y) - upload.n_test_rows if part == "test" and upload.n_test_rows else 0
    x = x.reshape(len(x), -1) if x.ndim > 2 else x
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", *_feature_names(upload, x, meta), *_label_names(y, meta)])
    for start in range(0, len(rows), CHUNK_ROWS):
        chunk = rows[start : start + CHUNK_ROWS]
        for i, features, labels in zip(chunk, x[chunk].tolist(), y[chunk].tolist(), strict=True):
            writer.writerow([int(i) - first_row, *_cells(features), *_cells(labels)])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _feature_names(upload: Dataset, x: np.ndarray, meta: dict[str, Any]) -> list[str]:
    if upload.task == TASK_TEXT:
        return ["text"]
    names = meta.get("feature_names")
    if isinstance(names, list) and len(names) == x.shape[1]:
        return [str(n) for n in names]
    return [f"x{j}" for j in range(x.shape[1])]


def _label_names(y: np.ndarray, meta: dict[str, Any]) -> list[str]:
    if y.ndim == 2:
        return [f"y{j}" for j in range(y.shape[1])]
    return [str(meta.get("label_column", "label"))]


def _cells(value: Any) -> list[Any]:
    """One value or a list of them as cells (tolist() gives shortest round-trip floats)."""
    return value if isinstance(value, list) else [value]
