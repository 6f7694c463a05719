"""Issue 24: ``import --by-person`` reads every event before it folds any, but does not hold
them: they are spilled to a temporary file (``tactful.engine.spill``), and planning keeps a
few bytes an event and the identifiers' union-find. Held as objects they took about 0.9 KB
an event (1.4 GB at 100k persons)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from tactful.core import codec
from tactful.core.graph import IdentityPlan
from tactful.engine import importer
from tactful.engine.components import Parts, batches
from tactful.engine.importer import import_files
from tactful.engine.spill import Spill
from tactful.testing import at, harness, status_change
from tactful.testing.sample import generate_exports

from .test_import_order import CONFIG


def _held_when_the_fold_begins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, persons: int
) -> tuple[int, int]:
    """Traced memory (bytes) held once every event of ``persons`` customers' export was
    read, as the fold begins, and the records read."""
    files = generate_exports(tmp_path / f"export-{persons}", persons=persons)
    engine = harness(CONFIG, f"sqlite:///{tmp_path}/{persons}.db").engine
    held: list[int] = []
    fold = importer.fold_grouped

    def measured(*args: Any, **kwargs: Any) -> Any:
        held.append(tracemalloc.get_traced_memory()[0])
        return fold(*args, **kwargs)

    monkeypatch.setattr(importer, "fold_grouped", measured)
    tracemalloc.start()
    try:
        summary = import_files(engine, files.paths, batch_size=200, by_person=True)
    finally:
        tracemalloc.stop()
    engine.store.close()
    assert summary.applied > 0 and not summary.rejected and len(held) == 1
    return held[0], summary.records


def test_an_import_by_person_does_not_hold_the_events_it_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "DOCUMENTS_PER_TX", 2)  # raw pages stored as they are read
    _held_when_the_fold_begins(tmp_path, monkeypatch, 20)  # what loads once (language model…)
    small, small_records = _held_when_the_fold_begins(tmp_path, monkeypatch, 100)
    large, large_records = _held_when_the_fold_begins(tmp_path, monkeypatch, 500)
    per_record = (large - small) / (large_records - small_records)
    assert per_record < 250, per_record  # held as objects: about 900 bytes an event


def _planning_peak(events: int) -> int:
    """Traced peak (bytes) while ``events`` status changes of 400 tickets are spilled,
    planned into batches and one batch read back: the tickets repeat, so the nodes
    do not grow with ``events`` and only what is kept per event would."""
    plan = IdentityPlan("email", None)
    changes = [
        (e, codec.dumps(e)) for e in (status_change(n, at(hours=n), "open") for n in range(400))
    ]
    tracemalloc.start()
    try:
        with Spill(plan) as spill:
            spill.documents[0] = ("test", None)
            for i in range(events):
                event, canonical = changes[i % len(changes)]
                spill.add(event, 0, canonical)
            indexes, ends = spill.planner.order("salt", lambda keys, tickets, pids: ())
            parts = Parts(spill, indexes, batches(ends, 1000))
            assert len(parts[0]) >= 1000
            return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_planning_by_person_keeps_nothing_per_event_in_memory() -> None:
    """Issue 24, memory flat in N: what planning keeps per event (each event's offset in
    the spill, its first node, its component and its place in the fold's order) is on
    disk, so the peak does not grow with the events. In memory, those took 20-30 bytes an
    event, about 0.3 KB a person of the sample exports."""
    small, large = 70_000, 210_000  # both past a sort run (``ondisk.RUN_ITEMS``)
    per_event = (_planning_peak(large) - _planning_peak(small)) / (large - small)
    assert per_event < 2, per_event
