"""An export's files parsed by worker processes, for an import by person with ``--workers``.

Parsing a page (JSON, then Zendesk's objects into events, a ticket's text reduced to its
words, language and sentiment) is most of an import's reading pass, and that pass ran in one
process while the other cores waited for the fold. Here ``count`` forked processes
(``tactful.engine.workers``) parse whole files and send back their chunks; the importing
process still merges the streams by time, stores the documents and spills and plans the
events, in the same order as when it parsed them itself, so the import's result is the same.

Each stream is read file after file, so the next files the merge will want are the ones
after those it is reading: when the merge starts on file ``k`` of a stream, file ``k + AHEAD``
of that stream is handed out. At most ``AHEAD`` files a stream are parsed ahead of the merge,
so memory holds a few files, not the export (which stream the merge drains first depends on
the export's timestamps: handing out files in a fixed order held almost every parsed page of
a 10k-person export at once, 1.4 GB at 100k persons).
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tactful.engine.workers import Workers
from tactful.zendesk.files import Chunk, ParseError, read_file

# Files of a stream parsed ahead of the one the merge is reading.
AHEAD = 3

# A file's chunks as ``read_file`` gives them, by stream and file number within the stream.
ReadFile = Callable[[int, int, Path], Iterator[Chunk]]


@dataclass(frozen=True)
class _Broken:
    """A file a worker could not parse: the ``ParseError`` to raise where it is asked for."""

    path: str
    line: int
    message: str


def read_inline(stream: int, number: int, path: Path) -> Iterator[Chunk]:
    """In this process, as it is asked for."""
    return read_file(path)


class FileReaders:
    """``count`` worker processes parsing ``groups`` (the streams' files) ahead of the merge;
    ``read`` gives a file's chunks. Use as a context manager around the reading pass."""

    def __init__(self, groups: Sequence[Sequence[Path]], count: int) -> None:
        self.groups = groups
        self.first = list(itertools.accumulate((len(g) for g in groups), initial=0))
        paths = [path for group in groups for path in group]

        @contextlib.contextmanager
        def start() -> Iterator[Callable[[int], list[Chunk] | _Broken]]:
            def parse(n: int) -> list[Chunk] | _Broken:
                try:
                    return list(read_file(paths[n]))
                except ParseError as exc:
                    return _Broken(exc.path, exc.line, exc.message)

            yield parse

        first = [self.first[s] + k for s, g in enumerate(groups) for k in range(min(AHEAD, len(g)))]
        self.workers = Workers(count, first, start, ahead=2)

    def read(self, stream: int, number: int, path: Path) -> Iterator[Chunk]:
        if number + AHEAD < len(self.groups[stream]):
            self.workers.add(self.first[stream] + number + AHEAD)
        got = self.workers.take(self.first[stream] + number)
        if isinstance(got, _Broken):
            raise ParseError(got.path, got.line, got.message)
        return iter(got)

    def __enter__(self) -> FileReaders:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.workers.__exit__(kind, exc, tb)
