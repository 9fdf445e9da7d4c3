"""The Open Inference Protocol's binary tensor data extension over HTTP/REST, in bytes.

A request or a response may be a JSON header of n bytes, announced by the HTTP header
`Inference-Header-Content-Length: n`, followed by raw tensor bytes: each tensor whose
parameters hold `binary_data_size: k` takes the next k bytes, in the order of the tensors.
Numbers are little-endian, row-major; a BYTES element is a 4-byte little-endian length and
then its bytes. tritonclient sends and expects this by default. This module only splits,
packs and converts bytes (and undoes a compressed request body); what the tensors mean is
service/api/v2.py's.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any

import numpy as np

from service.errors import PayloadTooLarge, ServiceError, invalid

HEADER = "Inference-Header-Content-Length"
SIZE = "binary_data_size"

#: The NumPy dtype (little-endian) of each fixed-size datatype; BYTES is length-prefixed.
DTYPES: dict[str, np.dtype[Any]] = {
    name: np.dtype(code)
    for name, code in {
        "BOOL": "?",
        "INT8": "i1",
        "INT16": "<i2",
        "INT32": "<i4",
        "INT64": "<i8",
        "UINT8": "u1",
        "UINT16": "<u2",
        "UINT32": "<u4",
        "UINT64": "<u8",
        "FP16": "<f2",
        "FP32": "<f4",
        "FP64": "<f8",
    }.items()
}

_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """The request body without its Content-Encoding (tritonclient may gzip or deflate it),
    refusing to inflate past `limit` bytes."""
    name = (encoding or "identity").strip().lower()
    if name == "identity":
        return body
    if name not in _WBITS:
        raise ServiceError(
            f"Content-Encoding {encoding!r} is not supported; use gzip, deflate or none",
            status=415,
        )
    inflater = zlib.decompressobj(_WBITS[name])
    try:
        plain = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise invalid("body", f"is not valid {name} data: {exc}") from None
    if len(plain) > limit:
        raise PayloadTooLarge(f"the decompressed request body is larger than {limit} bytes")
    if not inflater.eof:
        raise invalid("body", f"ends before its {name} data does")
    return plain


def split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON header and the binary data after it (none without the HTTP header)."""
    if header_length is None:
        return body, b""
    text = header_length.strip()
    if not text.isdigit() or int(text) > len(body):
        raise invalid(
            HEADER, f"must be a byte count within the {len(body)}-byte body, got {header_length!r}"
        )
    return body[: int(text)], body[int(text) :]


def binary_size(parameters: dict[str, Any] | None, field: str) -> int | None:
    """The tensor's `binary_data_size` parameter, if it has one."""
    value = (parameters or {}).get(SIZE)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise invalid(f"{field}.parameters.{SIZE}", "must be a whole number of bytes")
    return value


def slice_tensors(sizes: list[int | None], data: bytes) -> list[bytes | None]:
    """Each tensor's bytes (None for a tensor without binary data), taken in order."""
    declared = sum(size or 0 for size in sizes)
    if declared != len(data):
        raise invalid(
            HEADER,
            f"the inputs declare {declared} bytes of binary data (parameters.{SIZE}) "
            f"but {len(data)} follow the JSON header",
        )
    pieces: list[bytes | None] = []
    offset = 0
    for size in sizes:
        if size is None:
            pieces.append(None)
            continue
        pieces.append(data[offset : offset + size])
        offset += size
    return pieces


def numbers(raw: bytes, datatype: str, count: int, field: str) -> np.ndarray:
    """`count` values of a fixed-size datatype from its bytes."""
    dtype = DTYPES[datatype]
    need = count * dtype.itemsize
    if len(raw) != need:
        raise invalid(
            f"{field}.parameters.{SIZE}",
            f"is {len(raw)} bytes, but {count} {datatype} values take {need}",
        )
    if datatype == "BOOL":
        octets = np.frombuffer(raw, dtype=np.uint8)
        bad = octets > 1
        if bad.any():
            raise invalid(f"{field}.data[{int(np.argmax(bad))}]", "a BOOL byte must be 0 or 1")
    return np.frombuffer(raw, dtype=dtype)


def strings(raw: bytes, field: str) -> list[bytes]:
    """The elements of a BYTES tensor: each a 4-byte little-endian length, then its bytes."""
    items: list[bytes] = []
    offset = 0
    while offset < len(raw):
        if offset + 4 > len(raw):
            raise invalid(f"{field}.data[{len(items)}]", "its 4-byte length is cut off")
        (length,) = struct.unpack_from("<I", raw, offset)
        offset += 4
        if offset + length > len(raw):
            raise invalid(
                f"{field}.data[{len(items)}]",
                f"declares {length} bytes but only {len(raw) - offset} remain",
            )
        items.append(raw[offset : offset + length])
        offset += length
    return items


def tensor_bytes(datatype: str, data: list[Any]) -> bytes:
    """A tensor's row-major data (a flat list) in its binary form."""
    if datatype != "BYTES":
        return np.asarray(data, dtype=DTYPES[datatype]).tobytes()
    parts: list[bytes] = []
    for item in data:
        encoded = item if isinstance(item, bytes) else str(item).encode()
        parts += [struct.pack("<I", len(encoded)), encoded]
    return b"".join(parts)


def pack(header: dict[str, Any], data: list[bytes]) -> tuple[bytes, int]:
    """The body (JSON header, then the tensors' bytes) and the header's length in bytes."""
    encoded = json.dumps(header, separators=(",", ":")).encode()
    return encoded + b"".join(data), len(encoded)
