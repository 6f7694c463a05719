"""Persons are saved by difference (only changed memberships and consents are written):
the tables end exactly as when every person's rows are rewritten each time."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.engine.importer import import_files
from tactful.store.sql import SqlTx
from tactful.testing import TIMED_RULES, consent, harness
from tactful.testing.sample import DEFAULT_START, generate_exports

CONFIG = (
    TIMED_RULES
    + """
[[segments]]
name = "held"
when = "has_open_ticket"
holdout = 0.3
"""
)


def _tables(directory: Path, files: list[Path], monkeypatch: pytest.MonkeyPatch | None) -> Any:
    if monkeypatch is not None:  # every person's rows rewritten, as before the diff
        original = SqlTx.save_persons

        def rewrite_all(self: SqlTx, rows: Any, *, new: set[str], stored: Any = None) -> None:
            original(self, rows, new=new, stored=None)

        monkeypatch.setattr(SqlTx, "save_persons", rewrite_all)
    # the same person ids (and holdout draws) in both stores
    engine = harness(CONFIG, f"sqlite:///{directory}/t.db", salt="save-diff-test").engine
    store = engine.store
    snapshots = []

    def snapshot() -> None:
        with store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            snapshots.append(
                {
                    table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                    for table in ("memberships", "consents", "persons")
                }
            )

    import_files(engine, files, batch_size=150)
    snapshot()
    emails = [
        u["email"]
        for f in files
        if f.name.startswith("users")
        for u in json.loads(f.read_bytes())["users"]
        if u.get("email")
    ][:12]
    at = DEFAULT_START + timedelta(days=5)
    engine.apply([consent(at, "ads", i % 2 == 0, email=e) for i, e in enumerate(emails)])
    engine.apply([consent(at + timedelta(hours=1), "ads", True, email=e) for e in emails[:3]])
    snapshot()
    for hours in range(24 * 31, 24 * 33, 3):  # through the end of the activity: cooldowns
        engine.tick(DEFAULT_START + timedelta(hours=hours))
        snapshot()
    store.close()
    if monkeypatch is not None:
        monkeypatch.undo()
    return snapshots


def test_saving_by_difference_equals_rewriting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = list(generate_exports(tmp_path / "exports", persons=80, days=30).paths)
    (tmp_path / "diff").mkdir()
    (tmp_path / "full").mkdir()
    diffed = _tables(tmp_path / "diff", files, None)
    rewritten = _tables(tmp_path / "full", files, monkeypatch)
    assert diffed[0]["memberships"] and diffed[1]["consents"]
    cooling = [s for s in diffed if any(m[3] is not None for m in s["memberships"])]
    assert cooling  # some members whose rule stopped holding are in their cooldown
    assert diffed == rewritten
