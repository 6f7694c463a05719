"""``tactful import`` merges the export's streams (users, tickets, ticket events, ratings…) by
time: every event is applied at its own moment, so the result does not depend on the order
the files are named in nor on the batch size, and equals importing everything in one batch
(where the engine sorts every event by time itself)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tactful.engine.importer import MAX_STREAMS, import_files, stream_name, streams
from tactful.testing import TIMED_RULES, harness
from tactful.testing.sample import SampleFiles, generate_exports

CONFIG = (
    TIMED_RULES
    + """
[[segments]]
name = "resolved_recently"
when = "last_resolved_at within 2d"
"""
)

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
    "event_documents": "SELECT e.key, d.sha256 FROM events e "
    "JOIN documents d ON d.id = e.document_id ORDER BY 1",
    "clock": "SELECT value FROM meta WHERE key = 'clock'",
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleFiles:
    return generate_exports(tmp_path_factory.mktemp("exports"), persons=400)


def _import(
    directory: Path, files: list[Path], batch_size: int, *, by_person: bool = False
) -> dict[str, Any]:
    directory.mkdir()
    # the same person ids in every store
    engine = harness(CONFIG, f"sqlite:///{directory}/t.db", salt="import-order-test").engine
    store = engine.store
    summary = import_files(engine, files, batch_size=batch_size, by_person=by_person)
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
    for name, order, batch_size, by_person in [
        ("natural", files, 500, False),
        ("reversed", files[::-1], 2000, False),
        ("shuffled", shuffled, 137, False),
        ("by-name", sorted(files), 700, False),
        # folded person by person (tactful.engine.grouped): every table the same
        ("by-person", files, 500, True),
        ("by-person-shuffled", shuffled, 1, True),
        ("by-person-one-batch", files[::-1], 10**9, True),
    ]:
        tables = _import(tmp_path / name, order, batch_size, by_person=by_person)
        for table, rows in reference.items():
            assert tables[table] == rows, f"{name} (batch {batch_size}): {table} differs"


def test_pages_whose_events_span_batches_are_stored_once(
    sample: SampleFiles, tmp_path: Path
) -> None:
    tables = _import(tmp_path / "store", list(sample.paths), batch_size=50)
    with_events = _import(tmp_path / "big", list(sample.paths), batch_size=10**9)
    assert tables["documents"] == with_events["documents"]
    # every event of a page split over batches points at that one stored page
    assert tables["event_documents"] == with_events["event_documents"]
    assert len(tables["event_documents"]) == len(tables["events"])


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
