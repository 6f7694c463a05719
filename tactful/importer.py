"""``tactful import``: Zendesk API JSON files into the engine, in batches.

Each batch (about ``batch_size`` events, whole documents) is one transaction: a crash
leaves every batch either fully applied or not at all, and re-running the import is harmless
(events are deduplicated by their stable keys).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tactful.engine import Engine, Incoming, gc_paused
from tactful.zendesk.files import Chunk, ParseError, check_file, read_file


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


def import_files(
    engine: Engine,
    paths: Iterable[Path],
    *,
    batch_size: int = 1000,
    on_progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import every file; ``on_progress(bytes)`` is called as documents are read."""
    summary = ImportSummary()
    started = time.perf_counter()
    pending: list[Incoming] = []
    pending_events = 0

    def flush() -> None:
        nonlocal pending, pending_events
        if not pending:
            return
        stats = engine.apply_many(pending, durable=False)
        summary.applied += stats.applied
        summary.duplicates += stats.duplicates
        summary.entered += stats.entered
        summary.exited += stats.exited
        for key, reason in stats.rejected:
            summary.rejected[reason] += 1
            if len(summary.examples) < 10:
                summary.examples.append(f"{key}: {reason}")
        pending, pending_events = [], 0

    with gc_paused():  # parsing pages allocates millions of objects, none in cycles
        for path in paths:
            summary.files += 1
            chunk: Chunk
            try:
                check_file(path)
            except ParseError:
                flush()  # earlier files are applied; nothing of the malformed one
                raise
            for chunk in read_file(path):
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
                if parsed.events:
                    pending.append(Incoming(parsed.events, chunk.raw, f"import:{Path(path).name}"))
                    pending_events += len(parsed.events)
                if pending_events >= batch_size:
                    flush()
                if on_progress is not None:
                    on_progress(chunk.raw_size)
        flush()
    summary.seconds = time.perf_counter() - started
    return summary
