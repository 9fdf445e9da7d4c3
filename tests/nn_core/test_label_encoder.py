"""LabelEncoder: labels <-> indices for ints, strings and one-hot rows; state without pickle."""

from __future__ import annotations

import io

import numpy as np
import pytest

from nn_core.errors import DataError, SpecError
from nn_core.preprocessing import LabelEncoder


def _npz_round_trip(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_string_labels_sorted_and_round_trip() -> None:
    enc = LabelEncoder().fit(["spam", "ham", "ham", "spam"])
    assert enc.classes.dtype.kind == "U"
    assert enc.classes.tolist() == ["ham", "spam"]
    idx = enc.encode(["ham", "spam", "spam"])
    assert idx.dtype == np.int64
    assert idx.tolist() == [0, 1, 1]
    assert enc.decode(idx).tolist() == ["ham", "spam", "spam"]


def test_integer_labels_keep_their_values() -> None:
    enc = LabelEncoder().fit(np.array([7, 3, 3, 9], dtype=np.int32))
    assert enc.classes.dtype == np.int64
    assert enc.classes.tolist() == [3, 7, 9]
    assert enc.encode([9, 3]).tolist() == [2, 0]
    assert enc.decode(np.array([1, 2])).tolist() == [7, 9]


def test_whole_floats_and_column_vectors_are_labels() -> None:
    enc = LabelEncoder().fit(np.array([[1.0], [0.0], [1.0]]))
    assert enc.classes.tolist() == [0, 1]
    assert enc.encode(np.array([1.0, 0.0])).tolist() == [1, 0]
    with pytest.raises(DataError, match="whole numbers"):
        LabelEncoder().fit([0.5, 1.0])


def test_one_hot_rows_give_range_classes() -> None:
    y = np.eye(4)[[2, 0, 3]]
    enc = LabelEncoder().fit(y)
    assert enc.classes.tolist() == [0, 1, 2, 3]
    assert enc.encode(y).tolist() == [2, 0, 3]
    assert enc.encode([3, 1]).tolist() == [3, 1]
    with pytest.raises(DataError, match="single 1"):
        enc.encode(np.array([[0.5, 0.5, 0, 0]]))
    with pytest.raises(DataError, match="4 columns"):
        enc.encode(np.eye(3))


def test_unknown_label_names_field_and_known_classes() -> None:
    enc = LabelEncoder().fit([str(i) for i in range(15)])
    with pytest.raises(DataError) as info:
        enc.encode(["3", "cat"])
    err = info.value
    assert err.field == "y"
    assert "'cat'" in err.message
    assert "known classes: '0', '1'" in err.message
    assert "and 5 more" in err.message


def test_type_mismatch_is_an_unknown_label_not_a_crash() -> None:
    enc = LabelEncoder().fit([0, 1])
    with pytest.raises(DataError, match="unknown label"):
        enc.encode(["0"])


def test_decode_rejects_out_of_range() -> None:
    enc = LabelEncoder().fit(["a", "b"])
    with pytest.raises(DataError, match="out of range"):
        enc.decode([2])
    with pytest.raises(DataError, match="integers"):
        enc.decode([0.5])


@pytest.mark.parametrize("labels", [["ham", "spam", "ünï"], [4, -1, 10]])
def test_state_round_trips_through_npz_without_pickle(labels: list[object]) -> None:
    enc = LabelEncoder().fit(labels)
    state = enc.state()
    assert all(v.dtype.kind in "iU" for v in state.values())
    clone = LabelEncoder.from_state(_npz_round_trip(state))
    np.testing.assert_array_equal(clone.classes, enc.classes)
    assert clone.encode(labels).tolist() == enc.encode(labels).tolist()


def test_bad_state_is_a_spec_error() -> None:
    with pytest.raises(SpecError, match=r"state\.classes"):
        LabelEncoder.from_state({})
    with pytest.raises(SpecError, match="sorted and unique"):
        LabelEncoder.from_state({"classes": np.array([2, 1])})
    with pytest.raises(SpecError, match="int or unicode"):
        LabelEncoder.from_state({"classes": np.array([0.5, 1.5])})


def test_empty_or_mixed_labels_are_rejected() -> None:
    with pytest.raises(DataError, match="at least one"):
        LabelEncoder().fit([])
    with pytest.raises(DataError, match="integers or strings"):
        LabelEncoder().fit(np.array([1, "a", None], dtype=object))
