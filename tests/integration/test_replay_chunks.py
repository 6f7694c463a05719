"""Issue 17: a replay commits a chunk at a time. No transaction holds the store for the whole
replay, a replay stopped half way resumes to exactly what one uninterrupted replay gives (the
same state, each correction in the outbox once), and while it is unfinished writes are
queued, ticks and routing wait."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, cast

import pytest

from tactful.engine import engine as engine_module
from tactful.engine.engine import SALT_KEY, Engine, Incoming
from tactful.engine.replay import ReplayInProgress
from tactful.engine.writer import Writer
from tactful.store.base import REPLAY_KEY, Store
from tactful.store.sqlite import open_store
from tactful.testing import at, ticket
from tests.integration.test_net_delivery import NARROWED, Setup, customers

pytestmark = pytest.mark.store

PERSONS = 12


class Stop(Exception):
    """Stands for the replay's process dying: what it committed stays, nothing else."""


def _world(tmp_path: Path) -> Setup:
    """Customers applied a few per batch (several replay chunks), delivered, then the
    config narrowed: a replay changes every person's segments."""
    tmp_path.mkdir(exist_ok=True)
    s = Setup(tmp_path)
    with s.store.transaction() as tx:  # the same person ids in every store built here
        tx.set_meta(SALT_KEY, "fixed-salt")
    events = customers(PERSONS)
    for k in range(0, len(events), 4):
        s.engine.apply(events[k : k + 4])
    s.engine.apply([ticket(1, at(2), "solved", requester_id=1, tags=("shipping",))])
    s.sync()
    s.configure(NARROWED)
    return s


def _rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    with store.reader() as reader:
        conn = cast(Any, reader).conn
        return [
            tuple(bytes(v) if isinstance(v, memoryview) else v for v in r)
            for r in conn.execute(sql)
        ]


