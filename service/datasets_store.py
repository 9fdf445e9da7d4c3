"""Datasets as the rest of the service sees them: built-in catalog names and stored uploads.

An upload is parsed once (service/dataset_files.py) and stored as one normalized npz blob (a
file in the blob store, or `Dataset.data` for older rows: service/dataset_blobs.py): `X`
(numeric, or unicode texts), `y` (int64, float64 or unicode; never object) and `__meta__`
(UTF-8 JSON). Training reads it back with `load_training_data`, which is the one
entry point the job runner uses for both kinds of dataset, so a job never cares where data
came from. Another owner's upload is reported exactly like a missing one (404).
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from nn_core.datasets.catalog import CATALOG, DatasetInfo, load_dataset, stratified_split
from nn_core.datasets.download import DatasetUnavailable
from nn_core.errors import DataError, SpecError
from service import dataset_blobs
from service.config import Settings
from service.dataset_blobs import DatasetCorrupt
from service.errors import NotFound, ServiceError, Unprocessable, invalid
from service.models import Dataset, DatasetSource
from service.schemas.errors import ErrorDetail

#: Uploads are always split with this seed, so every job on a dataset sees the same test rows.
SPLIT_SEED = 0
#: Default held-out fraction for built-in sets that have no official test split.
DEFAULT_TEST_FRACTION = 0.2
META_KEY = "__meta__"

TASK_CLASSIFICATION = "classification"
TASK_REGRESSION = "regression"
TASK_MULTILABEL = "multilabel"
TASK_TEXT = "text"
CLASSIFIED_TASKS = frozenset({TASK_CLASSIFICATION, TASK_TEXT})


class DatasetUnavailableError(ServiceError):
    """A built-in dataset whose files are neither cached nor downloadable right now.

    503: the request was fine, the server lacks files an operator can put in place; the
    message and details say which file goes where (and its sha256).
    """

    status, type = 503, "dataset_unavailable"


@dataclass
class TrainingData:
    """A dataset split for training: what the job runner needs, whatever the source."""

    #: Catalog name, or the upload's name.
    name: str
    #: The upload's id (for TrainingJob.dataset_id); None for built-ins.
    dataset_id: str | None
    #: "builtin" or "upload".
    source: str
    #: classification | regression | multilabel | text (text: X holds raw strings).
    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- lookup


def catalog_dir(settings: Settings) -> Path:
    """Where built-in dataset files are cached (one sub-directory per dataset); absolute, so
    an offline error names a path that works from anywhere."""
    return settings.data_dir.absolute() / "datasets"


def is_catalog_name(name: str) -> bool:
    return name in CATALOG


def is_synthetic_name(name: str) -> bool:
    """A built-in generated dataset (the Playground toys, e.g. spiral or plane): takes
    n_samples and noise."""
    return name in CATALOG and CATALOG[name].source == "synthetic"


def catalog_info(settings: Settings, name: str) -> DatasetInfo:
    """A built-in dataset's info (availability checked on disk, nothing downloaded)."""
    entry = CATALOG.get(name)
    if entry is None:
        raise not_found(name)
    return entry.info(catalog_dir(settings))


def list_catalog(settings: Settings) -> list[DatasetInfo]:
    return [entry.info(catalog_dir(settings)) for entry in CATALOG.values()]


def list_uploads(session: Session, owner: str) -> list[Dataset]:
    """The owner's uploads, oldest first (blobs stay unloaded)."""
    query = select(Dataset).where(
        Dataset.owner == owner, Dataset.source == DatasetSource.UPLOAD.value
    )
    return list(session.scalars(query.order_by(Dataset.created_at, Dataset.id)))


def find_upload(
    session: Session, owner: str, ref: str, *, with_data: bool = False
) -> Dataset | None:
    """The owner's upload with id `ref`, else the one named `ref`; None if neither exists.

    Names are unique per owner (enforced at upload), so a name is as good as an id.
    """
    if "\x00" in ref or len(ref) > 1000:  # Postgres refuses NUL in text; never stored
        return None
    options = [undefer(Dataset.data)] if with_data else []
    base = (
        select(Dataset)
        .options(*options)
        .where(Dataset.owner == owner, Dataset.source == DatasetSource.UPLOAD.value)
    )
    found = session.scalar(base.where(Dataset.id == ref))
    if found is None:
        found = session.scalar(base.where(Dataset.name == ref).order_by(Dataset.created_at))
    return found


def not_found(ref: str) -> NotFound:
    shown = ref if len(ref) <= 80 else ref[:77] + "..."
    return NotFound.for_field(
        "dataset",
        "no such dataset",
        summary=f"dataset {shown!r} not found: not a built-in dataset nor one of your uploads",
    )


# ----------------------------------------------------------------------------- blobs


