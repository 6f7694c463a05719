"""``tactful import``: Zendesk API JSON files into the engine, in batches.

The files' streams are merged by time (``import_files``). Each batch (``batch_size`` events;
a document's events may span batches, and the document is stored once) is one transaction: a
crash leaves every batch either fully applied or not at all, and re-running the import is
harmless (events are deduplicated by their stable keys).
"""

from __future__ import annotations

import itertools
import re
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from tactful.core.events import Event, merge_by_time, time_order
from tactful.engine.batch import BatchStats
from tactful.engine.engine import FUTURE_REASON, Engine, Incoming, gc_paused
from tactful.engine.grouped import fold_grouped
from tactful.engine.reading import FileReaders, ReadFile, read_inline
from tactful.engine.spill import Spill
from tactful.engine.workers import parallel
from tactful.reasons.documents import without_text
from tactful.zendesk.files import Chunk, ParseError, check_file


class ChangedDuringImport(ParseError):
    """A file that passed the check before the import was unreadable when imported: batches
    applied before it stay applied (the message says how many events)."""


@dataclass
class ImportSummary:
    files: int = 0
    documents: int = 0
    records: int = 0  # canonical events read
    applied: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count (not imported)
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count (not applied)
    shapes: Counter[str] = field(default_factory=Counter)
    entered: int = 0
    exited: int = 0
    seconds: float = 0.0
    examples: list[str] = field(default_factory=list)  # a few "where: reason" lines

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "documents": self.documents,
            "records": self.records,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "skipped": dict(self.skipped),
            "rejected": dict(self.rejected),
            "shapes": dict(self.shapes),
            "entered": self.entered,
            "exited": self.exited,
            "seconds": round(self.seconds, 3),
            "records_per_second": round(self.records_per_second, 1),
            "examples": self.examples,
        }


def _reason_class(reason: str) -> str:
    """Group reasons for the summary ("unknown object shape: keys a, b" → by its prefix)."""
    return reason.split(":", 1)[0]


def stream_name(path: Path) -> str:
    """The stream a file belongs to: its name with the digits taken out, so the pages of one
    export (``tickets-0001.json``, ``tickets-0002.json``…) form one stream."""
    return re.sub(r"\d+", "#", path.name)


def _natural(path: Path) -> tuple[Any, ...]:
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", path.name))


def streams(paths: Iterable[Path]) -> list[list[Path]]:
    """Files grouped into streams (by ``stream_name``, in order of first appearance), each in
    natural order of the numbers in its names. Beyond ``MAX_STREAMS`` names, one stream of
    every file in the order given (memory holds one document per stream)."""
    groups: dict[str, list[Path]] = {}
    ordered = [Path(p) for p in paths]
    for path in ordered:
        groups.setdefault(stream_name(path), []).append(path)
    if len(groups) > MAX_STREAMS:
        return [ordered]
    return [sorted(group, key=_natural) for group in groups.values()]


MAX_STREAMS = 64


