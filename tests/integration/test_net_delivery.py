"""Issue 17: destinations are told the net change only (replays, imports) and holdouts stay
clean in every channel. Recording destinations behind the real router and worker, on a real
store; the engine's wall clock is a fake, so "history" is decided against a known moment."""

from __future__ import annotations

import tracemalloc
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.config import settings_from_toml
from tactful.delivery.worker import DeliveryWorker
from tactful.engine import engine as engine_module
from tactful.engine.engine import Engine, Incoming, rules_from_settings
from tactful.store import records
from tactful.store.base import Store
from tactful.store.sqlite import open_store
from tactful.testing import (
    FakeClock,
    at,
    destinations_toml,
    new_store_url,
    recording_destinations,
    ticket,
    user,
)

pytestmark = pytest.mark.store

CONFIG = """
[zendesk]
subdomain = "glowlab"

[[reasons]]
name = "refund"
tags = ["refund"]
risk = true

[[reasons]]
name = "shipping"
tags = ["shipping"]

[[states]]
name = "refund_risk"
when = "refund_risk"

[[states]]
name = "open_ticket"
when = "has_open_ticket"

[[segments]]
name = "suppress"
when = "has_open_ticket"

[[segments]]
name = "held"
when = "has_open_ticket"
holdout = 0.999999
""" + destinations_toml()

NARROWED = CONFIG.replace(
    'name = "suppress"\nwhen = "has_open_ticket"', 'name = "suppress"\nwhen = "refund_risk"'
)


class Setup:
    """An engine and a delivery worker on one store, rebuilt with another config at will
    (what a user does: edit tactful.toml, run the next command)."""

    def __init__(self, tmp_path: Path, config: str = CONFIG) -> None:
        self.clock = FakeClock(at(24))  # the wall clock: a day after T0
        self.store: Store = open_store(new_store_url(tmp_path))
        self.configure(config)

    def configure(self, config: str) -> None:
        self.settings = settings_from_toml(config, environ={})
        self.engine = Engine(rules_from_settings(self.settings), self.store, clock=self.clock)
        self.dests = recording_destinations()
        self.worker = DeliveryWorker(
            self.settings, self.store, destinations=self.dests, clock=self.clock, rng=lambda: 0.0
        )

    def sync(self) -> dict[str, list[Any]]:
        """Deliver what is owed; what each destination received in this sync."""
        for dest in self.dests.values():
            dest.delivered.clear()
        self.worker.sync()
        return {name: list(dest.delivered) for name, dest in self.dests.items()}


def count(sent: dict[str, list[Any]]) -> int:
    return sum(len(items) for items in sent.values())


def customers(n: int, *, tags: tuple[str, ...] = ("shipping",), status: str = "open") -> list[Any]:
    events: list[Any] = []
    for u in range(1, n + 1):
        events.append(user(u, emails=(f"c{u}@example.com",)))
        events.append(ticket(u, at(1), status, requester_id=u, tags=tags))
    return events


