"""IDX reader/writer: round trips for every type, gzip by magic, and clear errors on bad files."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from shared_data import FASHION_MISSING

from nn_core.datasets.idx import TYPES, encode_idx, read_idx, write_idx
from nn_core.errors import DataError

FASHION = Path("/usr/share/datasets/fashion-mnist")


@pytest.mark.parametrize("dtype", [dt.newbyteorder("=") for dt in TYPES.values()])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip_every_type(dtype: np.dtype[np.generic], compress: bool) -> None:
    rng = np.random.default_rng(0)
    arr = (rng.normal(size=(3, 4, 5)) * 50).astype(dtype)
    out = read_idx(encode_idx(arr, compress=compress))
    assert out.dtype == dtype
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, arr)
    assert out.flags.writeable


def test_mnist_header_layout() -> None:
    data = encode_idx(np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert data[:4] == b"\x00\x00\x08\x02"
    assert struct.unpack(">II", data[4:12]) == (2, 3)
    assert data[12:] == bytes(range(6))


def test_files_gzip_detected_by_magic_not_name(tmp_path: Path) -> None:
    arr = np.arange(10, dtype=np.int32)
    write_idx(tmp_path / "a.gz", arr)
    assert (tmp_path / "a.gz").read_bytes()[:2] == b"\x1f\x8b"
    (tmp_path / "plain.gz").write_bytes(encode_idx(arr))  # misnamed, not compressed
    (tmp_path / "packed.idx").write_bytes(encode_idx(arr, compress=True))
    for name in ("a.gz", "plain.gz", "packed.idx"):
        np.testing.assert_array_equal(read_idx(tmp_path / name), arr)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "a.gz")), arr)


def _bad(data: bytes, match: str) -> None:
    with pytest.raises(DataError, match=match) as info:
        read_idx(data, field="train-images")
    assert info.value.field == "train-images"


def test_wrong_magic() -> None:
    _bad(b"PK\x03\x04" + bytes(20), "not an IDX file")
    _bad(b"\x00\x00", "too short")
    _bad(b"", "too short")


def test_unknown_type_code_and_dimension_count() -> None:
    _bad(b"\x00\x00\x07\x01" + struct.pack(">I", 1) + b"\x00", "unknown IDX type code 0x07")
    _bad(b"\x00\x00\x08\x00", "1 to 8 dimensions, got 0")
    _bad(b"\x00\x00\x08\x09" + bytes(36), "1 to 8 dimensions, got 9")


def test_truncated_header_and_payload() -> None:
    full = encode_idx(np.ones((4, 4), dtype=np.uint8))
    _bad(full[:9], "truncated IDX header")
    _bad(full[:-1], "expected 16 bytes after the header, got 15")
    _bad(gzip.compress(full[:-3]), "expected 16 bytes")


def test_trailing_bytes_are_refused() -> None:
    _bad(encode_idx(np.ones(3, dtype=np.uint8)) + b"\x00", "longer than its dimensions")


def test_absurd_dimensions_fail_before_allocating() -> None:
    # 4 billion x 4 billion float64: must not try to allocate anything like that.
    header = b"\x00\x00\x0e\x02" + struct.pack(">II", 0xFFFFFFFF, 0xFFFFFFFF)
    _bad(header, "over the 1,073,741,824-byte limit")
    with pytest.raises(DataError, match="limit"):
        read_idx(encode_idx(np.zeros(100, dtype=np.uint8)), max_bytes=99)


def test_corrupt_gzip_stream() -> None:
    packed = bytearray(gzip.compress(encode_idx(np.arange(1000, dtype=np.int16))))
    packed[len(packed) // 2] ^= 0xFF
    _bad(bytes(packed), "gzip")
    _bad(bytes(packed[:20]), "gzip")


def test_writer_refuses_types_idx_cannot_hold() -> None:
    with pytest.raises(DataError, match="no IDX type code"):
        encode_idx(np.zeros(3, dtype=np.int64))
    with pytest.raises(DataError, match="dimensions"):
        encode_idx(np.zeros((), dtype=np.uint8))


@pytest.mark.skipif(not FASHION.is_dir(), reason=FASHION_MISSING)
def test_reads_real_fashion_mnist_labels() -> None:
    labels = read_idx(FASHION / "t10k-labels-idx1-ubyte.gz")
    assert labels.shape == (10000,)
    assert labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10
