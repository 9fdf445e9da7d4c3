"""Getting dataset files onto disk: a verified local copy if there is one, else a download.

A file is only ever used when its sha256 matches a published digest. Downloads go through
urllib (nn_core stays NumPy + stdlib), mirror by mirror, into a temporary file in the target
directory that is renamed into place only after the digest checks out, so a crash or a bad
mirror never leaves a half-written or corrupt file under the real name. Offline users can drop
the file in by hand; the error says exactly which file, where, and its sha256.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from nn_core.errors import NNCoreError

CHUNK = 1 << 20
#: Cap for downloads and archive members whose size is not published.
DEFAULT_MAX_BYTES = 1 << 30
USER_AGENT = "nn-service-dataset-fetcher/1"


class DatasetUnavailable(NNCoreError):
    """A dataset file is neither on disk nor downloadable right now.

    `missing` lists (path, sha256) pairs: where each file would have to be put, and the
    digest it must have, so a caller can show offline users exactly what to do. `cause` is
    the short why (e.g. "no connection", "downloads are disabled") for a one-line summary;
    `summary` is that line when the catalog has written one (see catalog.py), else `message`.
    """

    def __init__(
        self,
        message: str,
        missing: Iterable[tuple[Path, str]] = (),
        *,
        cause: str = "not on disk",
        summary: str = "",
    ) -> None:
        self.message = message
        self.missing = list(missing)
        self.cause = cause
        self.summary = summary or message
        super().__init__(message)


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name on disk, digest(s), and the URLs to try in order."""

    name: str
    sha256: str
    urls: tuple[str, ...] = ()
    #: Published size in bytes; a download that grows past it is cut off.
    size: int | None = None
    #: Digests of other known-good copies of the same content (e.g. a re-compressed package).
    also_accept: tuple[str, ...] = ()
    #: Read-only directories checked before the cache (e.g. a system package's data).
    search_dirs: tuple[str, ...] = ()

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.sha256, *self.also_accept)

    def hint(self, directory: Path | None) -> str:
        where = directory / self.name if directory is not None else self.name
        source = f" (from {self.urls[0]})" if self.urls else ""
        return f"put {self.name}{source} at {where} (sha256 {self.sha256})"


@dataclass(frozen=True)
class ZipMember:
    """A file that ships inside a published zip archive; extracted by exact member name."""

    name: str
    sha256: str
    archive: RemoteFile
    member: str
    also_accept: tuple[str, ...] = ()

    @property
    def digests(self) -> tuple[str, ...]:
        return (self.sha256, *self.also_accept)

    def hint(self, directory: Path | None) -> str:
        where = directory / self.name if directory is not None else self.name
        return (
            f"put {self.name} at {where} (sha256 {self.sha256}), or {self.archive.hint(directory)}"
        )


DataFile = RemoteFile | ZipMember


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def candidates(file: DataFile, directory: Path | None) -> list[Path]:
    """Where a copy of `file` may already be, in the order they are tried."""
    places = [directory] if directory is not None else []
    if isinstance(file, RemoteFile):
        places += [Path(d) for d in file.search_dirs]
    return [p / file.name for p in places]


def is_present(file: DataFile, directory: Path | None) -> bool:
    """Cheap check (no hashing) that a copy or, for a zip member, its archive exists."""
    if any(p.is_file() for p in candidates(file, directory)):
        return True
    return isinstance(file, ZipMember) and is_present(file.archive, directory)


def find_verified(file: DataFile, directory: Path | None) -> tuple[Path | None, str, list[str]]:
    """The first existing copy whose sha256 is accepted (with that digest), and notes about
    copies that were rejected."""
    notes: list[str] = []
    for path in candidates(file, directory):
        if path.is_file():
            digest = sha256_file(path)
            if digest in file.digests:
                return path, digest, notes
            notes.append(f"{path} exists but its sha256 is {digest}, expected {file.sha256}")
    return None, "", notes


def ensure(
    file: DataFile, directory: Path | None, *, download: bool = True, timeout: float = 30.0
) -> Path:
    """Path of a verified copy of `file`, downloading (and extracting) it if needed."""
    return locate(file, directory, download=download, timeout=timeout)[0]


