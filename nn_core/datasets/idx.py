"""IDX files (the MNIST format), raw or gzip-compressed, read defensively.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian uint32 per
dimension, then the values big-endian in C order. The header is validated before anything is
allocated, so a corrupt or hostile file gives a DataError, never a huge allocation; the
payload must be exactly as long as the dimensions say.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import zlib

import numpy as np

from nn_core.errors import DataError

#: IDX type code -> big-endian NumPy dtype.
TYPES: dict[int, np.dtype[np.generic]] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
MAX_DIMS = 8
#: Default payload cap (MNIST's training images are 47 MB uncompressed).
MAX_BYTES = 1 << 30
_GZIP_MAGIC = b"\x1f\x8b"

Source = bytes | str | os.PathLike[str]


def read_idx(source: Source, *, field: str = "file", max_bytes: int = MAX_BYTES) -> np.ndarray:
    """Array from IDX bytes or a path (gzip detected by its magic, not the file name).

    The result has native byte order and the file's dimensions; `field` names the input in
    errors (e.g. the file name).
    """
    if isinstance(source, bytes):
        return _read(io.BytesIO(source), field, max_bytes)
    with open(source, "rb") as fh:
        return _read(fh, field, max_bytes)


def _read(raw: io.BufferedIOBase, field: str, max_bytes: int) -> np.ndarray:
    head = raw.read(2)
    raw.seek(0)
    stream: io.BufferedIOBase = (
        gzip.GzipFile(fileobj=raw, mode="rb") if head == _GZIP_MAGIC else raw
    )
    try:
        dtype, shape = _header(stream, field)
        size = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if size > max_bytes:
            raise DataError(
                field,
                f"IDX dimensions {list(shape)} need {size:,} bytes, "
                f"over the {max_bytes:,}-byte limit",
            )
        payload = bytearray(size)
        got = _read_into(stream, payload)
        if got != size:
            raise DataError(
                field, f"truncated IDX data: expected {size:,} bytes after the header, got {got:,}"
            )
        if stream.read(1):
            raise DataError(field, f"IDX file is longer than its dimensions {list(shape)} say")
    except (EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(field, f"corrupt or truncated gzip data: {exc}") from None
    arr = np.frombuffer(payload, dtype=dtype).reshape(shape)
    return arr.astype(dtype.newbyteorder("="), copy=dtype.itemsize > 1)


def _read_into(stream: io.BufferedIOBase, buf: bytearray) -> int:
    """Fill `buf` from the stream; fewer bytes only at end of data."""
    view = memoryview(buf)
    got = 0
    while got < len(buf):
        n = stream.readinto(view[got:])
        if not n:
            break
        got += n
    return got


def _header(stream: io.BufferedIOBase, field: str) -> tuple[np.dtype[np.generic], tuple[int, ...]]:
    magic = stream.read(4)
    if len(magic) < 4:
        raise DataError(field, "too short to be an IDX file")
    if magic[:2] != b"\0\0":
        raise DataError(field, f"not an IDX file (magic {magic.hex()}; expected 0000<type><ndim>)")
    code, ndim = magic[2], magic[3]
    if code not in TYPES:
        known = ", ".join(f"0x{c:02x}" for c in TYPES)
        raise DataError(field, f"unknown IDX type code 0x{code:02x} (known: {known})")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(field, f"IDX files need 1 to {MAX_DIMS} dimensions, got {ndim}")
    dims = stream.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise DataError(field, "truncated IDX header")
    return TYPES[code], struct.unpack(f">{ndim}I", dims)


def encode_idx(array: np.ndarray, *, compress: bool = False) -> bytes:
    """IDX bytes for `array` (gzip-compressed on request); used to write test fixtures."""
    arr = np.asarray(array)
    code = next(
        (c for c, dt in TYPES.items() if dt.newbyteorder("=") == arr.dtype.newbyteorder("=")),
        None,
    )
    if code is None:
        raise DataError("array", f"dtype {arr.dtype} has no IDX type code")
    if not 1 <= arr.ndim <= MAX_DIMS:
        raise DataError("array", f"IDX needs 1 to {MAX_DIMS} dimensions, got {arr.ndim}")
    header = struct.pack(f">2xBB{arr.ndim}I", code, arr.ndim, *arr.shape)
    data = header + np.ascontiguousarray(arr, dtype=TYPES[code]).tobytes()
    return gzip.compress(data, mtime=0) if compress else data


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write `array` as IDX, gzip-compressed when the path ends in .gz."""
    compress = os.fspath(path).endswith(".gz")
    with open(path, "wb") as fh:
        fh.write(encode_idx(array, compress=compress))
