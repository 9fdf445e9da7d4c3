"""CSV reading stays linear in the cells, stops at the size limit and when cancelled."""

from __future__ import annotations

import pytest

from nn_core.datasets import loaders
from nn_core.datasets.compression import DecodedTooLarge
from nn_core.datasets.loaders import ParseCancelled, read_csv


class CountingName(str):
    """A column name counting its comparisons: the header check's unit of work."""

    comparisons = 0

    def __eq__(self, other: object) -> bool:
        CountingName.comparisons += 1
        return str.__eq__(self, other)

    __hash__ = str.__hash__


@pytest.mark.parametrize("columns", [1_000, 40_000])
def test_the_header_check_compares_each_name_a_bounded_number_of_times(columns: int) -> None:
    """Counting each name over the whole header took 40k columns 15 s (n^2 comparisons)."""
    CountingName.comparisons = 0
    loaders._check_columns([CountingName(f"c{j}") for j in range(columns)])
    assert CountingName.comparisons <= columns


def test_duplicate_names_are_still_named() -> None:
    with pytest.raises(Exception, match="duplicate column names: 'b'"):
        loaders._check_columns(["a", "b", "c", "b"])


def _csv(rows: int) -> bytes:
    return ("a,b,y\n" + "".join(f"{i},{i % 7},{i % 2}\n" for i in range(rows))).encode()


def test_reading_stops_at_the_first_row_past_the_limit() -> None:
    """3 values a row, 8 bytes each: a 2,400-byte limit holds 100 rows (the header counts)."""
    with pytest.raises(DecodedTooLarge, match=r"by line 101 .* 2,400-byte limit"):
        read_csv(_csv(100_000), "y", max_bytes=2_400)


def test_a_file_within_the_limit_is_read() -> None:
    table = read_csv(_csv(99), "y", max_bytes=2_400)
    assert table.x.shape == (99, 2)


def test_a_cancelled_read_stops_at_the_first_poll() -> None:
    polls: list[int] = []

    def cancelled() -> bool:
        polls.append(1)
        return True

    with pytest.raises(ParseCancelled):
        read_csv(_csv(100_000), "y", cancelled=cancelled)
    assert len(polls) == 1


def test_an_uncancelled_read_polls_once_per_chunk_of_cells() -> None:
    polls: list[int] = []

    def cancelled() -> bool:
        polls.append(1)
        return False

    rows = 100_000
    read_csv(_csv(rows), "y", cancelled=cancelled)
    cells = 3 * (rows + 1)
    assert len(polls) == cells // loaders.CANCEL_POLL_CELLS + 1
