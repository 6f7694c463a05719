"""Forked worker processes that fold a fold's batches by their index.

One runner serves every fold that spreads its batches over processes: an import by person
(``tactful.engine.grouped``) and a replay by person (``tactful.engine.replay_workers``), on
SQLite (workers fold on snapshots, the parent writes their writes in the batches' order:
``Workers.take``) and on PostgreSQL (each worker commits its own batches, the parent takes
their stats as they come: iterating the runner).

Each worker has a pipe of its own, so a worker that dies, even half way through sending a
result, is seen at once (its pipe ends) and blocks nobody. The workers are forked: what
they fold with (the engine's rules are closures) is inherited, not pickled; only indexes go
to them and results come back.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from types import TracebackType
from typing import Generic, TypeVar

from tactful.store.base import Store
from tactful.store.sqlite import SQLiteStore, sqlite_path

T = TypeVar("T")

# In a worker: set up what it folds with (its own store connection), and give the function
# that folds batch ``index``; left when the worker ends.
Start = Callable[[], AbstractContextManager[Callable[[int], T]]]


def parallel(store: Store) -> bool:
    """Whether batches may be folded by several processes at once: on PostgreSQL, each
    with its own connection, committing its own; on a SQLite file, on snapshots, for one
    process to write. Not a SQLite store in memory, which no other process can open."""
    if isinstance(store, SQLiteStore):
        return sqlite_path(store.url) != ":memory:"
    return store.url.startswith(("postgresql:", "postgres:"))


class WorkerFailed(RuntimeError):
    """A worker process could not fold its batch (its traceback is the message), or ended
    before every batch was folded; batches committed before stay committed (each whole),
    and a re-run folds the rest."""


@dataclass(frozen=True)
class _Failed:
    error: str  # the worker's traceback


class Workers(Generic[T]):
    """``count`` forked processes folding the batches ``todo`` (indexes, handed out in that
    order), ``ahead`` batches out to each at most. Use as a context manager: leaving it on
    an error terminates the workers."""

    ENDED = "a worker ended before every batch was folded"

    def __init__(self, count: int, todo: Sequence[int], start: Start[T], *, ahead: int = 1) -> None:
        context = multiprocessing.get_context("fork")  # the rules are closures: not pickled
        self.todo = list(todo)  # grows with ``add``
        self.added = set(self.todo)
        self.given = 0  # of ``todo``
        self.received = 0
        self.idle: list[Connection] = []  # a free place on a worker: nothing left to give
        self.done: dict[int, T] = {}  # results taken from the pipes, not yet asked for
        self.processes: list[multiprocessing.process.BaseProcess] = []
        self.conns: list[Connection] = []
        for _ in range(count):
            mine, theirs = context.Pipe()
            # the parent's ends go to the worker too: it closes them, so that when the parent
            # dies (kill -9), its pipe ends and it stops, instead of waiting for ever
            ours = [*self.conns, mine]
            process = context.Process(target=_serve, args=(start, theirs, ours), daemon=True)
            process.start()
            theirs.close()  # only the worker holds its end: it ends when the worker does
            self.processes.append(process)
            self.conns.append(mine)
        for _ in range(ahead):
            for conn in self.conns:
                self._give(conn)

    def take(self, index: int) -> T:
        """Batch ``index``'s result (results come back in any order: the others wait)."""
        if index not in self.added:
            raise ValueError(f"batch {index} was never given to the workers")
        while index not in self.done:
            for ready in wait(self.conns):
                assert isinstance(ready, Connection)
                got, result = self._receive(ready)
                self.done[got] = result
        return self.done.pop(index)

    def add(self, index: int) -> None:
        """One more batch to fold, after those given so far (a reader that asks for work as
        it goes, so that only what it will want soon is done ahead of it)."""
        self.todo.append(index)
        self.added.add(index)
        while self.idle and self.given < len(self.todo):
            self._give(self.idle.pop())

    def __iter__(self) -> Iterator[tuple[int, T]]:
        """Each batch's (index, result), as they come."""
        while self.received < len(self.todo):
            for ready in wait(self.conns):
                assert isinstance(ready, Connection)
                yield self._receive(ready)

    def _receive(self, conn: Connection) -> tuple[int, T]:
        try:
            index, result = conn.recv()
        except (EOFError, OSError):
            raise WorkerFailed(self.ENDED) from None
        if isinstance(result, _Failed):
            raise WorkerFailed(result.error)
        self.received += 1
        self._give(conn)  # the next batch, while there are more
        return index, result

    def _give(self, conn: Connection) -> None:
        if self.given >= len(self.todo):
            self.idle.append(conn)  # until ``add`` gives it more
            return
        try:
            conn.send(self.todo[self.given])
        except OSError:
            raise WorkerFailed(self.ENDED) from None
        self.given += 1

    def kill(self) -> None:
        for process in self.processes:
            process.terminate()

    def __enter__(self) -> Workers[T]:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None:
            self.kill()
        for conn in self.conns:
            with contextlib.suppress(OSError):  # the worker is gone
                conn.send(None)
        for process in self.processes:
            process.join()
        for conn in self.conns:
            conn.close()


def _serve(start: Start[T], conn: Connection, parents: list[Connection]) -> None:
    """A worker: fold each index received until told to stop (``None``); on an error, send
    its traceback and end. The cyclic garbage collector is paused while a batch folds, as
    in one process (``engine.gc_paused``)."""
    for end in parents:
        end.close()
    index = -1
    try:
        with start() as fold:
            while (index := conn.recv()) is not None:
                gc.disable()
                try:
                    result = fold(index)
                finally:
                    gc.enable()
                conn.send((index, result))
    except Exception:
        with contextlib.suppress(OSError):  # the parent is gone
            conn.send((index, _Failed(traceback.format_exc())))
