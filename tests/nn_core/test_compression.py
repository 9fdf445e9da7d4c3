"""gzip and zip layers come off uploads by their magic bytes, with errors that say what broke."""

from __future__ import annotations

import gzip
import io
import zipfile

import numpy as np
import pytest

from nn_core.datasets.compression import DecodedTooLarge, unpack
from nn_core.errors import DataError

CSV = b"a,b,label\n1,2,0\n3,4,1\n"


def _zip(**members: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name.replace("__", "/"), data)
    return buffer.getvalue()


def _fails(data: bytes, match: str, **kwargs: int) -> None:
    with pytest.raises(DataError, match=match) as info:
        unpack(data, "upload", field="test_file", **kwargs)
    assert info.value.field == "test_file"


def test_plain_bytes_pass_through() -> None:
    assert unpack(CSV, "d.csv") == (CSV, "d.csv", None)


def test_gzip_is_unpacked_and_the_name_loses_gz() -> None:
    assert unpack(gzip.compress(CSV), "train.csv.gz") == (CSV, "train.csv", "gzip")
    two_members = gzip.compress(CSV[:10]) + gzip.compress(CSV[10:])
    assert unpack(two_members, "x.gz")[0] == CSV


def test_zip_with_one_data_file_ignoring_clutter() -> None:
    data = _zip(**{"d__train.csv": CSV, "__MACOSX__._train.csv": b"junk", ".DS_Store": b"x"})
    assert unpack(data, "spambase.zip") == (CSV, "train.csv", "zip")


def test_npz_is_left_for_the_npz_reader() -> None:
    buffer = io.BytesIO()
    np.savez(buffer, X=np.zeros((2, 2)), y=np.zeros(2))
    assert unpack(buffer.getvalue(), "d.npz")[2] is None


def test_broken_archives_are_named() -> None:
    packed = gzip.compress(CSV * 100)
    _fails(packed[: len(packed) // 2], "truncated gzip")
    _fails(packed[:10] + b"\xff" * 40, "corrupt gzip")
    _fails(gzip.compress(CSV * 100), "more than 100 bytes", max_bytes=100)
    _fails(_zip(), "0 data files")
    _fails(_zip(**{"a.csv": CSV, "b.csv": CSV}), "2 data files .*'a.csv', 'b.csv'")
    whole = _zip(**{"a.csv": CSV * 50})
    _fails(whole[: len(whole) // 2], "corrupt or truncated zip")
    _fails(_zip(**{"a.csv": CSV * 50}), "over the 100-byte limit", max_bytes=100)


@pytest.mark.parametrize("container", ["gzip", "zip"])
def test_over_the_limit_is_its_own_error(container: str) -> None:
    """Too large is not malformed: the service answers 413 for it, 422 for a broken file."""
    data = gzip.compress(bytes(10_000)) if container == "gzip" else _zip(z=bytes(10_000))
    with pytest.raises(DecodedTooLarge, match=r"10,000|1,000") as info:
        unpack(data, "upload", field="test_file", max_bytes=1000)
    assert info.value.field == "test_file"
