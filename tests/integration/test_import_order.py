"""``tactful import`` merges the export's streams (users, tickets, ticket events, ratings…) by
time: every event is applied at its own moment, so the result does not depend on the order
the files are named in nor on the batch size, and equals importing everything in one batch
(where the engine sorts every event by time itself)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from tactful.engine import importer
from tactful.engine.importer import (
    MAX_STREAMS,
    ChangedDuringImport,
    import_files,
    stream_name,
    streams,
)
from tactful.engine.reading import AHEAD
from tactful.engine.workers import Workers
from tactful.testing import TIMED_RULES, harness
from tactful.testing.sample import SampleFiles, generate_exports
from tactful.zendesk.files import check_file

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
    directory: Path,
    files: list[Path],
    batch_size: int,
    *,
    by_person: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    directory.mkdir()
    # the same person ids in every store
    engine = harness(CONFIG, f"sqlite:///{directory}/t.db", salt="import-order-test").engine
    store = engine.store
    summary = import_files(
        engine, files, batch_size=batch_size, by_person=by_person, workers=workers
    )
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


@pytest.mark.slow  # forks worker processes
def test_files_parsed_by_workers_give_the_same_import(
    sample: SampleFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``workers``, worker processes parse the files ahead of the merge
    (``tactful.engine.reading``) and fold the batches: every table as one process gives,
    whatever order the files are named in; and the files parsed ahead of the merge are a
    few a stream, not the export."""
    files = list(sample.paths)
    reference = _import(tmp_path / "one", files, 300, by_person=True)
    shuffled = files[:]
    random.Random(7).shuffle(shuffled)
    runs: list[tuple[str, list[Path], int]] = [("two", files, 2), ("three-shuffled", shuffled, 3)]
    for name, order, workers in runs:
        tables = _import(tmp_path / name, order, 300, by_person=True, workers=workers)
        for table, rows in reference.items():
            assert tables[table] == rows, f"{name}: {table} differs"
    waiting: list[int] = []  # parsed files not yet asked for, each time one is asked for
    take = Workers.take

    def counted(self: Workers[Any], index: int) -> Any:
        result = take(self, index)
        waiting.append(len(self.done) + self.given - self.received)
        return result

    monkeypatch.setattr(Workers, "take", counted)
    tables = _import(tmp_path / "counted", shuffled, 300, by_person=True, workers=2)
    for table, rows in reference.items():
        assert tables[table] == rows, f"counted: {table} differs"
    assert len(waiting) > len(streams(files)) * AHEAD  # files were asked for, one by one
    # at most AHEAD files a stream are parsed ahead of the merge, whatever the export's times
    assert max(waiting) <= len(streams(files)) * AHEAD, max(waiting)


@pytest.mark.slow  # forks worker processes
def test_a_file_a_worker_cannot_parse_changes_nothing(
    sample: SampleFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that passed the check but fails when a worker parses it (it changed) is the
    same error as in one process, raised where the merge reaches it; nothing is applied."""
    files = [tmp_path / p.name for p in sample.paths]
    for source, copy in zip(sample.paths, files, strict=True):
        copy.write_bytes(source.read_bytes())
    engine = harness(CONFIG, f"sqlite:///{tmp_path}/t.db", salt="import-order-test").engine
    broken = files[len(files) // 2]

    real = check_file

    def check_then_break(path: Path | str) -> None:
        real(path)
        if Path(path) == broken:  # after its check: as if it changed before it was read
            broken.write_text('{"tickets": [')

    monkeypatch.setattr(importer, "check_file", check_then_break)
    with pytest.raises(ChangedDuringImport, match="nothing was applied") as raised:
        import_files(engine, files, batch_size=300, by_person=True, workers=2)
    assert raised.value.path == str(broken)
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (0,)
    engine.store.close()


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
