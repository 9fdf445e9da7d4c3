"""CSV / NPZ / label<TAB>text loaders: the happy paths and errors that say what and where."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from shared_data import SMS_SPAM, SMS_SPAM_MISSING

from nn_core.datasets.compression import DecodedTooLarge
from nn_core.datasets.loaders import (
    load_csv,
    load_npz,
    load_text_labels,
    looks_like_header,
    read_csv,
)
from nn_core.errors import DataError

SMS = SMS_SPAM


def _error(call: object, field: str, match: str) -> DataError:
    with pytest.raises(DataError, match=match) as info:
        call()  # type: ignore[operator]
    assert info.value.field == field
    return info.value


# ----------------------------------------------------------------------------- CSV


def test_csv_features_and_integer_labels(tmp_path: Path) -> None:
    data = b"a, b ,label,c\n1,2.5,0,-3\n4,5e-1,1,6\n\n7,8,1,9\n"
    x, y = load_csv(data, "label")
    np.testing.assert_array_equal(x, [[1, 2.5, -3], [4, 0.5, 6], [7, 8, 9]])
    assert x.dtype == np.float64
    assert y.dtype == np.int64
    assert y.tolist() == [0, 1, 1]
    (tmp_path / "d.csv").write_bytes(data)
    x2, y2 = load_csv(tmp_path / "d.csv", "label", dtype=np.float32)
    assert x2.dtype == np.float32
    np.testing.assert_array_equal(y2, y)


def test_csv_string_and_float_labels_bom_and_semicolons() -> None:
    _, y = load_csv("\ufeffx;kind\n1;cat\n2;dog\n".encode(), "kind", delimiter=";")
    assert y.dtype.kind == "U"
    assert y.tolist() == ["cat", "dog"]
    _, y = load_csv(b"x,t\n1,0.5\n2,1\n", "t")
    assert y.dtype == np.float64


def test_csv_that_is_not_utf8_names_the_line_and_byte() -> None:
    data = "x,label\n1,caf\xe9\n".encode("latin-1")
    _error(lambda: load_csv(data, "label"), "file", "not UTF-8 text: line 2 .* 0xe9 .* offset 13")


def test_headerless_csv_label_by_index_or_last_column_by_default() -> None:
    data = b"5.1,3.5,0\n4.9,3.0,0\n6.3,2.9,1\n"
    table = read_csv(data)
    assert table.header is False
    assert table.label_name == "2" and table.label_index == 2
    assert table.feature_names == ["0", "1"]
    np.testing.assert_array_equal(table.x, [[5.1, 3.5], [4.9, 3.0], [6.3, 2.9]])
    assert table.y.tolist() == [0, 0, 1]
    first = read_csv(b"1,0.5,0.25\n0,0.1,0.2\n", "0")  # MNIST-style: the label first
    assert first.y.tolist() == [1, 0]
    assert first.feature_names == ["1", "2"]
    assert read_csv(b"1,0.5,0.25\n0,0.1,0.2\n", "-1").y.tolist() == [0.25, 0.2]
    err = _error(lambda: read_csv(data, "7"), "label_column", "not found")
    assert "3 columns, indexes 0 to 2" in err.message


def test_header_detection_and_the_explicit_override() -> None:
    named = read_csv(b"sepal,petal,species\n1,2,a\n3,4,b\n")
    assert named.header is True and named.label_name == "species"
    assert read_csv(b"Label,p0,p1\n3,0,1\n4,1,0\n").label_name == "Label"  # a label name
    assert read_csv(b"sepal,petal,kind\n1,2,0\n3,4,1\n", "1").label_name == "petal"  # index
    numeric_names = b"0,1,2\n5,6,1\n7,8,0\n"
    assert read_csv(numeric_names).header is False  # numeric names are data to the detector
    assert read_csv(numeric_names, header=True).y.tolist() == [1, 0]
    # One stray bad cell in a data row is not a header: it is reported, with a hint.
    err = _error(lambda: read_csv(b"1,?,0\n2,3,1\n"), "1", "line 1, column 1: '\\?' is not")
    assert "send header=true" in err.message
    assert looks_like_header([["a", "b"], ["1", "x"]]) is True
    assert looks_like_header([["1", "b"], ["1", "x"]]) is False


def test_csv_missing_label_column_lists_columns() -> None:
    err = _error(lambda: load_csv(b"sepal,petal\n1,2\n", "species"), "label_column", "not found")
    assert "the file has columns: 'sepal', 'petal'" in err.message


def test_csv_non_numeric_cell_names_column_and_line() -> None:
    err = _error(lambda: load_csv(b"a,b,y\n1,2,0\n3,oops,1\n", "y"), "b", "line 3, column 1")
    assert "'oops' is not a number" in err.message
    _error(lambda: load_csv(b"a,y\n1,0\n,1\n", "y"), "a", "line 3, column 0: is empty")
    _error(lambda: load_csv(b"a,y\n1,0\ninf,1\n", "y"), "a", "not a finite number")


def test_csv_ragged_rows_empty_files_and_headers() -> None:
    _error(
        lambda: load_csv(b"a,b,y\n1,2,0\n1,2\n", "y"),
        "file",
        "line 3 has 2 fields, expected 3 as the header has",
    )
    _error(lambda: load_csv(b"", "y"), "file", "is empty")
    _error(lambda: load_csv(b"\n \n", "y"), "file", "is empty")
    _error(lambda: load_csv(b"a,y\n", "y"), "file", "no data rows")
    _error(lambda: load_csv(b"y\n1\n", "y"), "file", "at least one feature")
    _error(lambda: load_csv(b"a,a,y\n1,2,0\n", "y"), "file", "duplicate column names: 'a'")
    _error(lambda: load_csv(b"a,y\n1, \n", "y"), "y", "label is empty")


# ----------------------------------------------------------------------------- NPZ


def _npz(compressed: bool = False, **arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("compressed", [False, True])
def test_npz_round_trip(compressed: bool) -> None:
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array(["a", "b", "a", "c"])
    got_x, got_y = load_npz(_npz(compressed, X=x, y=y))
    np.testing.assert_array_equal(got_x, x)
    assert got_x.dtype == np.float32
    np.testing.assert_array_equal(got_y, y)


def test_npz_images_keep_their_shape() -> None:
    x = np.zeros((5, 28, 28), dtype=np.uint8)
    assert load_npz(_npz(X=x, y=np.arange(5)))[0].shape == (5, 28, 28)


TRIPPED: list[str] = []


def _tripwire(message: str) -> None:
    TRIPPED.append(message)


class _Boom:
    """Unpickling this runs _tripwire: proof of whether a loader unpickled anything."""

    def __reduce__(self) -> tuple[Callable[[str], None], tuple[str]]:
        return (_tripwire, ("unpickled!",))


def test_npz_object_array_is_refused_without_unpickling() -> None:
    payload = _npz(X=np.zeros((2, 2)), y=np.array([_Boom(), _Boom()], dtype=object))
    _error(lambda: load_npz(payload), "y", "object array")
    assert TRIPPED == []
    call, args = _Boom().__reduce__()  # what unpickling would run: the trap itself works
    call(*args)
    assert TRIPPED == ["unpickled!"]
    TRIPPED.clear()


def test_npz_missing_arrays_and_mismatches() -> None:
    _error(lambda: load_npz(_npz(features=np.zeros(3), y=np.zeros(3))), "X", "found: features, y")
    _error(lambda: load_npz(_npz(X=np.zeros((3, 2)), y=np.zeros(2))), "y", "has 2 rows but X has 3")
    _error(lambda: load_npz(_npz(X=np.array(["a"]), y=np.zeros(1))), "X", "numeric")
    _error(lambda: load_npz(_npz(X=np.zeros((0, 2)), y=np.zeros(0))), "X", "no rows")
    _error(lambda: load_npz(b"not a zip at all"), "file", "not an .npz")
    npy = io.BytesIO()
    np.save(npy, np.zeros(3))
    _error(lambda: load_npz(npy.getvalue()), "file", "not an .npz")


def test_npz_huge_declared_shape_fails_from_the_header() -> None:
    data = _npz(X=np.zeros((100, 10)), y=np.zeros(100))
    _error(lambda: load_npz(data, max_array_bytes=1000), "X", "over the 1,000-byte limit")


# ----------------------------------------------------------------------------- text


def test_text_labels_tab_split_and_header_detection() -> None:
    data = "Label\tSMS\nham\tsee you at 5\tok\r\nspam\tWIN £100!\n\nham\t\n".encode()
    texts, labels = load_text_labels(data)
    assert labels.tolist() == ["ham", "spam", "ham"]
    assert texts.tolist() == ["see you at 5\tok", "WIN £100!", ""]
    assert texts.dtype.kind == labels.dtype.kind == "U"
    texts, labels = load_text_labels(b"label\thello\nham\tbye\n", header=False)
    assert labels.tolist() == ["label", "ham"]


def test_text_labels_keep_unusual_line_breaks_inside_messages() -> None:
    texts, _ = load_text_labels("ham\tone\u2028two\x0cthree\n".encode())
    assert texts.tolist() == ["one\u2028two\x0cthree"]


def test_text_labels_must_be_utf8() -> None:
    texts, _ = load_text_labels("spam\tPrize £500\n".encode())
    assert texts.tolist() == ["Prize £500"]
    _error(lambda: load_text_labels(b"ham\tok\nspam\tPrize \xa3500\n"), "file", "line 2")


def test_text_labels_errors() -> None:
    _error(
        lambda: load_text_labels(b"ham no tab here\n"), "file", "line 1: expected 'label<TAB>text'"
    )
    _error(lambda: load_text_labels(b"ham\tok\n\tmissing\n"), "file", "line 2: the label is empty")
    _error(lambda: load_text_labels(b""), "file", "no 'label<TAB>text' lines")
    _error(lambda: load_text_labels(b"label\ttext\n"), "file", "no 'label<TAB>text' lines")


@pytest.mark.skipif(not SMS.is_file(), reason=SMS_SPAM_MISSING)
def test_reads_the_sms_spam_collection() -> None:
    texts, labels = load_text_labels(SMS)
    assert len(texts) == 5574
    assert (labels == "ham").sum() == 4827
    assert (labels == "spam").sum() == 747


def test_npz_total_size_is_capped_before_inflating() -> None:
    """Deflated zeros are tiny on the wire; the cap is judged from the headers, as 'file'."""
    data = _npz(True, X=np.zeros((1000, 100)), y=np.zeros(1000))
    assert len(data) < 10_000
    with pytest.raises(DecodedTooLarge, match=r"808,000 bytes .* over the 100,000-byte") as info:
        load_npz(data, max_total_bytes=100_000)
    assert info.value.field == "file"
    assert load_npz(data, max_total_bytes=808_000)[0].shape == (1000, 100)


def test_npz_header_declaring_more_than_the_member_holds() -> None:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": (1_000_000, 2)}
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        out.writestr("X.npy", header.getvalue() + bytes(160))
        out.writestr("y.npy", _npy(np.zeros(10)))
    _error(lambda: load_npz(archive.getvalue()), "X", "declares 16,000,000 bytes; the file holds")


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
