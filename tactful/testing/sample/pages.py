"""Writing pages: Zendesk page envelopes, numbered page files, and the external merge sort
that puts the records of all chunks in export order."""

from __future__ import annotations

import base64
import heapq
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import quote

import orjson

from tactful.testing.sample.constants import BASE_URL, RATINGS_PAGE_SIZE, _cursor

_Envelope = Callable[[list[bytes], int, tuple[int, int], tuple[int, int], bool], bytes]


class _PageWriter:
    """Writes records into numbered page files; a page is written once the next record (or
    the end) shows whether it is the last one, so ``end_of_stream`` is always right."""

    def __init__(
        self, out_dir: Path, stem: str, page_size: int, envelope: _Envelope, empty_ts: int
    ) -> None:
        self._out_dir = out_dir
        self._stem = stem
        self._page_size = page_size
        self._envelope = envelope
        self._empty_key = (empty_ts, 0)
        self._items: list[bytes] = []
        self._first = self._empty_key
        self._last = self._empty_key
        self.paths: list[Path] = []
        self.count = 0

    def add(self, ts: int, ident: int, item: bytes) -> None:
        if len(self._items) == self._page_size:
            self._write(is_last=False)
        if not self._items:
            self._first = (ts, ident)
        self._items.append(item)
        self._last = (ts, ident)
        self.count += 1

    def close(self) -> tuple[Path, ...]:
        self._write(is_last=True)
        return tuple(self.paths)

    def _write(self, *, is_last: bool) -> None:
        number = len(self.paths) + 1
        path = self._out_dir / f"{self._stem}-{number:04d}.json"
        body = self._envelope(self._items, number, self._first, self._last, is_last)
        path.write_bytes(body)
        self.paths.append(path)
        self._items = []
        self._first = self._last = self._empty_key


def _cursor_envelope(key: str, endpoint: str) -> _Envelope:
    """Incremental cursor export page (tickets, users)."""

    def envelope(
        items: list[bytes], number: int, first: tuple[int, int], last: tuple[int, int], end: bool
    ) -> bytes:
        after = _cursor(*last)
        before = _cursor(*first) if number > 1 else None
        meta = {
            "after_url": f"{BASE_URL}{endpoint}?cursor={quote(after, safe='')}",
            "before_url": (
                f"{BASE_URL}{endpoint}?cursor={quote(before, safe='')}" if before else None
            ),
            "after_cursor": after,
            "before_cursor": before,
            "end_of_stream": end,
        }
        return b'{"%s":[%s],%s' % (key.encode(), b",".join(items), orjson.dumps(meta)[1:])

    return envelope


def _ticket_events_envelope(
    items: list[bytes], number: int, first: tuple[int, int], last: tuple[int, int], end: bool
) -> bytes:
    """Time-based incremental export page (ticket events)."""
    end_time = last[0]
    meta = {
        "next_page": f"{BASE_URL}/api/v2/incremental/ticket_events.json?start_time={end_time}",
        "count": len(items),
        "end_time": end_time,
        "end_of_stream": end,
    }
    return b'{"ticket_events":[%s],%s' % (b",".join(items), orjson.dumps(meta)[1:])


def _ratings_envelope(
    items: list[bytes], number: int, first: tuple[int, int], last: tuple[int, int], end: bool
) -> bytes:
    """Cursor-paginated list page (satisfaction ratings)."""
    endpoint = f"{BASE_URL}/api/v2/satisfaction_ratings.json"
    after = base64.b64encode(b'{"o":"updated_at,id","v":"%d,%d"}' % last).decode()
    before = base64.b64encode(b'{"o":"updated_at,id","v":"%d,%d"}' % first).decode()
    size = f"page%5Bsize%5D={RATINGS_PAGE_SIZE}"
    meta = {
        "meta": {"has_more": not end, "after_cursor": after, "before_cursor": before},
        "links": {
            "prev": (
                f"{endpoint}?page%5Bbefore%5D={quote(before, safe='')}&{size}"
                if number > 1
                else None
            ),
            "next": None if end else f"{endpoint}?page%5Bafter%5D={quote(after, safe='')}&{size}",
        },
    }
    return b'{"satisfaction_ratings":[%s],%s' % (b",".join(items), orjson.dumps(meta)[1:])


_KEY_WIDTH = 10 + 20  # epoch seconds, id; then a tab


class _SortedRuns:
    """External merge sort of records by (time, id): each chunk is sorted and spilled to a
    run file; ``merged()`` streams the union in order. Memory holds one chunk."""

    def __init__(self, tmp_dir: Path, name: str, max_open_runs: int) -> None:
        self._tmp_dir = tmp_dir
        self._max_open_runs = max_open_runs
        self._name = name
        self._buffer: list[bytes] = []
        self._runs: list[Path] = []
        self._made = 0

    def add(self, ts: int, ident: int, item: bytes) -> None:
        self._buffer.append(b"%010d%020d\t%s\n" % (ts, ident, item))

    def flush(self) -> None:
        if not self._buffer:
            return
        self._buffer.sort()
        path = self._new_run()
        path.write_bytes(b"".join(self._buffer))
        self._buffer = []

    def _new_run(self) -> Path:
        path = self._tmp_dir / f"{self._name}-{self._made:06d}.run"
        self._made += 1
        self._runs.append(path)
        return path

    def merged(self) -> Iterator[tuple[int, int, bytes]]:
        self.flush()
        runs = self._runs
        while len(runs) > self._max_open_runs:  # keep the number of open files bounded
            self._runs = []
            for i in range(0, len(runs), self._max_open_runs):
                group = runs[i : i + self._max_open_runs]
                with ExitStack() as stack, self._new_run().open("wb") as out:
                    files = [stack.enter_context(p.open("rb")) for p in group]
                    out.writelines(heapq.merge(*files))
                for p in group:
                    p.unlink()
            runs = self._runs
        with ExitStack() as stack:
            files = [stack.enter_context(p.open("rb")) for p in runs]
            for line in heapq.merge(*files):
                yield int(line[:10]), int(line[10:_KEY_WIDTH]), line[_KEY_WIDTH + 1 : -1]
