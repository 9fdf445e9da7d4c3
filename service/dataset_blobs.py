"""Where an upload's stored arrays live: a file in the blob store, or (older rows, or
NNS_DATASET_STORAGE=database) the `datasets.data` column.

A large upload written to the database grows the SQLite file and its WAL by its size (twice
while it is written) and every backup with it; in the blob store it costs the database one
digest. Rows reference blobs by SHA-256 (`Dataset.data_sha256`, `Dataset.size_bytes`), so
identical uploads share a file, and the file goes when the last row referencing it does.

Storing, and releasing on delete, run inside the caller's write transaction under a lock on
the digest (SQLite: BEGIN IMMEDIATE already serializes writers; Postgres: an advisory lock),
so a delete never removes a file that a concurrent upload of the same bytes has just
referenced.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from service import blobs
from service.config import Settings
from service.db import Database
from service.errors import ServiceError
from service.models import Dataset, DatasetStorage

# Any constant shared by every nn-service process; Postgres advisory locks are keyed by ints.
_PG_BLOB_LOCK = 0x6E6E735F626C & 0x7FFFFFFF  # "nns_bl"


class DatasetCorrupt(ServiceError):
    """An upload whose stored data cannot be read back as stored (file missing or altered).

    409: the dataset exists but is unusable as it is; the message says which one and that
    uploading it again (after deleting it) is the fix. A job on it fails with this message.
    """

    status, type = 409, "dataset_corrupt"


class StorageUnavailable(ServiceError):
    """The blob store cannot take a file now (disk full, quota, permissions): 503 with
    Retry-After, like a full database, never a 500; nothing is stored."""

    status, type = 503, "storage_unavailable"


@dataclass(frozen=True)
class StoredData:
    """The columns that say where a new upload's bytes are."""

    storage: str
    data: bytes | None
    data_sha256: str | None
    size_bytes: int


def blob_root(settings: Settings) -> Path:
    """The blob store of this data dir; workers on other machines must share it (or use
    NNS_DATASET_STORAGE=database)."""
    return settings.data_dir.absolute() / "blobs"


def store(session: Session, settings: Settings, blob: bytes) -> StoredData:
    """Put `blob` where the settings say; call it in the transaction that inserts the row."""
    if settings.dataset_storage == "database":
        return StoredData(DatasetStorage.DATABASE.value, blob, None, len(blob))
    ref = blobs.ref_of(blob)
    _lock_digest(session, ref.sha256)
    try:
        blobs.put(blob_root(settings), blob, ref)
    except OSError as exc:
        why = "the disk is full" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else "it failed"
        raise StorageUnavailable(
            f"the dataset file store cannot write this upload: {why} "
            f"({exc.strerror or exc}); nothing was stored",
            headers={"Retry-After": "1"},
        ) from None
    return StoredData(DatasetStorage.FILE.value, None, ref.sha256, ref.size)


def read(settings: Settings, row: Dataset) -> bytes:
    """The upload's stored bytes, checked; DatasetCorrupt naming the dataset otherwise.

    The row must have been loaded with its data column (`find_upload(..., with_data=True)`)
    when it may be stored in the database.
    """
    if row.storage == DatasetStorage.FILE.value:
        if row.data_sha256 is None or row.size_bytes is None:
            raise corrupt(row, "its row names no file")
        ref = blobs.BlobRef(row.data_sha256, row.size_bytes)
        try:
            return blobs.read(blob_root(settings), ref)
        except blobs.BlobError as exc:
            raise corrupt(row, str(exc)) from None
    if row.data is None:
        raise corrupt(row, "it has no stored data")
    return row.data


def release(session: Session, settings: Settings, row: Dataset) -> None:
    """After `row` was deleted (and flushed) in this transaction, remove its file unless
    another row still references it."""
    if row.storage == DatasetStorage.FILE.value and row.data_sha256 is not None:
        discard_unreferenced(session, settings, row.data_sha256)


def discard_unreferenced(session: Session, settings: Settings, sha256: str) -> None:
    """Remove the blob `sha256` if no row references it (under the digest's lock)."""
    _lock_digest(session, sha256)
    if not _references(session, sha256):
        blobs.delete(blob_root(settings), sha256)


def discard_if_orphaned(database: Database, settings: Settings, stored: StoredData) -> None:
    """After an upload's transaction failed: remove the file it wrote unless another row uses
    it (best effort; the upload's own error is what the caller reports)."""
    if stored.data_sha256 is None:
        return
    try:
        with database.write_session() as session:
            discard_unreferenced(session, settings, stored.data_sha256)
    except Exception:  # never hide the upload's own failure behind this one
        pass


def corrupt(row: Dataset, why: str) -> DatasetCorrupt:
    return DatasetCorrupt(
        f"the stored data of dataset {row.name!r} ({row.id}) cannot be used: {why}; "
        "delete the dataset and upload it again"
    )


def _references(session: Session, sha256: str) -> int:
    query = select(func.count(Dataset.id)).where(
        Dataset.data_sha256 == sha256, Dataset.storage == DatasetStorage.FILE.value
    )
    return int(session.scalar(query) or 0)


def _lock_digest(session: Session, sha256: str) -> None:
    """Serialize stores and releases of one digest on Postgres until the transaction ends."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:k, hashtext(:sha))"),
            {"k": _PG_BLOB_LOCK, "sha": sha256},
        )