def _outcome(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """What a replay leaves: persons, memberships, history and the outbox (without ids)."""
    return {
        "persons": _rows(store, "SELECT person_id, facts, state, wake_us FROM persons ORDER BY 1"),
        "memberships": _rows(store, "SELECT * FROM memberships ORDER BY segment, person_id"),
        "history": _rows(
            # each person's in order (PostgreSQL's workers commit persons in any order)
            store,
            "SELECT person_id, segment, change, at_us FROM membership_history "
            "ORDER BY person_id, id",
        ),
        "outbox": _rows(store, "SELECT person_id, topic, at_us, payload FROM outbox ORDER BY id"),
        "meta": _rows(store, "SELECT key, value FROM meta WHERE key IN ('clock', 'replay')"),
        "snapshot": _rows(store, "SELECT person_id FROM replay_before_persons"),
    }


def test_no_transaction_holds_the_store_for_the_whole_replay(tmp_path: Path) -> None:
    s = _world(tmp_path)
    other = open_store(s.store.url)  # another connection, as another process would have
    seen: list[str | None] = []
    wrote = threading.Event()
    during: list[bool] = []
    threads: list[threading.Thread] = []

    def write() -> None:
        with other.transaction() as tx:
            tx.set_meta("probe", "written during the replay")
        wrote.set()

    def probe(done: int, total: int) -> None:
        if seen:
            return
        with other.reader() as reader:
            seen.append(reader.get_meta(REPLAY_KEY))  # the replay's progress, committed
        threads.append(threading.Thread(target=write, daemon=True))
        threads[0].start()
        during.append(wrote.wait(5))  # before: waited for the replay's one transaction

    try:
        report = s.engine.replay(batch_size=4, progress=probe)
        for thread in threads:
            thread.join(30)
        assert during == [True], "another writer waited for the replay"
        assert seen and seen[0] is not None and '"phase":"recompute"' in seen[0]
        assert report.persons_after == PERSONS and report.segments["suppress"]["exit"] > 0
        with other.reader() as reader:
            assert reader.get_meta("probe") == "written during the replay"
            assert reader.get_meta(REPLAY_KEY) is None  # finished: the marker is gone
    finally:
        other.close()


@pytest.mark.parametrize(
    ("by_person", "workers"),
    [
        (False, 1),
        (True, 1),
        pytest.param(True, 2, marks=pytest.mark.slow),  # forks worker processes
    ],
    ids=["log-order", "by-person", "by-person-workers"],
)
@pytest.mark.parametrize("stop_in", ["recompute", "compare"])
def test_a_replay_stopped_half_way_resumes_to_what_one_replay_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, stop_in: str, by_person: bool, workers: int
) -> None:
    """With workers, the recompute phase stops after two batches were written (SQLite: by
    the replaying process, in order; PostgreSQL: committed by the workers, which may have
    committed later ones too: the marker says which) and resumes in one process."""
    monkeypatch.setattr(engine_module, "PERSON_PAGE", 3)
    once = _world(tmp_path / "once")
    whole = once.engine.replay(batch_size=4, by_person=by_person)
    expected = _outcome(once.store)
    assert whole.messages > 0 and expected["meta"][0][0] == "clock"

    twice = _world(tmp_path / "twice")
    calls = {"n": 0}
    step = Engine._step

    def dying(self: Engine, tx: Any, marker: Any, *args: Any, **kwargs: Any) -> None:
        if marker.phase == stop_in:
            calls["n"] += 1
            if calls["n"] == 3:  # two chunks of this phase committed, the third dies
                raise Stop
        step(self, tx, marker, *args, **kwargs)

    def dies_on_third_batch(done: int, total: int) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise Stop

    in_workers = workers > 1 and stop_in == "recompute"
    if not in_workers:
        monkeypatch.setattr(Engine, "_step", dying)
    with pytest.raises(Stop):
        twice.engine.replay(
            batch_size=4,
            by_person=by_person,
            workers=workers,
            progress=dies_on_third_batch if in_workers else None,
        )
    monkeypatch.setattr(Engine, "_step", step)
    with twice.store.reader() as reader:
        marker = str(reader.get_meta(REPLAY_KEY))
    assert marker != "None"  # unfinished, and says so
    assert ('"by_person":true' in marker) == by_person
    if in_workers:  # two batches or more done, and no more written than the marker says
        stopped = json.loads(marker)
        assert stopped["phase"] == "recompute" and stopped["part"] + len(stopped["done"]) >= 2

    resumed = twice.engine.replay(batch_size=4)  # goes on the way it began
    assert resumed.resumed
    assert _outcome(twice.store) == expected
    assert (resumed.messages, resumed.persons_changed, resumed.segments) == (
        whole.messages,
        whole.persons_changed,
        whole.segments,
    )
    sent = twice.sync()
    assert len(sent["meta"]) == whole.segments["suppress"]["exit"]  # each removal once