def encode_arrays(x: np.ndarray, y: np.ndarray, meta: dict[str, Any]) -> bytes:
    """The stored form of an upload: uncompressed npz, loadable with allow_pickle=False."""
    if x.dtype.hasobject or y.dtype.hasobject:
        raise ValueError("object arrays cannot be stored (they would need pickle)")
    buffer = io.BytesIO()
    payload = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    arrays: dict[str, np.ndarray] = {"X": x, "y": y, META_KEY: payload}
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def decode_arrays(blob: bytes) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(X, y, meta) from a stored blob; a blob that does not decode is DatasetCorrupt (409)."""
    try:
        with np.load(io.BytesIO(blob), allow_pickle=False) as archive:
            x, y = archive["X"], archive["y"]
            meta = json.loads(archive[META_KEY].tobytes().decode())
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
        raise DatasetCorrupt(
            f"the stored dataset could not be read ({exc}); delete it and upload it again"
        ) from None
    return x, y, meta if isinstance(meta, dict) else {}


def upload_arrays(
    settings: Settings, upload: Dataset
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(X, y, meta) of a stored upload, wherever its bytes live (load the row `with_data`);
    a missing or altered file is DatasetCorrupt naming the dataset."""
    return decode_arrays(dataset_blobs.read(settings, upload))


# ----------------------------------------------------------------------------- splitting


