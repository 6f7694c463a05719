"""The delivery worker against recording destinations on a real SQLite store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.config import settings_from_toml
from tactful.delivery.policy import RetryPolicy, decide
from tactful.delivery.store import DeliveryStore
from tactful.delivery.worker import DeliveryWorker
from tactful.destinations.base import Outcome
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import (
    RecordingDestination,
    at,
    consent,
    destinations_toml,
    new_store_url,
    rating,
    recording_destinations,
    ticket,
    user,
)

pytestmark = pytest.mark.store

CONFIG = """
[zendesk]
subdomain = "glowlab"

[[segments]]
name = "suppress"
when = "has_open_ticket"

[[segments]]
name = "held"
when = "has_open_ticket"
holdout = 0.999999
""" + destinations_toml()


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 22, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def setup(
    tmp_path: Path, config: str = CONFIG
) -> tuple[Engine, DeliveryWorker, dict[str, Any], Clock]:
    settings = settings_from_toml(config, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    dests = recording_destinations()
    clock = Clock()
    worker = DeliveryWorker(
        settings, engine.store, destinations=dests, clock=clock, rng=lambda: 0.0
    )
    return engine, worker, dests, clock


def kinds(dest: RecordingDestination) -> list[tuple[str, str]]:
    return [(i.kind, i.name) for i in dest.delivered]


def test_audience_add_then_remove_only_what_tactful_added(tmp_path: Path) -> None:
    engine, worker, dests, _ = setup(tmp_path)
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    worker.sync()
    assert kinds(dests["meta"]) == [("audience_add", "")]
    assert dests["meta"].delivered[0].identifiers.emails == ("ann@example.com",)
    engine.apply([ticket(1, at(1), "solved")])
    worker.sync()
    assert kinds(dests["meta"])[-1] == ("audience_remove", "")
    # A removal for someone Tactful never added is not sent.
    rows = DeliveryStore(engine.store)
    assert rows.ledger("meta") == set()


def test_holdout_members_are_never_sent(tmp_path: Path) -> None:
    config = CONFIG.replace('segment = "suppress"', 'segment = "held"')
    engine, worker, dests, _ = setup(tmp_path, config)
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    worker.sync()
    assert dests["meta"].delivered == []
    assert all(i.segment != "held" for i in dests["hook"].delivered)


def test_no_consent_means_not_sent(tmp_path: Path) -> None:
    engine, worker, dests, _ = setup(tmp_path)
    engine.apply(
        [
            user(1, emails=("ann@example.com",)),
            consent(at(-1), "ads", False, email="ann@example.com"),
            ticket(1, at(0), "open"),
        ]
    )
    report = worker.sync()
    assert dests["meta"].delivered == []
    assert report.skipped >= 1
    assert dests["cio"].delivered  # email purpose still allowed by default


def test_esp_gets_profile_with_zendesk_vars_and_named_events(tmp_path: Path) -> None:
    engine, worker, dests, _ = setup(tmp_path)
    engine.apply([user(7, emails=("bo@example.com",)), ticket(5, at(0), "open", requester_id=7)])
    engine.apply(
        [
            ticket(5, at(2), "solved", requester_id=7),
            rating(1, at(3), "good", requester_id=7, ticket_id=5),
        ]
    )
    worker.sync()
    names = [name for kind, name in kinds(dests["cio"]) if kind == "event"]
    assert "zendesk_ticket_created" in names
    assert "zendesk_ticket_resolved" in names
    assert "zendesk_csat_received" in names
    profile = [i for i in dests["cio"].delivered if i.kind == "profile"][-1]
    props = profile.properties
    assert props["zendesk_id"] == "7"
    assert props["zendesk_profile_url"] == "https://glowlab.zendesk.com/agent/users/7"
    assert props["zendesk_tickets"][0]["id"] == 5
    assert props["has_open_ticket"] is False and props["csat_score"] == 5


def test_retry_keeps_per_person_order_and_honours_retry_after(tmp_path: Path) -> None:
    engine, worker, dests, clock = setup(tmp_path)
    meta = dests["meta"]
    meta.script = [Outcome("retry", "HTTP 429", retry_after=30, status=429)]
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    worker.sync()
    engine.apply([ticket(1, at(1), "solved")])
    worker.sync()
    assert kinds(meta) == []  # the add waits 30 s; the remove must not overtake it
    clock.now += timedelta(seconds=31)
    worker.sync()
    # Ann left before the add could go: the stale add is skipped, never sent after her exit;
    # the remove goes (the 429'd add may have been applied), so she ends outside.
    assert kinds(meta) == [("audience_remove", "")]
    skipped = DeliveryStore(engine.store).listing(["skipped"])
    assert [r.kind for r in skipped] == ["audience_add"]


def test_reject_dead_letters_and_retry_requeues(tmp_path: Path) -> None:
    engine, worker, dests, _ = setup(tmp_path)
    dests["hook"].script = [Outcome("reject", "HTTP 400: bad payload", status=400)]
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    report = worker.sync()
    assert report.dead == 1
    store = DeliveryStore(engine.store)
    dead = store.listing(["dead"])
    assert len(dead) == 1 and "bad payload" in dead[0].last_error
    assert store.retry([dead[0].id]) == 1
    worker.sync()
    assert store.listing(["dead"]) == []


def test_full_reconcile_adds_missing_and_removes_stale(tmp_path: Path) -> None:
    engine, worker, dests, _ = setup(tmp_path)
    engine.apply(
        [
            user(1, emails=("a@example.com",)),
            ticket(1, at(0), "open", requester_id=1),
            user(2, emails=("b@example.com",)),
            ticket(2, at(0), "open", requester_id=2),
            user(3, emails=("c@example.com",)),
        ]
    )
    worker.sync()
    assert len(dests["meta"].delivered) == 2
    store = DeliveryStore(engine.store)
    members = store.ledger("meta")
    with engine.store.reader() as reader:
        (outsider,) = reader.find_persons("email", "c@example.com")
    lost = min(members)
    # Drift: the ledger lost a member, and holds someone who is not in the segment.
    with engine.store.transaction() as tx:
        conn: Any = tx.conn  # type: ignore[attr-defined]
        p = engine.store.dialect.p
        conn.execute(f"DELETE FROM audience_ledger WHERE person_id = {p}", (lost,))
        conn.execute(f"INSERT INTO audience_ledger VALUES ('meta', {p}, 0)", (outsider,))
    assert worker.reconcile("meta") == (1, 1)
    worker.sync()
    assert store.ledger("meta") == members
    last_two = [(i.kind, i.person_id) for i in dests["meta"].delivered[-2:]]
    assert sorted(last_two) == sorted([("audience_add", lost), ("audience_remove", outsider)])


def test_member_consents_pages_like_members_and_their_facts(tmp_path: Path) -> None:
    """The reconcile's one-query read equals paging members and loading each person."""
    engine, _, _, _ = setup(tmp_path)
    events: list[Any] = []
    for i in range(1, 41):
        email = f"p{i}@example.com"
        events += [user(i, emails=(email,)), ticket(i, at(0), "open", requester_id=i)]
        if i % 4 == 1:
            events.append(consent(at(1), "ads", True, email=email))
        elif i % 4 == 2:
            events.append(consent(at(1), "ads", False, email=email))
        elif i % 4 == 3:  # another purpose only: no stated ads consent
            events.append(consent(at(1), "email", False, email=email))
    engine.apply(events)
    with engine.store.reader() as reader:
        for segment in ("suppress", "held"):
            members = reader.segment_members(segment, None, 1000)
            persons = reader.load_persons([pid for pid, _ in members])
            expected = [
                (pid, persons[pid].facts.consent_for("ads")) for pid, m in members if not m.holdout
            ]
            got: list[tuple[str, bool | None]] = []
            after = None
            while page := reader.member_consents(segment, "ads", after, 7):
                got += page
                after = page[-1][0]
            assert got == expected
        assert got == []  # "held": holdout 0.999999, every member is held out
        got = reader.member_consents("suppress", "ads", None, 1000)
    assert len(got) == 40
    assert sorted(c for _, c in got if c is not None) == [False] * 10 + [True] * 10


