"""Concurrent ``tactful import`` runs on one database lose and double nothing (both stores)."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import new_store_url
from tactful.testing.sample import DEFAULT_START, generate_exports

pytestmark = pytest.mark.store

CONFIG = """
[[states]]
name = "open_ticket"
when = "has_open_ticket"

[[segments]]
name = "suppress"
when = "has_open_ticket and last_activity_at within 14d"
cooldown = "24h"
"""


# Events that arrive after the clock has passed them apply at the clock (the engine never
# rewrites the past), so membership times (a cooldown's start) depend on arrival order, which
# concurrent imports interleave. Past every such time plus the cooldown, memberships depend
# only on the persons' fields: both stores are compared there.
AFTER = DEFAULT_START + timedelta(days=32)


def snapshot(url: str) -> dict[str, Any]:
    store = open_store(url)
    try:
        rules = rules_from_settings(settings_from_toml(CONFIG, environ={}))
        Engine(rules, store).tick(AFTER)
        with store.reader() as reader:
            ids = reader.person_ids(None, 100_000)
            persons = reader.load_persons(ids)
            idents = reader.identifiers_of(ids)
            counts = reader.counts()
    finally:
        store.close()
    by_user = {}
    for pid, row in persons.items():
        users = ",".join(sorted(v for k, v in idents[pid] if k == "zendesk_user_id"))
        by_user[users] = (row.state, sorted(s for s, m in row.memberships.items() if m.member))
    return {"persons": by_user, "events": counts["events"], "tickets": counts["tickets"]}


def run_import(config: Path, files: list[Path], batch_size: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tactful",
            "--config",
            str(config),
            "import",
            "--json",
            "--batch-size",
            str(batch_size),
            *map(str, files),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(
    "batch_size", [60, 5000], ids=["key-locks", "whole-store-lock-on-postgresql"]
)
def test_two_imports_at_once_equal_one(tmp_path: Path, store_kind: str, batch_size: int) -> None:
    """Small batches lock their keys one by one on PostgreSQL; big ones (more than the
    ``max_key_locks`` of 300 given here) lock the whole store. Both give one import's result."""
    files = generate_exports(tmp_path / "exports", persons=150, days=30).paths
    configs = []
    for name in ("concurrent", "reference"):
        directory = tmp_path / name
        directory.mkdir()
        url = new_store_url(directory)
        if store_kind == "postgresql":
            url += "?max_key_locks=300"
        path = directory / "tactful.toml"
        path.write_text(f'[store]\nurl = "{url}"\n' + CONFIG)
        configs.append((path, url))
    (both, both_url), (ref, ref_url) = configs
    # two processes import overlapping halves at the same time; the overlap is imported twice
    half = len(files) // 2
    first, second = list(files[: half + 2]), list(files[half - 2 :])
    procs = [
        run_import(both, first, batch_size),
        run_import(both, list(reversed(second)), batch_size),
    ]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
        json.loads(out)
    reference = run_import(ref, list(files), batch_size)
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err.decode()[-2000:]
    got, want = snapshot(both_url), snapshot(ref_url)
    assert got["events"] == want["events"]
    assert got["tickets"] == want["tickets"]
    assert got["persons"] == want["persons"]
    assert any(segments for _, segments in want["persons"].values())  # not all out by then
