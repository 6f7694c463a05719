"""A bulk import into SQLite keeps its WAL bounded (issue 24).

Imports commit without waiting for the disk and leave checkpoints to a background thread.
SQLite starts the WAL over only when a write transaction begins after a checkpoint that
copied every frame; back-to-back import batches began while the previous checkpoint still
ran, so the WAL grew by every batch's pages for the whole import (larger than the database
itself: 3.2 GB beside a 1.4 GB database at 100k persons).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.engine.importer import import_files
from tactful.store.sqlite import SQLiteStore, SQLiteTx, open_store
from tactful.testing.sample import generate_exports
from tests.production.test_concurrent_import import CONFIG

LIMIT = 2 * 1024 * 1024


def test_a_bulk_import_starts_the_wal_over(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SQLiteStore, "WAL_RESTART_BYTES", LIMIT, raising=False)
    files = generate_exports(tmp_path / "exports", persons=1500, days=30).paths
    db = tmp_path / "t.db"
    store = open_store(f"sqlite:///{db}")
    wal = Path(f"{db}-wal")
    sizes: list[int] = []
    transaction = SQLiteStore.transaction

    @contextmanager
    def measured(self: SQLiteStore, **kwargs: bool) -> Iterator[SQLiteTx]:
        with transaction(self, **kwargs) as tx:
            yield tx
        sizes.append(wal.stat().st_size if wal.exists() else 0)

    monkeypatch.setattr(SQLiteStore, "transaction", measured)
    engine = Engine(rules_from_settings(settings_from_toml(CONFIG, environ={})), store)
    summary = import_files(engine, files, batch_size=500)
    store.close()
    database = os.path.getsize(db)
    assert summary.applied > 10_000 and len(sizes) > 20
    assert database > 5 * LIMIT  # the pages written add up to far more than the limit
    # at most the limit plus one batch's pages (and the checkpoint running beside it)
    assert max(sizes) < 3 * LIMIT, [s // 1024 for s in sizes]