def test_a_replay_that_changes_nothing_sends_nothing(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.engine.apply(customers(5))
    s.engine.apply([ticket(1, at(2), "solved", requester_id=1, tags=("shipping",))])
    first = s.sync()
    assert first["meta"] and first["cio"] and first["hook"]
    report = s.engine.replay()
    assert report.changed == []
    assert count(s.sync()) == 0


def test_renaming_one_reason_sends_only_the_persons_it_changes(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    events = customers(6)
    events += [ticket(100 + u, at(2), "open", requester_id=u, tags=("refund",)) for u in (1, 2)]
    s.engine.apply(events)
    s.sync()
    # Persons 3..6 have only a shipping ticket: renaming the reason changes their open_reasons
    # and ticket_reason; persons 1 and 2 have a newer refund ticket, so only open_reasons.
    s.configure(CONFIG.replace('name = "shipping"', 'name = "delivery"'))
    report = s.engine.replay()
    assert len(report.changed) == 6
    sent = s.sync()
    assert sent["meta"] == []  # no membership changed
    hook = sent["hook"]
    assert [i.name for i in hook] == ["support_state_changed"] * 6
    assert {i.person_id for i in hook} == {c["person_id"] for c in report.changed}
    for item in hook:
        assert item.properties["replayed"] is True
        assert "open_reasons" in item.properties["changed"]
        assert item.properties["values"]["open_reasons"] in (["delivery"], ["delivery", "refund"])
    assert [i.kind for i in sent["cio"]] == ["profile"] * 6


def test_a_replay_that_moves_members_adds_and_removes_only_them(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.engine.apply(customers(4))
    s.engine.apply([ticket(9, at(2), "open", requester_id=4, tags=("refund",))])
    s.sync()
    s.configure(NARROWED)
    s.engine.replay()
    sent = s.sync()
    assert sorted(i.kind for i in sent["meta"]) == ["audience_remove"] * 3
    changes = [i for i in sent["hook"] if i.name == "segment_membership_changed"]
    assert len(changes) == 3
    assert all(i.properties["change"] == "exited" and i.properties["replayed"] for i in changes)
    assert not [i for i in sent["hook"] if i.name == "support_state_changed"]


def test_replay_history_is_rebuilt_but_not_resent(tmp_path: Path) -> None:
    """The store's own history (why is this customer suppressed?) is recomputed in full;
    only the outbox is net."""
    s = Setup(tmp_path)
    s.engine.apply(customers(2))
    s.engine.apply([ticket(1, at(2), "solved", requester_id=1, tags=("shipping",))])
    s.sync()
    with s.store.reader() as reader:
        before = [reader.history_of(p) for p in reader.person_ids(None, 10)]
    s.engine.replay()
    with s.store.reader() as reader:
        assert [reader.history_of(p) for p in reader.person_ids(None, 10)] == before
    assert count(s.sync()) == 0


def test_replay_dry_run_previews_and_changes_nothing(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.engine.apply(customers(3))
    s.sync()
    with s.store.reader() as reader:
        counts = reader.counts()
    s.configure(NARROWED)
    from tactful.delivery.router import preview, routes_of

    routes = routes_of(s.settings)
    report = s.engine.replay(dry_run=True, count=lambda rows: preview(rows, routes))
    assert report.dry_run
    assert report.segments["suppress"]["exit"] == 3
    assert report.segments["suppress"]["enter"] == 0
    assert len(report.segments["suppress"]["exiting"]) == 3
    per_destination = report.destinations
    assert per_destination["meta"]["audience_remove"] == 3
    assert per_destination["meta"]["audience_add"] == 0
    assert per_destination["hook"]["event"] == 3
    with s.store.reader() as reader:
        assert reader.counts() == counts
    assert count(s.sync()) == 0
    s.engine.replay()
    assert len(s.sync()["meta"]) == 3


# -- section 2: no floods from imports ---------------------------------------------------------


def test_ticketless_users_are_not_an_event(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.engine.apply([user(u, emails=(f"u{u}@example.com",)) for u in range(1, 201)])
    assert count(s.sync()) == 0
    # ... and once one of them has something to say, it is said in full.
    s.engine.apply([ticket(1, at(2), "open", requester_id=7)])
    sent = s.sync()
    assert [i.kind for i in sent["meta"]] == ["audience_add"]
    (change,) = [i for i in sent["hook"] if i.name == "support_state_changed"]
    assert change.properties["old_state"] == "clear"
    assert change.properties["new_state"] == "open_ticket"


def old_history(n: int) -> list[Incoming]:
    """A year-old export: every customer opened a ticket and had it solved; customer 1's
    ticket is still open."""
    year_ago = at(24) - timedelta(days=365)
    events: list[Any] = []
    for u in range(1, n + 1):
        events.append(user(u, year_ago, emails=(f"c{u}@example.com",)))
        events.append(ticket(u, year_ago + timedelta(hours=1), "open", requester_id=u))
        if u != 1:
            events.append(ticket(u, year_ago + timedelta(days=2), "solved", requester_id=u))
    return [Incoming(events, None, "import:test")]


def test_imported_history_reaches_profiles_and_audiences_as_current_truth(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.engine.apply_many(old_history(5), history=True)
    sent = s.sync()
    assert sent["hook"] == []  # event destinations: nothing older than the horizon
    assert [(i.kind, i.person_id) for i in sent["meta"]] == [
        ("audience_add", sent["meta"][0].person_id)
    ]  # only the customer who is a member now; no add-then-remove for the others
    profiles = [i for i in sent["cio"] if i.kind == "profile"]
    assert len(profiles) == 5  # one current profile per person with something to say
    assert len({i.person_id for i in profiles}) == 5
    assert [i for i in sent["cio"] if i.kind == "event"] == []


def test_recent_imported_changes_still_reach_event_destinations(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    recent = [user(1, at(20), emails=("c1@example.com",)), ticket(1, at(21), "open")]
    s.engine.apply_many([Incoming(recent, None, "import:test")], history=True)
    sent = s.sync()
    assert [i.name for i in sent["hook"]] == [
        "support_state_changed",
        "segment_membership_changed",
    ]


def test_history_all_sends_every_historical_change(tmp_path: Path) -> None:
    s = Setup(tmp_path, CONFIG + '\n[delivery]\nhistory = "all"\n')
    s.engine.apply_many(old_history(3), history=True)
    sent = s.sync()
    names = [i.name for i in sent["hook"]]
    assert names.count("segment_membership_changed") == 5  # 3 entries, 2 exits
    # (the audience's late adds of persons who left meanwhile are skipped at send time)
    assert [i.kind for i in sent["meta"]] == ["audience_add"]


def test_a_second_import_tells_the_net_change_since_the_first(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.engine.apply_many(old_history(2), history=True)
    s.sync()
    year_ago = at(24) - timedelta(days=365)
    later = [
        ticket(1, year_ago + timedelta(days=5), "solved", requester_id=1),
        ticket(1, year_ago + timedelta(days=6), "open", requester_id=1),
        ticket(1, year_ago + timedelta(days=7), "solved", requester_id=1),
    ]
    s.engine.apply_many([Incoming(later, None, "import:test")], history=True)
    sent = s.sync()
    assert [i.kind for i in sent["meta"]] == ["audience_remove"]
    assert sent["hook"] == []
    assert len([i for i in sent["cio"] if i.kind == "profile"]) == 1


# -- section 3: holdouts stay clean --------------------------------------------------------------


def test_every_channel_gets_an_eligibility_flag_false_for_holdouts(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.engine.apply(customers(1))
    sent = s.sync()
    (profile,) = [i for i in sent["cio"] if i.kind == "profile"]
    # A member of "suppress" (treated) and of "held" (a holdout): raw state says open ticket
    # for both; only the eligibility flag tells them apart.
    assert profile.properties["has_open_ticket"] is True
    assert profile.properties["eligible_suppress"] is True
    assert profile.properties["eligible_held"] is False
    (change,) = [i for i in sent["hook"] if i.name == "support_state_changed"]
    assert change.properties["eligible"] == {"suppress": True, "held": False}
    # Leaving the segment flips the flag in the profile too.
    s.engine.apply([ticket(1, at(3), "solved", requester_id=1, tags=("shipping",))])
    sent = s.sync()
    profile = [i for i in sent["cio"] if i.kind == "profile"][-1]
    assert profile.properties["eligible_suppress"] is False


def test_a_membership_change_alone_updates_the_profile_flags(tmp_path: Path) -> None:
    config = CONFIG.replace(
        'name = "suppress"\nwhen = "has_open_ticket"',
        'name = "suppress"\nwhen = "has_open_ticket and last_activity_at within 2h"',
    )
    s = Setup(tmp_path, config)
    s.engine.apply(customers(1))
    s.sync()
    s.engine.tick(at(5))  # the window closes: no state field changes, the segment does
    sent = s.sync()
    profiles = [i for i in sent["cio"] if i.kind == "profile"]
    assert profiles and profiles[-1].properties["eligible_suppress"] is False


def test_importing_a_thousand_ticketless_users_sends_nothing(tmp_path: Path) -> None:
    import orjson

    from tactful.engine.importer import import_files

    s = Setup(tmp_path)
    users = [
        {
            "id": 5000 + u,
            "email": f"user{u}@example.com",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        }
        for u in range(1000)
    ]
    path = tmp_path / "users.json"
    path.write_bytes(orjson.dumps({"users": users, "end_of_stream": True}))
    summary = import_files(s.engine, [path])
    assert summary.applied == 1000
    assert count(s.sync()) == 0
    with s.store.reader() as reader:
        assert reader.counts()["persons"] == 1000


def test_the_warehouse_gets_the_flags_in_its_current_table_and_events(tmp_path: Path) -> None:
    import json

    duckdb = pytest.importorskip("duckdb")
    target = tmp_path / "w.duckdb"
    config = CONFIG + (
        f'\n[[destinations]]\nname = "wh"\ntype = "warehouse"\nurl = "duckdb:///{target}"\n'
    )
    s = Setup(tmp_path, config)
    s.engine.apply(customers(1))
    s.sync()
    conn = duckdb.connect(str(target), read_only=True)
    try:
        (state,) = conn.execute("SELECT state FROM persons_current").fetchone()
        events = conn.execute(
            "SELECT properties FROM events WHERE name = 'support_state_changed'"
        ).fetchall()
    finally:
        conn.close()
    state = json.loads(state)
    assert state["eligible_suppress"] is True and state["eligible_held"] is False
    assert state["has_open_ticket"] is True  # raw, for analysis; not for suppression
    (props,) = [json.loads(p) for (p,) in events]
    assert props["eligible"] == {"suppress": True, "held": False}


def test_a_replay_applies_the_events_stored_together_together(tmp_path: Path) -> None:
    """An import batch holds events in document order, not time order; the batch sweeps them
    in time order. A replay in smaller chunks must not split such a batch, or its earlier
    events would fall behind the clock its later ones set, and the replay would "change"
    persons (and tell destinations) when nothing changed."""
    cooldown = 'name = "suppress"\nwhen = "has_open_ticket"\ncooldown = "6h"'
    s = Setup(tmp_path, CONFIG.replace('name = "suppress"\nwhen = "has_open_ticket"', cooldown))
    events = [
        user(1, emails=("late@example.com",)),
        ticket(1, at(20), "open", requester_id=1),
        user(2, emails=("early@example.com",)),
        ticket(2, at(1), "open", requester_id=2),
        ticket(2, at(2), "solved", requester_id=2),
    ]
    s.engine.apply_many([Incoming(events, None, "import:test")])
    s.sync()
    report = s.engine.replay(batch_size=2)
    assert report.changed == []
    assert count(s.sync()) == 0


def test_an_erasure_not_yet_routed_survives_a_replay(tmp_path: Path) -> None:
    from tactful.core.events import Identifier, PersonErased

    s = Setup(tmp_path)
    s.engine.apply(customers(2))
    s.sync()
    s.engine.apply([PersonErased("erase-1", at(3), Identifier("email", "c1@example.com"))])
    s.engine.replay()  # before the erasure was routed
    sent = s.sync()
    assert [i.kind for i in sent["cio"]] == ["erase"]
    assert [i.kind for i in sent["meta"]] == ["audience_remove"]


def test_the_clock_catching_up_on_old_history_tells_only_the_net_change(tmp_path: Path) -> None:
    """After importing last year's export the clock stands at last year; moving it to now
    fires a year of timers at once. Those changes are history too: event destinations do not
    get them, the audience hears the net exit."""
    config = CONFIG.replace(
        'name = "suppress"\nwhen = "has_open_ticket"',
        'name = "suppress"\nwhen = "has_open_ticket and last_activity_at within 3d"',
    )
    s = Setup(tmp_path, config)
    year_ago = at(24) - timedelta(days=365)
    recent = [user(1, year_ago, emails=("c1@example.com",)), ticket(1, year_ago, "open")]
    s.engine.apply_many([Incoming(recent, None, "import:test")], history=False)
    assert [i.kind for i in s.sync()["meta"]] == ["audience_add"]
    s.engine.tick(at(24))
    sent = s.sync()
    assert [i.kind for i in sent["meta"]] == ["audience_remove"]
    assert sent["hook"] == []
    assert [i.kind for i in sent["cio"]] == ["profile"]


def _replay_peak(tmp_path: Path, persons: int) -> float:
    """Peak traced memory (bytes) of a no-op replay of ``persons`` customers applied 100
    events at a time (a replay never splits what was applied together)."""
    (tmp_path / str(persons)).mkdir()
    s = Setup(tmp_path / str(persons))
    events = customers(persons)
    for k in range(0, len(events), 100):
        s.engine.apply(events[k : k + 100])
    tracemalloc.start()
    try:
        report = s.engine.replay(batch_size=100)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    s.store.close()
    assert report.persons_after == persons and not report.messages
    return float(peak)


def test_a_replays_memory_is_flat_in_the_number_of_persons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small pages and decode memos, so that what grows with the persons shows at a few
    # hundred of them (the defaults: 2,000 persons a page, 8,192 decoded values memoized).
    monkeypatch.setattr(engine_module, "PERSON_PAGE", 50, raising=False)
    monkeypatch.setattr(records, "_tickets", records._Memo(16))
    monkeypatch.setattr(records, "_facts", records._Memo(16))
    small, large = _replay_peak(tmp_path, 200), _replay_peak(tmp_path, 1600)
    assert large < 3 * small, (small, large)  # before: 6 times as much
