"""Integers a fold by person keeps per event, on disk instead of in memory.

An import by person reads every event before it folds any, so what it keeps per event grows
with the export. ``Column`` keeps a sequence of fixed-size integers (offsets, node numbers,
event indexes) in an unnamed temporary file past a small buffer, and reads them back by
slice or in order; ``external_sort`` sorts integers in runs of a fixed size, spilled to
temporary files, and merges them. Memory stays what the buffers take, whatever the count.

Reads use ``os.pread`` (no shared file position), so processes forked after a ``flush``
read the same files at once. ``on_disk=False`` keeps everything in memory (small folds).
"""

from __future__ import annotations

import heapq
import os
import tempfile
from array import array
from collections.abc import Iterable, Iterator
from typing import IO


class Column:
    """Integers of one ``array`` typecode, appended in order, read back by slice."""

    def __init__(self, typecode: str, *, on_disk: bool = True) -> None:
        self.typecode = typecode
        self._size = array(typecode).itemsize
        self._buffer = array(typecode)
        self._on_disk = on_disk
        self._file: IO[bytes] | None = None
        self._filed = 0  # items in the file

    def append(self, value: int) -> None:
        self._buffer.append(value)
        if self._on_disk and len(self._buffer) >= BUFFER_ITEMS:
            self.flush()

    def flush(self) -> None:
        """Write what is buffered (before worker processes are forked, which read the file)."""
        if not self._on_disk or not self._buffer:
            return
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="tactful-column-")  # noqa: SIM115
        self._file.write(self._buffer.tobytes())
        self._file.flush()
        self._filed += len(self._buffer)
        self._buffer = array(self.typecode)

    def __len__(self) -> int:
        return self._filed + len(self._buffer)

    def __getitem__(self, span: slice) -> array[int]:
        """Items ``span.start`` to ``span.stop`` (no step)."""
        start, stop, _ = span.indices(len(self))
        out = array(self.typecode)
        if start < min(stop, self._filed):
            assert self._file is not None
            end = min(stop, self._filed)
            size = self._size
            out.frombytes(os.pread(self._file.fileno(), (end - start) * size, start * size))
        if stop > self._filed:
            out.extend(self._buffer[max(start, self._filed) - self._filed : stop - self._filed])
        return out

    def __iter__(self) -> Iterator[int]:
        for start in range(0, len(self), BUFFER_ITEMS):
            yield from self[start : start + BUFFER_ITEMS]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def external_sort(items: Iterable[int], *, on_disk: bool = True) -> Iterator[int]:
    """``items`` (non-negative, below 2**128) in ascending order. Every item is taken at
    once: sorted in runs of ``RUN_ITEMS``, each written to one temporary file when
    ``on_disk`` (more than ``FAN_IN`` runs are merged into longer ones first, so the merge
    reads a bounded number of runs at a time); the runs are merged as the result is read."""
    run: list[int] = []
    runs = _Runs() if on_disk else None
    for item in items:
        run.append(item)
        if runs is not None and len(run) >= RUN_ITEMS:
            run.sort()
            runs.add(run)
            run = []
    run.sort()
    if runs is None:
        return iter(run)
    while len(runs.spans) > FAN_IN:
        runs.add(heapq.merge(*runs.take(FAN_IN)))
    return runs.merged(run)


class _Runs:
    """Sorted runs of ``_ITEM`` bytes an item, one after another in a temporary file."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile(prefix="tactful-runs-")  # noqa: SIM115
        self.spans: list[tuple[int, int]] = []  # each run's bytes in the file
        self.end = 0

    def add(self, run: Iterable[int]) -> None:
        start, chunk = self.end, bytearray()
        for item in run:
            chunk += item.to_bytes(_ITEM, "big")
            if len(chunk) >= READ_ITEMS * _ITEM:
                self._write(chunk)
        self._write(chunk)
        self.spans.append((start, self.end))

    def _write(self, chunk: bytearray) -> None:
        os.pwrite(self.file.fileno(), chunk, self.end)
        self.end += len(chunk)
        chunk.clear()

    def take(self, count: int) -> list[Iterator[int]]:
        """Readers of the first ``count`` runs (no longer runs of this file)."""
        taken, self.spans = self.spans[:count], self.spans[count:]
        return [self._read(start, end) for start, end in taken]

    def _read(self, start: int, end: int) -> Iterator[int]:
        fd = self.file.fileno()
        while start < end:
            data = os.pread(fd, min(READ_ITEMS * _ITEM, end - start), start)
            start += len(data)
            for at in range(0, len(data), _ITEM):
                yield int.from_bytes(data[at : at + _ITEM], "big")

    def merged(self, last: list[int]) -> Iterator[int]:
        try:
            yield from heapq.merge(*self.take(len(self.spans)), last)
        finally:
            self.file.close()


BUFFER_ITEMS = 1 << 16  # items a column buffers before a write, and reads at a time
RUN_ITEMS = 1 << 16  # items sorted in memory at a time (about 3.5 MB of Python ints)
FAN_IN = 64  # runs merged at a time
READ_ITEMS = 1 << 12  # items read from a run at a time (64 KB)
_ITEM = 16  # bytes of an item in a run file
