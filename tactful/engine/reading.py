"""An export's files parsed by worker processes, for an import by person with ``--workers``.

Parsing a page (JSON, then Zendesk's objects into events, a ticket's text reduced to its
words, language and sentiment) is most of an import's reading pass, and that pass ran in one
process while the other cores waited for the fold. Here ``count`` forked processes
(``tactful.engine.workers``) parse whole files and send back their chunks; the importing
process still merges the streams by time, stores the documents and spills and plans the
events, in the same order as when it parsed them itself, so the import's result is the same.

Files are handed out in the order the merge is expected to ask for them: the streams of one
export cover the same weeks, so file ``k`` of a stream of ``n`` is wanted at about
``(k + ½) / n`` of the way through. A file asked for before its turn is handed out at once;
at most ``window`` parsed files wait to be asked for, so memory holds a few files, not the
export.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tactful.engine.workers import Workers
from tactful.zendesk.files import Chunk, ParseError, read_file

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
        wanted = sorted(
            ((k + 0.5) / len(group), stream, k)
            for stream, group in enumerate(groups)
            for k in range(len(group))
        )
        self.paths = [groups[stream][k] for _, stream, k in wanted]
        self.number = {(stream, k): n for n, (_, stream, k) in enumerate(wanted)}
        paths = self.paths

        @contextlib.contextmanager
        def start() -> Iterator[Callable[[int], list[Chunk] | _Broken]]:
            def parse(n: int) -> list[Chunk] | _Broken:
                try:
                    return list(read_file(paths[n]))
                except ParseError as exc:
                    return _Broken(exc.path, exc.line, exc.message)

            yield parse

        self.workers = Workers(count, range(len(paths)), start, ahead=2, window=4 * count)

    def read(self, stream: int, number: int, path: Path) -> Iterator[Chunk]:
        got = self.workers.take(self.number[stream, number])
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
