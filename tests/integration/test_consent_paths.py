"""Consent holds on every path (issue 18 §1).

A Zendesk user whose consent fields (``[consent] fields``) are false must not reach Meta or
an ESP, whether the user arrives through live webhooks (``user.created`` envelopes carry no
user fields), export files or ``tactful backfill``. Until a person's consent is known,
purposes governed by a Zendesk field count as not granted; a webhook that introduces a user
whose consent is not known waits for the user to be fetched through the API.

The differential test runs one simulated Zendesk history through the three paths and
compares persons, consent and the set of destination calls.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tactful.config import Settings, settings_from_toml
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.engine import Engine, rules_from_settings
from tactful.engine.importer import import_files
from tactful.store.sqlite import open_store
from tactful.testing import (
    RecordingDestination,
    at,
    destinations_toml,
    new_store_url,
    recording_destinations,
    ticket,
    user,
)
from tactful.testing.sim import WebhookSender, ZendeskSimulator
from tactful.web.app import create_app
from tactful.web.fetcher import pending_from_store
from tactful.zendesk.backfill import backfill
from tactful.zendesk.client import ZendeskClient

pytestmark = pytest.mark.store

SECRET = "dGVzdC13ZWJob29rLXNlY3JldA=="
CONFIG = f"""
[zendesk]
subdomain = "glowlab"
webhook_secret = "{SECRET}"

[consent]
fields = {{ ads = "marketing_consent_ads", email = "marketing_consent_email" }}

# Every path tells every change as it happened; with the default ("current"), imports and
# backfills tell old history as one net change per person (issue 17), by design.
[delivery]
history = "all"

[[segments]]
name = "suppress"
when = "has_open_ticket"
""" + destinations_toml("meta", "cio")
LATER = datetime(2026, 12, 1, tzinfo=UTC)


def recording() -> dict[str, RecordingDestination]:
    return recording_destinations("meta", "cio")


def calls(settings: Settings, engine: Engine) -> set[tuple[str, str, str, tuple[str, ...]]]:
    """Every item the destinations were sent: (destination, kind, name, emails)."""
    dests = recording()
    worker = DeliveryWorker(
        settings, engine.store, destinations=dests, clock=lambda: LATER, rng=lambda: 0.0
    )
    try:
        worker.sync()
    finally:
        worker.close()  # its lanes' connections too, not left to the garbage collector
    return {
        (name, i.kind, i.name, i.identifiers.emails)
        for name, dest in dests.items()
        for i in dest.delivered
    }


def new_engine(settings: Settings, directory: Path) -> Engine:
    directory.mkdir(parents=True, exist_ok=True)
    return Engine(rules_from_settings(settings), open_store(new_store_url(directory)))


def test_a_person_whose_consent_is_unknown_is_not_exported(tmp_path: Path) -> None:
    """Governed purposes count as not granted until the Zendesk field is known."""
    settings = settings_from_toml(CONFIG, environ={})
    engine = new_engine(settings, tmp_path)
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    assert calls(settings, engine) == set()
    stated = (("marketing_consent_ads", "true"), ("marketing_consent_email", "false"))
    engine.apply([user(1, at(1), emails=("ann@example.com",), fields=stated)])
    sent = calls(settings, engine)
    assert ("meta", "audience_add", "", ("ann@example.com",)) in sent
    assert not [c for c in sent if c[0] == "cio"]


# -- one Zendesk history, three paths -------------------------------------------------------
def story(sim: ZendeskSimulator) -> dict[str, int]:
    """Users with consent false, true, unset and changed, each with an open ticket."""
    no = {"marketing_consent_ads": False, "marketing_consent_email": False}
    yes = {"marketing_consent_ads": True, "marketing_consent_email": True}
    ann = sim.create_user("Ann Lee", "ann@example.com", user_fields=no)
    bob = sim.create_user("Bob Ray", "bob@example.com", user_fields=yes)
    cy = sim.create_user("Cy Ng", "cy@example.com")
    dee = sim.create_user("Dee Fox", "dee@example.com", user_fields=no)
    sim.advance(timedelta(minutes=5))
    for who in (ann, bob, cy, dee):
        sim.create_ticket(who, "Rash after the serum", tags=["irritation"])
        sim.advance(timedelta(minutes=3))
    sim.update_user(dee, user_fields={"marketing_consent_ads": True})
    sim.advance(timedelta(days=1))
    return {"ann": ann, "bob": bob, "cy": cy, "dee": dee}


def persons(engine: Engine, users: dict[str, int]) -> dict[str, Any]:
    """Per user: the person's identifiers and consent (None: not known)."""
    out: dict[str, Any] = {}
    with engine.store.reader() as reader:
        for name, user_id in users.items():
            pids = reader.find_persons("zendesk_user_id", str(user_id))
            assert len(pids) == 1, name
            facts = reader.load_persons(pids)[pids[0]].facts
            identifiers = sorted(reader.identifiers_of(pids)[pids[0]])
            out[name] = (identifiers, {p: facts.consent_for(p) for p in ("ads", "email")})
    return out