def test_retry_policy_is_pure() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    policy = RetryPolicy(
        base=timedelta(seconds=1), cap=timedelta(seconds=60), max_age=timedelta(hours=1)
    )
    assert decide(Outcome.ok(), 1, now, now, policy, 0.5).action == "done"
    assert decide(Outcome("reject", "no"), 1, now, now, policy, 0.5).action == "dead"
    d = decide(Outcome("retry", "x", retry_after=12), 1, now, now, policy, 0.9)
    assert d.action == "retry" and d.at == now + timedelta(seconds=12)
    d = decide(Outcome("retry", "x"), 4, now, now, policy, 1.0)
    assert d.at == now + timedelta(seconds=8)
    d = decide(Outcome("retry", "x"), 20, now, now, policy, 0.0)
    assert d.at == now + timedelta(seconds=30)  # cap 60 s, half with zero jitter
    old = now - timedelta(hours=2)
    assert decide(Outcome("retry", "x"), 3, now, old, policy, 0.5).action == "dead"


def test_erasure_deletes_locally_keeps_proof_and_reaches_every_destination(
    tmp_path: Path,
) -> None:
    from tactful.core.events import Identifier, PersonErased

    engine, worker, dests, _ = setup(tmp_path)
    engine.apply(
        [
            user(1, emails=("ann@example.com",), phones=("+14155550100",)),
            ticket(1, at(0), "open"),
            user(2, emails=("bob@example.com",)),
        ]
    )
    worker.sync()
    assert kinds(dests["meta"]) == [("audience_add", "")]
    engine.apply(
        [PersonErased("erase-1", at(5), Identifier("email", "ann@example.com"), "dpo@example.com")]
    )
    with engine.store.reader() as reader:
        assert reader.find_persons("email", "ann@example.com") == []
        assert reader.find_persons("email", "bob@example.com") != []
        conn: Any = reader.conn  # type: ignore[attr-defined]
        assert (
            conn.execute(
                "SELECT COUNT(*) FROM events WHERE CAST(canonical AS TEXT) LIKE '%ann@example.com%'"
            ).fetchone()[0]
            == 0
        )
        proof = conn.execute(
            "SELECT requested_by, identifiers_proof, events_deleted FROM erasures"
        ).fetchall()
    assert proof[0][0] == "dpo@example.com" and proof[0][1].startswith("hmac-sha256:")
    assert len(proof[0][1]) == len("hmac-sha256:") + 64 and proof[0][2] >= 2
    worker.sync()
    assert dests["meta"].delivered[-1].kind == "audience_remove"
    assert dests["meta"].delivered[-1].identifiers.emails == ("ann@example.com",)
    assert dests["cio"].delivered[-1].kind == "erase"
    from tactful.destinations.base import Identifiers

    erased = dests["hook"].delivered[-1]
    assert (erased.name, erased.identifiers) == ("person_erased", Identifiers())
    assert DeliveryStore(engine.store).ledger("meta") == set()
    with engine.store.reader() as reader:
        conn = reader.conn  # type: ignore[attr-defined]
        leftovers = (
            conn.execute(
                "SELECT COUNT(*) FROM deliveries "
                "WHERE CAST(payload AS TEXT) LIKE '%ann@example.com%'"
            ).fetchone()[0]
            + conn.execute(
                "SELECT COUNT(*) FROM outbox WHERE CAST(payload AS TEXT) LIKE '%ann@example.com%'"
            ).fetchone()[0]
        )
    assert leftovers == 0


