"""Concurrent ``tactful import`` runs on one database lose and double nothing (both stores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tactful.sample import generate_exports
from tactful.store.sqlite import open_store
from tactful.testing import new_store_url

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


def snapshot(url: str) -> dict[str, Any]:
    store = open_store(url)
    try:
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


def run_import(config: Path, files: list[Path]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tactful",
            "--config",
            str(config),
            "import",
            "--json",
            *map(str, files),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_two_imports_at_once_equal_one(tmp_path: Path, store_kind: str) -> None:
    files = generate_exports(tmp_path / "exports", persons=150, days=30).paths
    configs = []
    for name in ("concurrent", "reference"):
        directory = tmp_path / name
        directory.mkdir()
        url = new_store_url(directory)
        path = directory / "tactful.toml"
        path.write_text(f'[store]\nurl = "{url}"\n' + CONFIG)
        configs.append((path, url))
    (both, both_url), (ref, ref_url) = configs
    # two processes import overlapping halves at the same time; the overlap is imported twice
    half = len(files) // 2
    first, second = list(files[: half + 2]), list(files[half - 2 :])
    procs = [run_import(both, first), run_import(both, list(reversed(second)))]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err.decode()[-2000:]
        json.loads(out)
    reference = run_import(ref, list(files))
    _, err = reference.communicate(timeout=300)
    assert reference.returncode == 0, err.decode()[-2000:]
    got, want = snapshot(both_url), snapshot(ref_url)
    assert got["events"] == want["events"]
    assert got["tickets"] == want["tickets"]
    assert got["persons"] == want["persons"]