@pytest.fixture
def served() -> Iterator[tuple[ZendeskSimulator, dict[str, int], str]]:
    sim = ZendeskSimulator()
    users = story(sim)
    base_url, stop = sim.serve()
    try:
        yield sim, users, base_url
    finally:
        stop()


def via_webhooks(
    sim: ZendeskSimulator, base_url: str, settings: Settings, d: Path, users: dict[str, int]
) -> Engine:
    engine = new_engine(settings, d)
    client = ZendeskClient(base_url, sim.email, sim.api_token, sleep=lambda s: None)
    app = create_app(
        settings, engine, tick_seconds=0, zendesk=client, fetch_seconds=0.05, deliver_seconds=0
    )
    try:
        with TestClient(app) as c:
            sender = WebhookSender(
                "http://testserver/webhooks/zendesk", SECRET, sim=sim, mode="events", client=c
            )
            assert {d.state for d in sender.deliver_pending()} == {"delivered"}
            deadline = time.monotonic() + 30
            while not applied(engine, users.values()):
                assert time.monotonic() < deadline, "users were never fetched"
                time.sleep(0.05)
            assert pending_from_store(app.state.ctx)  # kept bodies, applied with their users
    finally:
        client.close()
    return engine


def applied(engine: Engine, user_ids: Any) -> bool:
    """Every user's consent is known and their ticket (kept with them) applied."""
    with engine.store.reader() as reader:
        for user_id in user_ids:
            rows = reader.load_persons(reader.find_persons("zendesk_user_id", str(user_id)))
            if not rows or any(
                r.facts.consent_for(p) is None or not r.state.get("has_open_ticket")
                for r in rows.values()
                for p in ("ads", "email")
            ):
                return False
    return True


def via_exports(base_url: str, sim: ZendeskSimulator, settings: Settings, d: Path) -> Engine:
    import httpx

    engine = new_engine(settings, d)
    files = []
    with httpx.Client(base_url=base_url, auth=sim.auth) as http:
        for name, url, after in (
            ("users", "/api/v2/incremental/users/cursor.json?start_time=0", "after_url"),
            ("tickets", "/api/v2/incremental/tickets/cursor.json?start_time=0", "after_url"),
            ("events", "/api/v2/incremental/ticket_events.json?start_time=0", "next_page"),
        ):
            n = 0
            while True:
                page = http.get(url).json()
                path = d / f"{name}-{n}.json"
                path.write_text(json.dumps(page))
                files.append(path)
                n += 1
                if page["end_of_stream"]:
                    break
                url = page[after]
    import_files(engine, files)
    return engine


def via_backfill(base_url: str, sim: ZendeskSimulator, settings: Settings, d: Path) -> Engine:
    engine = new_engine(settings, d)
    client = ZendeskClient(base_url, sim.email, sim.api_token, sleep=lambda s: None)
    try:
        backfill(engine, client)
    finally:
        client.close()
    return engine


def test_webhooks_exports_and_backfill_agree_on_persons_consent_and_calls(
    served: tuple[ZendeskSimulator, dict[str, int], str], tmp_path: Path
) -> None:
    sim, users, base_url = served
    settings = settings_from_toml(CONFIG, environ={})
    live = via_webhooks(sim, base_url, settings, tmp_path / "live", users)
    files = via_exports(base_url, sim, settings, tmp_path / "files")
    pulled = via_backfill(base_url, sim, settings, tmp_path / "backfill")

    expected = persons(files, users)
    assert expected["ann"][1] == {"ads": False, "email": False}
    assert expected["bob"][1] == {"ads": True, "email": True}
    assert expected["cy"][1] == {"ads": False, "email": False}  # unset (null): not given
    assert expected["dee"][1] == {"ads": True, "email": False}
    assert persons(live, users) == expected
    assert persons(pulled, users) == expected

    sent = calls(settings, files)
    audience = {c[3] for c in sent if c[0] == "meta" and c[1] == "audience_add"}
    assert audience == {("bob@example.com",), ("dee@example.com",)}
    assert {c[3] for c in sent if c[0] == "cio"} == {("bob@example.com",)}
    assert calls(settings, live) == sent
    assert calls(settings, pulled) == sent
    for engine in (live, files, pulled):  # their claim connections, not left to the collector
        engine.store.close()