def test_a_batch_rejected_whole_is_split_to_find_the_bad_record(tmp_path: Path) -> None:
    from tactful.delivery.worker import send_splitting
    from tactful.destinations.base import Identifiers, Item

    class Strict(RecordingDestination):
        """Rejects a whole request (HTTP 400) when any record in it is bad."""

        def send(self, items: Any) -> list[Any]:
            if any(i.person_id == "bad" for i in items):
                return [Outcome("reject", "HTTP 400: invalid record", status=400)] * len(items)
            return super().send(items)

    dest = Strict("strict")
    items = [
        Item(f"k{i}", "event", "bad" if i == 5 else f"p{i}", at(0), Identifiers()) for i in range(8)
    ]
    outcomes = send_splitting(dest, items)
    assert [o.kind for o in outcomes] == ["ok"] * 5 + ["reject"] + ["ok"] * 2
    assert [i.person_id for i in dest.delivered] == [f"p{i}" for i in range(8) if i != 5]


def test_withdrawn_consent_removes_from_audiences_and_regranting_adds_back(
    tmp_path: Path,
) -> None:
    engine, worker, dests, _ = setup(tmp_path)
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    worker.sync()
    assert kinds(dests["meta"]) == [("audience_add", "")]
    engine.apply([consent(at(1), "ads", False, email="ann@example.com")])
    worker.sync()
    assert kinds(dests["meta"])[-1] == ("audience_remove", "")
    assert DeliveryStore(engine.store).ledger("meta") == set()
    engine.apply([consent(at(2), "email", False, email="ann@example.com")])
    worker.sync()
    assert len(dests["meta"].delivered) == 2  # another purpose: nothing for ads
    engine.apply([consent(at(3), "ads", True, email="ann@example.com")])
    worker.sync()
    assert kinds(dests["meta"])[-1] == ("audience_add", "")
