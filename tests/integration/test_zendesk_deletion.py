"""A Zendesk user deletion reaches every destination (issue 18 §2).

Zendesk sends ``zen:event-type:user.deleted`` when a user is (soft) deleted, and lists the
user with ``"active": false`` in the users export. Either makes the person leave every
audience and stops every profile sync at once. Erasure follows ``[privacy]
erase_deleted_users``: at once, or when Zendesk permanently deletes the user (seen through
``GET /api/v2/deleted_users``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tactful.config import Settings, settings_from_toml
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import (
    at,
    destinations_toml,
    new_store_url,
    recording_destinations,
    ticket,
    user,
)
from tactful.zendesk.parse import parse_object

pytestmark = pytest.mark.store

FIXTURES = Path(__file__).parent.parent / "fixtures" / "zendesk"
CONFIG = """
[[segments]]
name = "suppress"
when = "has_open_ticket"
""" + destinations_toml("meta", "cio")
USER_ID = 6164069643162  # the user of the recorded user.deleted delivery


class Setup:
    def __init__(self, tmp_path: Path, config: str = CONFIG) -> None:
        self.settings: Settings = settings_from_toml(config, environ={})
        self.engine = Engine(
            rules_from_settings(self.settings), open_store(new_store_url(tmp_path))
        )
        self.dests = recording_destinations("meta", "cio")
        self.worker = DeliveryWorker(
            self.settings,
            self.engine.store,
            destinations=self.dests,  # type: ignore[arg-type]
            clock=lambda: at(24 * 30),
            rng=lambda: 0.0,
        )

    def kinds(self, name: str) -> list[str]:
        return [i.kind for i in self.dests[name].delivered]

    def member(self) -> None:
        """Ann, with an open ticket: in the audience and synced to the ESP."""
        self.engine.apply(
            [
                user(USER_ID, emails=("ann@example.com",)),
                ticket(1, at(0), "open", requester_id=USER_ID),
            ]
        )
        self.worker.sync()
        assert self.kinds("meta") == ["audience_add"]
        assert "profile" in self.kinds("cio")


def recorded_user_deleted() -> Any:
    data = json.loads((FIXTURES / "webhook-invocation-attempts.json").read_text())
    return json.loads(data["attempts"][0]["request"]["payload"])


def test_the_real_user_deleted_envelope_removes_and_stops_every_sync(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.member()
    envelope = recorded_user_deleted()
    assert envelope["type"] == "zen:event-type:user.deleted"
    s.engine.apply(parse_object(envelope).events)
    s.worker.sync()
    assert s.kinds("meta") == ["audience_add", "audience_remove"]
    synced = len(s.dests["cio"].delivered)
    # Later changes of the person reach no destination.
    s.engine.apply(
        [
            ticket(1, at(48), "solved", requester_id=USER_ID),
            ticket(2, at(49), "open", requester_id=USER_ID),
        ]
    )
    s.worker.sync()
    assert len(s.dests["cio"].delivered) == synced
    assert s.kinds("meta") == ["audience_add", "audience_remove"]
    with s.engine.store.reader() as reader:
        pids = reader.find_persons("zendesk_user_id", str(USER_ID))
        assert pids, "a soft deletion keeps the person until the erasure policy says so"
        assert reader.member_consents("suppress", "ads", None, 10) == [(pids[0], False)]


def test_an_inactive_user_in_the_users_export_is_a_deletion(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.member()
    page = {
        "users": [
            {
                "id": USER_ID,
                "email": None,
                "active": False,
                "updated_at": "2026-11-25T00:00:00Z",
                "user_fields": {},
            }
        ],
        "end_of_stream": True,
    }
    s.engine.apply(parse_object(page).events)
    s.worker.sync()
    assert s.kinds("meta") == ["audience_add", "audience_remove"]


def test_a_merged_away_user_leaves_the_survivor_live(tmp_path: Path) -> None:
    """Zendesk deactivates the user merged away; the survivor keeps every sync."""
    from tactful.testing import user_merge

    s = Setup(tmp_path)
    s.member()
    s.engine.apply([user(77, at(1), emails=("ann@other.example",)), user_merge(77, USER_ID, at(2))])
    s.worker.sync()
    before = s.kinds("meta")
    assert before[-1] == "audience_add"
    page = {"users": [{"id": 77, "active": False, "updated_at": "2026-11-25T00:00:00Z"}]}
    s.engine.apply(parse_object(page).events)
    s.worker.sync()
    assert s.kinds("meta") == before
    with s.engine.store.reader() as reader:
        (pid,) = reader.find_persons("zendesk_user_id", str(USER_ID))
        assert reader.load_persons([pid])[pid].facts.consent_for("ads") is None


def test_policy_immediately_erases_at_the_soft_deletion(tmp_path: Path) -> None:
    s = Setup(tmp_path, CONFIG + '\n[privacy]\nerase_deleted_users = "immediately"\n')
    s.member()
    s.engine.apply(parse_object(recorded_user_deleted()).events)
    s.worker.sync()
    assert "erase" in s.kinds("cio")
    with s.engine.store.reader() as reader:
        assert reader.find_persons("zendesk_user_id", str(USER_ID)) == []


def test_default_policy_waits_for_the_permanent_deletion(tmp_path: Path) -> None:
    s = Setup(tmp_path)
    s.member()
    s.engine.apply(parse_object(recorded_user_deleted()).events)
    s.worker.sync()
    assert "erase" not in s.kinds("cio")


def test_permanent_deletion_seen_through_the_deleted_users_api_erases(tmp_path: Path) -> None:
    from tactful.core.events import UserDeleted
    from tactful.testing.sim import ZendeskSimulator
    from tactful.zendesk.client import ZendeskClient
    from tactful.zendesk.deleted_users import permanent_deletions, permanently_deleted

    sim = ZendeskSimulator()
    ann = sim.create_user("Ann Lee", "ann@example.com")
    others = [sim.create_user(f"User {i}", f"u{i}@example.com") for i in range(3)]
    s = Setup(tmp_path)
    s.engine.apply([user(ann, emails=("ann@example.com",)), ticket(1, at(0), requester_id=ann)])
    s.worker.sync()
    assert s.kinds("meta") == ["audience_add"]
    base_url, stop = sim.serve()
    client = ZendeskClient(base_url, sim.email, sim.api_token, sleep=lambda s: None)
    try:
        for other in others:
            sim.delete_user(other)
            sim.permanently_delete_user(other)  # not known here: nothing to erase
        sim.delete_user(ann)
        s.engine.apply([UserDeleted("zendesk:envelope:d1", at(1), ann)])
        with s.engine.store.reader() as reader:
            assert permanent_deletions(client, reader, at(2)) == []  # soft: kept
        sim.permanently_delete_user(ann)
        assert sorted(u for u, _ in permanently_deleted(client, page_size=2)) == sorted(
            [*others, ann]
        )
        with s.engine.store.reader() as reader:
            events = permanent_deletions(client, reader, at(2))
        assert [(e.zendesk_user_id, e.permanent) for e in events] == [(ann, True)]
        s.engine.apply(events)
        s.worker.sync()
        assert "erase" in s.kinds("cio")
        with s.engine.store.reader() as reader:
            assert reader.find_persons("zendesk_user_id", str(ann)) == []
            assert permanent_deletions(client, reader, at(3)) == []
    finally:
        client.close()
        stop()


def test_serve_checks_the_deleted_users_api_and_erases(tmp_path: Path) -> None:
    """The fetcher of ``tactful serve`` lists deleted users (at start, then every
    ``[privacy] deleted_users_check``) and erases the permanently deleted."""
    import time

    from starlette.testclient import TestClient

    from tactful.core.events import UserDeleted
    from tactful.testing.sim import ZendeskSimulator
    from tactful.web.app import create_app
    from tactful.zendesk.client import ZendeskClient

    sim = ZendeskSimulator()
    ann = sim.create_user("Ann Lee", "ann@example.com")
    s = Setup(tmp_path)
    s.engine.apply([user(ann, emails=("ann@example.com",)), ticket(1, at(0), requester_id=ann)])
    sim.delete_user(ann)
    s.engine.apply([UserDeleted("zendesk:envelope:d1", at(1), ann)])
    sim.permanently_delete_user(ann)
    base_url, stop = sim.serve()
    client = ZendeskClient(base_url, sim.email, sim.api_token, sleep=lambda s: None)
    app = create_app(s.settings, s.engine, tick_seconds=0, zendesk=client, deliver_seconds=0)
    try:
        with TestClient(app):
            deadline = time.monotonic() + 30
            while True:
                with s.engine.store.reader() as reader:
                    if not reader.find_persons("zendesk_user_id", str(ann)):
                        break
                assert time.monotonic() < deadline, "never erased"
                time.sleep(0.05)
        assert sim.requests_to("/api/v2/deleted_users")
    finally:
        client.close()
        stop()