def locate(
    file: DataFile, directory: Path | None, *, download: bool = True, timeout: float = 30.0
) -> tuple[Path, str]:
    """Like `ensure`, also returning the sha256 of the copy used (one of `file.digests`)."""
    found, digest, notes = find_verified(file, directory)
    if found is not None:
        return found, digest
    if directory is None:
        cause = "no cache directory is configured"
        raise _unavailable(file, None, [*notes, cause], cause)
    if isinstance(file, ZipMember):
        try:
            archive = ensure(file.archive, directory, download=download, timeout=timeout)
        except DatasetUnavailable as exc:
            raise _unavailable(file, directory, [*notes, exc.message], exc.cause) from None
        return _extract(file, archive, directory)
    if not download:
        cause = "downloads are disabled"
        raise _unavailable(file, directory, [*notes, cause], cause)
    directory.mkdir(parents=True, exist_ok=True)
    failures: list[_Failed] = []
    for url in file.urls:
        try:
            return _download(url, file, directory, timeout)
        except _Failed as exc:
            failures.append(exc)
            notes.append(f"{url}: {exc}")
    if not failures:
        cause = "no download URL is known"
        raise _unavailable(file, directory, [*notes, cause], cause)
    # Every mirror unreachable is the offline case; else the last mirror's short reason.
    cause = "no connection" if all(f.offline for f in failures) else failures[-1].short
    raise _unavailable(file, directory, notes, cause)


def _unavailable(
    file: DataFile, directory: Path | None, notes: list[str], cause: str
) -> DatasetUnavailable:
    where = directory / file.name if directory is not None else Path(file.name)
    detail = "; ".join(notes)
    return DatasetUnavailable(
        f"{file.name} is not available ({detail}). To install it by hand, {file.hint(directory)}.",
        [(where, file.sha256)],
        cause=cause,
    )


class _Failed(Exception):
    """One mirror did not deliver a good copy; `short` says why in a few words, `offline`
    whether the mirror could not be reached at all."""

    def __init__(self, message: str, short: str = "", *, offline: bool = False) -> None:
        super().__init__(message)
        self.short = short or message
        self.offline = offline


def _download(url: str, file: RemoteFile, directory: Path, timeout: float) -> tuple[Path, str]:
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in ("http", "https"):
        raise _Failed(f"unsupported URL scheme {scheme!r}")
    limit = file.size if file.size is not None else DEFAULT_MAX_BYTES
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part", dir=directory)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        total = 0
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(request, timeout=timeout) as resp:
            while chunk := resp.read(CHUNK):
                total += len(chunk)
                if total > limit:
                    raise _Failed(f"larger than the expected {limit:,} bytes")
                digest.update(chunk)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() not in file.digests:
            raise _Failed(
                f"corrupt download: sha256 {digest.hexdigest()}, expected {file.sha256}",
                "corrupt download",
            )
        target = directory / file.name
        os.replace(tmp, target)
        return target, digest.hexdigest()
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        unreachable = isinstance(exc, urllib.error.URLError) and not isinstance(
            exc, urllib.error.HTTPError
        )
        raise _Failed(_reason(exc), offline=unreachable) from None
    finally:
        tmp.unlink(missing_ok=True)


def _reason(exc: Exception) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        return f"cannot connect ({exc.reason})"
    return f"{type(exc).__name__}: {exc}"


def _extract(file: ZipMember, archive: Path, directory: Path) -> tuple[Path, str]:
    """Copy one member out of the archive (by exact name, never a path from the zip itself)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            info = zf.getinfo(file.member)
            if info.file_size > DEFAULT_MAX_BYTES:
                raise ValueError(f"it declares {info.file_size:,} bytes")
            data = zf.read(info)
    except (KeyError, ValueError, zipfile.BadZipFile, OSError) as exc:
        raise _unavailable(
            file,
            directory,
            [f"{archive}: cannot read {file.member}: {exc}"],
            f"{archive.name} is unreadable",
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest not in file.digests:
        raise _unavailable(
            file,
            directory,
            [f"{file.member} in {archive} has sha256 {digest}, expected {file.sha256}"],
            f"{file.member} in {archive.name} has the wrong sha256",
        )
    fd, tmp_name = tempfile.mkstemp(prefix=f".{file.name}.", suffix=".part", dir=directory)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, directory / file.name)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return directory / file.name, digest
