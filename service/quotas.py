"""Per-owner storage quotas on uploaded datasets, computed from the stored rows themselves.

No counter column to keep in step (and no migration): an owner's usage is the sum of
`Dataset.size_bytes` and the count of their uploads. The check that counts runs inside the
write transaction that inserts the new row, after taking the owner's write lock (SQLite:
BEGIN IMMEDIATE already holds the database's; Postgres: a transaction-scoped advisory lock
per owner), so two concurrent uploads cannot both squeeze into the last free space.
Deleting a dataset frees its share at once, since nothing else records it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from service.config import Settings
from service.errors import PayloadTooLarge, ServiceError
from service.models import Dataset, DatasetSource

# Any constant shared by every nn-service process; Postgres advisory locks are keyed by ints.
_PG_DATASET_QUOTA_LOCK = 0x6E6E735F7175 & 0x7FFFFFFF  # "nns_qu"


class TooManyDatasets(ServiceError):
    """429: the owner stores as many datasets as allowed; waiting does not help, deleting does
    (so no Retry-After, unlike the rate limits)."""

    status, type = 429, "too_many_datasets"


@dataclass(frozen=True)
class Usage:
    """What one owner stores now: uploads and their stored bytes."""

    count: int
    bytes: int


def usage(session: Session, owner: str) -> Usage:
    """The owner's uploads and stored bytes, from the rows (blobs stay unloaded)."""
    count, total = session.execute(
        select(func.count(Dataset.id), func.coalesce(func.sum(Dataset.size_bytes), 0)).where(
            Dataset.owner == owner, Dataset.source == DatasetSource.UPLOAD.value
        )
    ).one()
    return Usage(int(count or 0), int(total or 0))


def lock_owner(session: Session, owner: str) -> None:
    """Serialize quota checks of one owner on Postgres (SQLite's write session is already
    serialized); held until the transaction ends, so the check and the insert are atomic."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:k, hashtext(:owner))"),
            {"k": _PG_DATASET_QUOTA_LOCK, "owner": owner},
        )


def check_dataset_quota(session: Session, settings: Settings, owner: str, new_bytes: int) -> None:
    """Refuse an upload of `new_bytes` stored bytes that would take the owner past a quota.

    429 naming `file` when the count quota is full, 413 naming `file` when the bytes would
    not fit; both say what is used, what this upload adds and the quota. A quota of 0 is
    no quota. Call it inside the write transaction that inserts the row (after
    `lock_owner`) to be race-safe; calling it before parsing as well refuses early.
    """
    used = usage(session, owner)
    count_quota, bytes_quota = settings.dataset_quota_count, settings.dataset_quota_bytes
    if count_quota and used.count + 1 > count_quota:
        raise TooManyDatasets.for_field(
            "file",
            f"you store {used.count:,} datasets; this upload would make {used.count + 1:,}, "
            f"over the quota of {count_quota:,}",
            summary=f"you store {used.count:,} datasets, the quota is {count_quota:,} "
            "(NNS_DATASET_QUOTA_COUNT); delete one to upload another",
        )
    if bytes_quota and used.bytes + new_bytes > bytes_quota:
        raise PayloadTooLarge.for_field(
            "file",
            f"you store {used.bytes:,} bytes of datasets; this upload needs {new_bytes:,} "
            f"more, over the quota of {bytes_quota:,}",
            summary=f"your datasets use {used.bytes:,} bytes and this one needs {new_bytes:,}; "
            f"the quota is {bytes_quota:,} bytes (NNS_DATASET_QUOTA_BYTES); delete datasets "
            "to make room",
            type="dataset_quota_exceeded",
        )