def import_files(
    engine: Engine,
    paths: Iterable[Path],
    *,
    batch_size: int = 1000,
    on_progress: Callable[[int], None] | None = None,
    by_person: bool = False,
    workers: int = 1,
) -> ImportSummary:
    """Import every file; ``on_progress(bytes)`` is called as documents are read.

    Exports come as several streams of pages (users, tickets, ticket events, ratings), each
    in time order. Their events are merged by time (``streams``), so that each is applied at
    its own moment, as if it had arrived live: a whole stream read after another would have
    its events fall behind the engine clock, and be applied at the clock instead. Results
    therefore do not depend on the order the files are named in, nor on ``batch_size``.

    ``by_person``: read every file first, then fold person by person (``tactful.engine.grouped``):
    the same result, each person loaded and saved once, memory in proportion to the export;
    ``workers`` processes fold its batches at once (on SQLite, for this process to write).
    """
    summary = ImportSummary()
    started = time.perf_counter()
    groups = streams(paths)
    for group in groups:  # a malformed file anywhere changes nothing (a cheap pass first)
        for path in group:
            check_file(path)
    pending: dict[int, Incoming] = {}  # document number -> its events read so far
    pending_events = 0

    def count(stats: BatchStats) -> None:
        summary.applied += stats.applied
        summary.duplicates += stats.duplicates
        summary.entered += stats.entered
        summary.exited += stats.exited
        for key, reason in stats.rejected:
            summary.rejected[reason] += 1
            if len(summary.examples) < 10:
                summary.examples.append(f"{key}: {reason}")

    def flush() -> None:
        nonlocal pending, pending_events
        if not pending:
            return
        count(engine.apply_many(list(pending.values()), durable=False, history=True))
        pending, pending_events = {}, 0

    numbers = itertools.count()
    summary_bytes: list[int] = []  # by person: the bytes read, told as the fold goes

    def events_of(
        group: list[Path], stream: int, read: ReadFile
    ) -> Iterator[tuple[datetime, str, Event, int, Chunk]]:
        for k, path in enumerate(group):
            summary.files += 1
            for chunk in read(stream, k, path):
                summary.documents += 1
                parsed = chunk.parsed
                summary.shapes[parsed.shape] += 1
                for skipped in parsed.skipped:
                    summary.skipped[_reason_class(skipped.reason)] += 1
                    if len(summary.examples) < 10:
                        summary.examples.append(
                            f"{chunk.path}:{chunk.line}: {skipped.where}: {skipped.reason}"
                        )
                summary.records += len(parsed.events)
                if by_person:
                    summary_bytes.append(chunk.raw_size)
                elif on_progress is not None:
                    on_progress(chunk.raw_size)
                number = next(numbers)
                for event in sorted(parsed.events, key=time_order):
                    yield event.at, event.key, event, number, chunk

    def merged(read: ReadFile) -> Iterator[tuple[datetime, str, Event, int, Chunk]]:
        return merge_by_time(events_of(g, i, read) for i, g in enumerate(groups))

    if by_person:
        parsers = workers if workers > 1 and parallel(engine.store) else 0
        readers = FileReaders(groups, parsers) if parsers else nullcontext()
        with gc_paused(), readers as reading:
            read_file = reading.read if reading is not None else read_inline
            spill = _read_all(engine, merged(read_file), summary, count)
        with gc_paused(), spill as read:
            size = sum(summary_bytes)

            def folded(stats: BatchStats) -> None:
                count(stats)
                if on_progress is not None and len(read):  # the bar follows the fold
                    on_progress(size * stats.received // len(read))

            history_before = engine._history_before()
            fold_grouped(
                engine,
                read,
                batch_size=batch_size,
                history_before=history_before,
                on_batch=folded,
                workers=workers,
            )
        summary.seconds = time.perf_counter() - started
        return summary
    with gc_paused():  # parsing pages allocates millions of objects, none in cycles
        try:
            for _, _, event, number, chunk in merged(read_inline):
                incoming = pending.get(number)
                if incoming is None:  # a document's events may span batches: stored once
                    source = f"import:{Path(chunk.path).name}"
                    incoming = pending[number] = Incoming([], chunk.raw, source)
                incoming.events.append(event)
                pending_events += 1
                if pending_events >= batch_size:
                    flush()
        except ParseError as exc:  # only when a file changed after the check pass
            flush()
            raise ChangedDuringImport(
                exc.path,
                exc.line,
                f"{exc.message} (the file changed during the import; the {summary.applied} "
                "events applied before it stay applied)",
            ) from None
        flush()
    summary.seconds = time.perf_counter() - started
    return summary


def _read_all(
    engine: Engine,
    merged: Iterator[tuple[datetime, str, Event, int, Chunk]],
    summary: ImportSummary,
    count: Callable[[BatchStats], None],
) -> Spill:
    """Every event of the export, spilled to a temporary file with its document (documents
    are stored as they are read, a transaction per ``DOCUMENTS_PER_TX``; stored again they
    are found by their digest, so a re-run after a crash stores nothing twice). Events later
    than ``Engine.latest_allowed`` are refused and not spilled, as ``Engine.apply_many``
    refuses them."""
    spill = Spill(engine.plan)
    unstored: list[tuple[int, str, bytes]] = []
    limit = engine.latest_allowed()
    future: list[tuple[str, str]] = []

    def store() -> None:
        with engine.store.transaction(durable=False, bulk=True) as tx:
            for number, source, raw in unstored:
                spill.documents[number] = (source, tx.insert_document(source, without_text(raw)))
        unstored.clear()

    try:
        for _, _, event, number, chunk in merged:
            if number not in spill.documents:
                source = f"import:{Path(chunk.path).name}"
                spill.documents[number] = (source, None)
                unstored.append((number, source, chunk.raw))
                if len(unstored) >= DOCUMENTS_PER_TX:
                    store()
            if limit is not None and event.at > limit:
                future.append((event.key, FUTURE_REASON))
            else:
                spill.add(event, number)
        if unstored:
            store()
        spill.flush()
    except ParseError as exc:  # only when a file changed after the check pass
        spill.close()
        raise ChangedDuringImport(
            exc.path,
            exc.line,
            f"{exc.message} (the file changed during the import; nothing was applied)",
        ) from None
    except BaseException:
        spill.close()
        raise
    if future:
        count(BatchStats(rejected=future))
    return spill


DOCUMENTS_PER_TX = 200
