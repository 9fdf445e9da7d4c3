"""Compressed uploads -> the data file inside: gzip (any format) or a zip holding one file.

People download datasets as `mnist_train.csv.gz` or `spambase.zip`; asking them to unpack
first is a needless step. The container is recognised by its magic bytes, not its name, and
decompression stops at `max_bytes`, so a small bomb cannot fill the memory. An .npz is a zip
too: a zip whose members are all .npy arrays is left alone for the NPZ reader.
Over the limit is a `DecodedTooLarge` (a DataError), so a caller can answer "too large"
(413) rather than "malformed" (422).
"""

from __future__ import annotations

import io
import zipfile
import zlib
from pathlib import PurePosixPath

from nn_core.errors import DataError

GZIP_MAGIC = b"\x1f\x8b"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"
_CHUNK = 1 << 20


class DecodedTooLarge(DataError):
    """The data would decode to more bytes than the caller allows: too large, not malformed.

    Raised before the bytes are decoded or allocated whenever the size is known up front
    (zip directory, .npy header), else as soon as a streamed decode passes the limit.
    """


def is_npz(data: bytes) -> bool:
    """A zip archive whose every member is an .npy array (np.savez's output)."""
    if not data.startswith(ZIP_MAGIC):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError):
        return False
    return bool(names) and all(name.endswith(".npy") for name in names)


def unpack(
    data: bytes, filename: str | None, *, field: str = "file", max_bytes: int = 1 << 30
) -> tuple[bytes, str | None, str | None]:
    """(content, its file name, "gzip" | "zip" | None) with any gzip or zip layer removed.

    The name drops ".gz" (or becomes the zip member's name), so the format can still be
    told from it. Raises DataError(field, ...) for corrupt, truncated or oversized archives
    and for a zip that does not hold exactly one data file.
    """
    if data.startswith(GZIP_MAGIC):
        name = filename[:-3] if filename and filename.lower().endswith(".gz") else filename
        return _gunzip(data, field, max_bytes), name, "gzip"
    if data.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)) and not is_npz(data):
        content, name = _unzip_one(data, field, max_bytes)
        return content, name, "zip"
    return data, filename, None


def _gunzip(data: bytes, field: str, max_bytes: int) -> bytes:
    out = bytearray()
    rest = data
    try:
        while rest:  # gzip allows several members one after the other
            inflater = zlib.decompressobj(wbits=31)
            while rest and not inflater.eof:
                out += inflater.decompress(rest[:_CHUNK], max_bytes + 1 - len(out))
                _check_size(out, field, max_bytes)
                rest = inflater.unconsumed_tail + rest[_CHUNK:]
            if not inflater.eof:
                raise DataError(field, "is a truncated gzip file (it ends before the data does)")
            rest = inflater.unused_data
            if rest and not rest.startswith(GZIP_MAGIC):
                break  # trailing padding after the last member, as gzip(1) tolerates
    except zlib.error as exc:
        raise DataError(field, f"is a corrupt gzip file: {exc}") from None
    return bytes(out)


def _unzip_one(data: bytes, field: str, max_bytes: int) -> tuple[bytes, str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [m for m in archive.infolist() if _is_data_member(m)]
            if len(members) != 1:
                shown = ", ".join(repr(m.filename) for m in members[:10]) or "none"
                raise DataError(
                    field,
                    f"is a zip archive with {len(members)} data files ({shown}); "
                    "it must hold exactly one",
                )
            member = members[0]
            if member.file_size > max_bytes:
                raise DecodedTooLarge(
                    field,
                    f"unpacks to {member.file_size:,} bytes, over the {max_bytes:,}-byte limit",
                )
            with archive.open(member) as fh:
                content = fh.read(max_bytes + 1)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as exc:
        raise DataError(field, f"is a corrupt or truncated zip archive: {exc}") from None
    _check_size(content, field, max_bytes)
    return content, PurePosixPath(member.filename).name


def _is_data_member(member: zipfile.ZipInfo) -> bool:
    """Skip directories and the clutter archivers add (__MACOSX/, .DS_Store, dot files)."""
    path = PurePosixPath(member.filename)
    hidden = path.name.startswith(".") or "__MACOSX" in path.parts
    return not member.is_dir() and not hidden


def _check_size(content: bytes | bytearray, field: str, max_bytes: int) -> None:
    if len(content) > max_bytes:
        raise DecodedTooLarge(
            field, f"unpacks to more than {max_bytes:,} bytes, the limit for decoded data"
        )
