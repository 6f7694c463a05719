"""``tactful.engine.ondisk``: a column of integers and an external sort give what an array
and ``sorted`` give, whatever the buffer, run and fan-in sizes."""

from __future__ import annotations

import random

import pytest

from tactful.engine import ondisk


@pytest.mark.parametrize("on_disk", [True, False])
@pytest.mark.parametrize("count", [0, 1, 6, 7, 8, 50, 500])
def test_an_external_sort_is_sorted(
    monkeypatch: pytest.MonkeyPatch, count: int, on_disk: bool
) -> None:
    monkeypatch.setattr(ondisk, "RUN_ITEMS", 7)
    monkeypatch.setattr(ondisk, "FAN_IN", 3)  # runs merged into longer runs first
    monkeypatch.setattr(ondisk, "READ_ITEMS", 2)
    rng = random.Random(count)
    items = [rng.randrange(2**128) for _ in range(count)] + [5, 5, 0]
    assert list(ondisk.external_sort(iter(items), on_disk=on_disk)) == sorted(items)


@pytest.mark.parametrize("on_disk", [True, False])
def test_a_column_reads_back_what_was_appended(
    monkeypatch: pytest.MonkeyPatch, on_disk: bool
) -> None:
    monkeypatch.setattr(ondisk, "BUFFER_ITEMS", 4)
    column = ondisk.Column("q", on_disk=on_disk)
    values = [(-1) ** i * i * 2**40 for i in range(23)]
    for value in values:
        column.append(value)
    try:
        assert len(column) == 23 and list(column) == values
        for start, stop in [(0, 23), (3, 9), (7, 8), (19, 23), (22, 30), (5, 5)]:
            assert list(column[start:stop]) == values[start:stop]
        column.flush()
        assert list(column[2:21]) == values[2:21]
    finally:
        column.close()
