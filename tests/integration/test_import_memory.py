"""Issue 24: ``import --by-person`` reads every event before it folds any, but does not hold
them: they are spilled to a temporary file (``tactful.engine.spill``), and planning keeps a
few bytes an event and the identifiers' union-find. Held as objects they took about 0.9 KB
an event (1.4 GB at 100k persons)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from tactful.engine import importer
from tactful.engine.importer import import_files
from tactful.testing import harness
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