def split_indices(
    y: np.ndarray, task: str, test_fraction: float, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices: stratified for class labels, a seeded shuffle otherwise."""
    if task in CLASSIFIED_TASKS and y.ndim == 1:
        return stratified_split(y, test_fraction, seed)
    n = len(y)
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def check_split(y: np.ndarray, task: str, test_fraction: float) -> None:
    """Refuse a fraction that would leave the train or the test split empty (0: no split)."""
    if test_fraction == 0:
        return
    train, test = split_indices(y, task, test_fraction)
    if len(train) == 0 or len(test) == 0:
        empty = "test" if len(test) == 0 else "training"
        raise invalid(
            "test_fraction",
            f"empty {empty} split",
            summary=f"test_fraction {test_fraction} leaves the {empty} split empty "
            f"for {len(y)} rows",
        )


def upload_split(
    upload: Dataset, y: np.ndarray, test_fraction: float | None = None, seed: int = SPLIT_SEED
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test row indices of a stored upload, in stored order.

    An upload with a test_file keeps its own split (its last n_test_rows rows); otherwise
    the rows are split by `test_fraction` (default: the upload's), 0 meaning all train.
    """
    n = len(y)
    if upload.n_test_rows:
        return np.arange(n - upload.n_test_rows), np.arange(n - upload.n_test_rows, n)
    fraction = upload_fraction(upload) if test_fraction is None else test_fraction
    if fraction == 0:
        return np.arange(n), np.arange(0)
    return split_indices(y, upload.task, fraction, seed)


def upload_fraction(upload: Dataset) -> float:
    """The upload's stored test fraction (rows from before 0.2 was stored read as 0.2)."""
    return DEFAULT_TEST_FRACTION if upload.test_fraction is None else upload.test_fraction


def align_labels(y_train: np.ndarray, y_test: np.ndarray) -> np.ndarray:
    """Test labels in the training labels' kind: "1" and 1 are one class when either file
    had a label that is not a number."""
    if y_train.dtype.kind == y_test.dtype.kind:
        return y_test
    return y_test.astype(str if y_train.dtype.kind == "U" else y_train.dtype)


# ----------------------------------------------------------------------------- training data


def load_training_data(
    session: Session,
    settings: Settings,
    owner: str,
    dataset: str,
    *,
    seed: int = SPLIT_SEED,
    test_fraction: float | None = None,
    download: bool = True,
    n_samples: int | None = None,
    noise: float | None = None,
    test_dataset: str | None = None,
) -> TrainingData:
    """The train/test split of `dataset`: an upload id or name of `owner`, or a catalog name.

    Uploads keep the test rows of their test_file, else split by their stored test_fraction
    (or `test_fraction` when given) with a fixed seed, stratified for class labels; an
    upload with test_fraction 0 takes every row of `test_dataset` (an upload) as its test set.
    Built-ins use their official split when they have one,
    else `test_fraction` (default 0.2) with `seed`. Raises NotFound (field "dataset"),
    Unprocessable (bad test_fraction) or DatasetUnavailableError (files missing: says which
    file to put where). `n_samples` and `noise` shape the synthetic built-ins only.
    """
    upload = find_upload(session, owner, dataset, with_data=True)
    if upload is not None:
        return _upload_training_data(session, settings, upload, test_fraction, seed, test_dataset)
    if is_catalog_name(dataset):
        generator = {"n_samples": n_samples, "noise": noise}
        return _catalog_training_data(settings, dataset, seed, test_fraction, download, generator)
    raise not_found(dataset)


def _upload_training_data(
    session: Session,
    settings: Settings,
    upload: Dataset,
    test_fraction: float | None,
    seed: int,
    test_dataset: str | None,
) -> TrainingData:
    x, y, meta = upload_arrays(settings, upload)
    if test_fraction is not None:
        _check_fraction(test_fraction)
    train, test = upload_split(upload, y, test_fraction, seed)
    x_test, y_test = x[test], y[test]
    source = "test_file" if upload.n_test_rows else "fraction"
    if test_dataset is not None:
        x_test, y_test = _test_dataset_rows(session, settings, upload, test_dataset, y)
        source = "test_dataset"
    elif len(test) == 0:
        raise missing_test_split(upload.name)
    fraction = 0.0 if source != "fraction" else (test_fraction or upload_fraction(upload))
    metadata = {
        **meta,
        "dataset_id": upload.id,
        "format": upload.format,
        "classes": upload.classes,
        "split": {
            "test_rows_from": source,
            "stratified": source == "fraction" and upload.task in CLASSIFIED_TASKS and y.ndim == 1,
            "test_fraction": fraction,
            "seed": seed,
        },
    }
    return TrainingData(
        name=upload.name,
        dataset_id=upload.id,
        source=DatasetSource.UPLOAD.value,
        task=upload.task,
        X_train=x[train],
        y_train=y[train],
        X_test=x_test,
        y_test=y_test,
        metadata=metadata,
    )


def _test_dataset_rows(
    session: Session, settings: Settings, upload: Dataset, test_dataset: str, y_train: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every row of the test dataset (an upload id of the same owner), labels aligned."""
    test = find_upload(session, upload.owner, test_dataset, with_data=True)
    if test is None:
        raise NotFound.for_field(
            "test_dataset",
            "no such dataset",
            summary=f"test dataset {test_dataset!r} was deleted after the job was submitted",
        )
    x, y, _ = upload_arrays(settings, test)
    return x, align_labels(y_train, y)


def missing_test_split(name: str) -> Unprocessable:
    return invalid(
        "test_dataset",
        "required: the dataset was uploaded with test_fraction 0 and no test_file",
        summary=f"dataset {name!r} was uploaded with test_fraction 0 and no test_file: name "
        "the upload holding its test rows as test_dataset, or set test_fraction",
    )


def _catalog_training_data(
    settings: Settings,
    name: str,
    seed: int,
    test_fraction: float | None,
    download: bool,
    generator: dict[str, Any],
) -> TrainingData:
    fraction = DEFAULT_TEST_FRACTION if test_fraction is None else test_fraction
    try:
        loaded = load_dataset(
            name,
            catalog_dir(settings),
            seed=seed,
            test_fraction=fraction,
            download=download,
            **generator,
        )
    except DatasetUnavailable as exc:
        raise unavailable_error(exc) from None
    except SpecError as exc:
        raise invalid(exc.field, exc.message, summary=exc.message) from None
    except DataError as exc:  # files passed their checksum but do not parse: server side
        raise DatasetUnavailableError(f"built-in dataset {name!r} is unusable: {exc}") from None
    return TrainingData(
        name=name,
        dataset_id=None,
        source=DatasetSource.BUILTIN.value,
        task=loaded.info.kind,
        X_train=loaded.X_train,
        y_train=loaded.y_train,
        X_test=loaded.X_test,
        y_test=loaded.y_test,
        metadata={**loaded.metadata, "classes": list(loaded.info.classes)},
    )


def _check_fraction(fraction: float) -> None:
    """A job's own test_fraction (an upload may store 0, meaning no split of its rows)."""
    if isinstance(fraction, bool) or not 0.0 < fraction < 1.0:
        raise invalid(
            "test_fraction",
            "must be in (0, 1)",
            summary=f"test_fraction must be between 0 and 1 (exclusive), got {fraction!r}",
        )


def unavailable_error(exc: DatasetUnavailable) -> DatasetUnavailableError:
    """nn_core's DatasetUnavailable as a 503: the one-line summary (why, and the fix) as the
    message, each file to put in place (with its sha256) in the details."""
    details = [
        ErrorDetail(field="dataset", message=f"put {path.name} at {path} (sha256 {digest})")
        for path, digest in exc.missing
    ]
    return DatasetUnavailableError(exc.summary, details=details)


def split_sizes(upload: Dataset) -> tuple[int, int]:
    """(n_train, n_test) that `upload_split` gives, computed from the stored metadata."""
    if upload.n_test_rows:
        return upload.n_rows - upload.n_test_rows, upload.n_test_rows
    fraction = upload_fraction(upload)
    if upload.task in CLASSIFIED_TASKS and upload.class_balance:
        n_test = sum(round(count * fraction) for count in upload.class_balance.values())
    else:
        n_test = round(upload.n_rows * fraction)
    return upload.n_rows - n_test, n_test
