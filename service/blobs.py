"""A content-addressed file store for large bytes (dataset arrays), kept out of the database.

A blob lives at `<root>/<sha256[:2]>/<sha256>`: written to a temporary file in the same
directory, fsynced and renamed into place (readers never see half a file), mode 0600 in
0700 directories. Identical bytes share one file. Reading checks the size and SHA-256, so a
truncated, damaged or missing file is an error (`BlobError`), never silently wrong bytes.
This module knows files only; which rows reference a blob is `service/dataset_blobs.py`'s job.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from service.private_files import private_dir

_SHA256 = re.compile(r"[0-9a-f]{64}")
_READ_CHUNK = 1024 * 1024


class BlobError(Exception):
    """A blob that cannot be read back as written: missing, truncated or altered."""


@dataclass(frozen=True)
class BlobRef:
    """What a row stores to find and check its blob."""

    sha256: str
    size: int


def blob_path(root: Path, sha256: str) -> Path:
    """Where the blob with this digest lives (the digest is checked: it names a file)."""
    if not _SHA256.fullmatch(sha256):
        raise BlobError(f"not a SHA-256 digest: {sha256[:80]!r}")
    return root / sha256[:2] / sha256


def ref_of(data: bytes) -> BlobRef:
    """The digest and size `data` is stored under (known before writing, to lock on it)."""
    return BlobRef(hashlib.sha256(data).hexdigest(), len(data))


def put(root: Path, data: bytes, ref: BlobRef | None = None) -> BlobRef:
    """Store `data` (atomically, durably) and return its digest and size (`ref`, when given,
    must be `ref_of(data)`: it saves hashing large bytes twice).

    An intact file with the same digest is kept as is; a damaged one is replaced, so uploading
    the same bytes again repairs it.
    """
    ref = ref or ref_of(data)
    path = blob_path(root, ref.sha256)
    if _is_intact(path, ref):
        return ref
    private_dir(root)
    private_dir(path.parent)
    tmp = path.with_name(f".{ref.sha256}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return ref


def read(root: Path, ref: BlobRef) -> bytes:
    """The blob's bytes, checked against the size and digest it was stored with."""
    path = blob_path(root, ref.sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BlobError(f"its file {path} is missing") from None
    except OSError as exc:
        raise BlobError(f"its file {path} cannot be read ({exc.strerror or exc})") from None
    if len(data) != ref.size:
        raise BlobError(f"its file {path} has {len(data):,} bytes, {ref.size:,} were stored")
    if hashlib.sha256(data).hexdigest() != ref.sha256:
        raise BlobError(f"its file {path} was altered (its SHA-256 no longer matches)")
    return data


def delete(root: Path, sha256: str) -> None:
    """Remove the blob's file (already gone is fine). Callers check no row still needs it."""
    path = blob_path(root, sha256)
    path.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _is_intact(path: Path, ref: BlobRef) -> bool:
    try:
        if path.stat().st_size != ref.size:
            return False
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(_READ_CHUNK):
                digest.update(chunk)
    except OSError:
        return False
    return digest.hexdigest() == ref.sha256


def _fsync_dir(path: Path) -> None:
    """Make a rename or unlink in `path` durable (best effort where directories cannot be
    opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
