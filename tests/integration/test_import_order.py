"""``tactful import`` merges the export's streams (users, tickets, ticket events, ratings…) by
time: every event is applied at its own moment, so the result does not depend on the order
the files are named in nor on the batch size, and equals importing everything in one batch
(where the engine sorts every event by time itself)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tactful.config import settings_from_toml
from tactful.engine import SALT_KEY, Engine, rules_from_settings
from tactful.importer import MAX_STREAMS, import_files, stream_name, streams
from tactful.sample import SampleFiles, generate_exports
from tactful.store.sqlite import open_store

CONFIG = """
[[states]]
name = "open_ticket"
when = "has_open_ticket"

[[segments]]
name = "suppress"
when = "has_open_ticket and last_activity_at within 14d"
cooldown = "24h"

[[segments]]
name = "recent"
when = "last_ticket_at within 3d"

[[segments]]
name = "resolved_recently"
when = "last_resolved_at within 2d"
"""

# Every table an import writes, with the columns that do not depend on when rows were
# written (ids and wall-clock stamps left out).
QUERIES = {
    "persons": "SELECT person_id, facts, state, wake_us FROM persons ORDER BY 1",
    "memberships": "SELECT * FROM memberships ORDER BY 1, 2",
    "tickets": "SELECT * FROM tickets ORDER BY 1",
    "history": "SELECT person_id, segment, change, at_us, rule, holdout, detail "
    "FROM membership_history ORDER BY 1, 4, 2, 3",
    "state_changes": "SELECT person_id, at_us, old_state, new_state, changed "
    "FROM state_changes ORDER BY 1, 2",
    "outbox": "SELECT person_id, topic, at_us, payload FROM outbox ORDER BY 1, 3, 2, 4",
    "events": "SELECT key, kind, at_us, canonical FROM events ORDER BY 1",
    "documents": "SELECT sha256 FROM documents ORDER BY 1",
    "clock": "SELECT value FROM meta WHERE key = 'clock'",
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleFiles:
    return generate_exports(tmp_path_factory.mktemp("exports"), persons=400)


def _import(directory: Path, files: list[Path], batch_size: int) -> dict[str, Any]:
    directory.mkdir()
    store = open_store(f"sqlite:///{directory}/t.db")
    with store.transaction() as tx:  # the same person ids in every store
        tx.set_meta(SALT_KEY, "import-order-test")
    engine = Engine(rules_from_settings(settings_from_toml(CONFIG, environ={})), store)
    summary = import_files(engine, files, batch_size=batch_size)
    with store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        tables = {name: conn.execute(sql).fetchall() for name, sql in QUERIES.items()}
    store.close()
    tables["summary"] = (summary.records, summary.applied, summary.entered, summary.exited)
    return tables


def test_result_is_independent_of_file_order_and_batch_size(
    sample: SampleFiles, tmp_path: Path
) -> None:
    files = list(sample.paths)
    assert len({stream_name(p) for p in files}) >= 4  # users, tickets, events, ratings…
    # One batch: the engine itself applies every event in time order. Read stream after
    # stream instead, the ticket events would all fall behind the clock set by the last
    # ticket page and be applied at the clock: memberships, history and timers would differ.
    reference = _import(tmp_path / "one-batch", files, batch_size=10**9)
    assert reference["history"], "the sample makes persons enter and leave segments"
    shuffled = files[:]
    random.Random(5).shuffle(shuffled)
    for name, order, batch_size in [
        ("natural", files, 500),
        ("reversed", files[::-1], 2000),
        ("shuffled", shuffled, 137),
        ("by-name", sorted(files), 700),
    ]:
        tables = _import(tmp_path / name, order, batch_size)
        for table, rows in reference.items():
            assert tables[table] == rows, f"{name} (batch {batch_size}): {table} differs"


def test_pages_whose_events_span_batches_are_stored_once(
    sample: SampleFiles, tmp_path: Path
) -> None:
    tables = _import(tmp_path / "store", list(sample.paths), batch_size=50)
    with_events = _import(tmp_path / "big", list(sample.paths), batch_size=10**9)
    assert tables["documents"] == with_events["documents"]
    assert len(tables["documents"]) == len({d for (d,) in tables["documents"]})


def test_streams_group_pages_by_name_in_natural_order() -> None:
    paths = [
        Path("x/tickets-10.json"),
        Path("x/users-2.json"),
        Path("x/tickets-9.json"),
        Path("x/users-10.json"),
        Path("y/ratings.jsonl"),
    ]
    assert streams(paths) == [
        [Path("x/tickets-9.json"), Path("x/tickets-10.json")],
        [Path("x/users-2.json"), Path("x/users-10.json")],
        [Path("y/ratings.jsonl")],
    ]
    assert stream_name(Path("a/ticket-events-0003.json")) == "ticket-events-#.json"
    many = [Path(f"{chr(97 + i % 26)}{chr(97 + i // 26)}.json") for i in range(MAX_STREAMS + 1)]
    assert streams(many) == [many]  # too many names: one stream, in the order given