def test_while_a_replay_is_unfinished_writes_queue_and_ticks_and_routing_wait(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s = _world(tmp_path)

    def dying(self: Engine, *args: Any, **kwargs: Any) -> None:
        raise Stop

    step = Engine._step
    monkeypatch.setattr(Engine, "_step", dying)
    with pytest.raises(Stop):
        s.engine.replay(batch_size=4)  # the marker is there; no process holds the lock
    monkeypatch.setattr(Engine, "_step", step)
    with s.store.unless_replaying() as free:
        assert not free
    with pytest.raises(ReplayInProgress):
        s.engine.apply([ticket(500, at(3), "open", requester_id=1)])
    assert s.engine.tick(at(30)).applied == 0
    with s.store.reader() as reader:
        assert reader.counts()["persons"] == 0  # the store is being rebuilt: nothing added
    assert sum(len(v) for v in s.sync().values()) == 0  # routing waits too

    if s.store.inbox() is not None:  # SQLite in memory has none
        writer = Writer(s.engine)
        writer.start()
        try:
            queued = writer.submit([Incoming([ticket(501, at(3), "open", requester_id=2)])])
            assert queued.result(10).queued
            s.engine.replay(batch_size=4)
            applied = writer.submit([Incoming([ticket(502, at(3), "open", requester_id=3)])])
            assert not applied.result(10).queued
        finally:
            writer.stop()
        with s.store.reader() as reader:
            assert len(reader.load_tickets([501, 502])) == 2


def _stop_half_way(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A replay that dies right after its first commit (the snapshot; derived data reset)."""

    def dying(self: Engine, *args: Any, **kwargs: Any) -> None:
        raise Stop

    with monkeypatch.context() as patch:
        patch.setattr(Engine, "_step", dying)
        with pytest.raises(Stop):
            engine.replay()


def test_readers_say_a_replay_is_rebuilding_the_store_instead_of_showing_half_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from starlette.testclient import TestClient

    from tests.dashboard import helpers as dashboard
    from tests.dashboard.test_routes import csrf_of
    from tests.sidebar import helpers as sidebar
    from tests.sidebar.test_routes import open_page, panel

    (tmp_path / "dashboard").mkdir()
    board = dashboard.world(tmp_path / "dashboard")
    (tmp_path / "sidebar").mkdir()
    side = sidebar.world(tmp_path / "sidebar")
    try:
        with TestClient(board.app) as client:
            login = {"password": dashboard.PASSWORD, "next": "/"}
            assert client.post("/login", data=login, follow_redirects=False).status_code == 303
            assert 'id="rebuilding"' not in client.get("/").text
            _stop_half_way(board.engine, monkeypatch)
            for path in ("/", "/people", "/segments"):
                assert 'id="rebuilding"' in client.get(path).text, path
            token = csrf_of(client.get("/config").text)
            preview = client.post("/replay/preview", data={"csrf": token})
            assert preview.status_code == 409 and "replay is unfinished" in preview.text
        with TestClient(side.app) as client:
            session = open_page(client)
            assert "rebuilding" not in panel(client, session)
            _stop_half_way(side.engine, monkeypatch)
            html = panel(client, session)
            assert "Tactful is rebuilding its records" in html
            assert 'data-person="' not in html  # no half-built person shown
    finally:
        board.engine.store.close()
        side.stop()


@pytest.mark.parametrize("how", [[], ["--by-person"]], ids=["time-order", "by-person"])
def test_tactful_import_refuses_while_a_replay_is_unfinished(
    how: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    store_kind: str,
) -> None:
    import orjson

    from tactful.cli.main import main
    from tactful.exceptions import EXIT_TRY_AGAIN

    if store_kind != "sqlite":
        pytest.skip("the command line test runs on a SQLite file")
    db = tmp_path / "cli.db"
    config = tmp_path / "t.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n')
    page = tmp_path / "users.json"
    users = [{"id": 1, "email": "a@example.com", "updated_at": "2026-01-01T00:00:00Z"}]
    page.write_bytes(orjson.dumps({"users": users, "end_of_stream": True}))
    assert main(["--config", str(config), "import", str(page)]) == 0
    store = open_store(f"sqlite:///{db}")
    try:
        _stop_half_way(Engine(_world(tmp_path / "w").engine.rules, store), monkeypatch)
    finally:
        store.close()
    page.write_bytes(orjson.dumps({"users": [{**users[0], "id": 2}], "end_of_stream": True}))
    assert main(["--config", str(config), "import", *how, str(page)]) == EXIT_TRY_AGAIN
    assert "replay is unfinished" in capsys.readouterr().err
    assert main(["--config", str(config), "replay", "--json"]) == 0
    assert main(["--config", str(config), "import", str(page)]) == 0


def test_a_chunk_of_the_log_never_splits_the_events_stored_together(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    events = customers(6)  # 12 events, stored 5, 5 and 2 at a time
    for k in (0, 5, 10):
        s.engine.apply(events[k : k + 5])
    with s.store.transaction() as tx:
        sizes, seq = [], 0
        while chunk := tx.event_chunk(seq, 2):
            sizes.append(len(chunk))
            seq = chunk[-1][0]
        assert sizes == [5, 5, 2]
        assert [len(tx.event_chunk(0, n)) for n in (5, 6, 10, 11, 100)] == [5, 10, 10, 12, 12]
