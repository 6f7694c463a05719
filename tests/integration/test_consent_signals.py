"""Consent reaches destinations as per-person signals (issue 18 §1), on a real SQLite store.

- Ad items carry the person's own stated consent, so Google's per-person ``adUserData`` /
  ``adPersonalization`` follow it instead of a constant.
- Withdrawing email consent sends each ESP of that purpose an ``unsubscribe`` item (the
  vendor's documented unsubscribe call), not just no more profile updates.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tactful.config import settings_from_toml
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import RecordingDestination, at, consent, new_store_url, ticket, user

pytestmark = pytest.mark.store

CONFIG = """
[[segments]]
name = "suppress"
when = "has_open_ticket"

[[destinations]]
name = "google"
type = "google_customer_match"
segment = "suppress"
customer_id = "1234567890"
user_list_id = "1"
developer_token = "d"
client_id = "c"
client_secret = "s"
refresh_token = "r"

[[destinations]]
name = "cio"
type = "customerio"
site_id = "s"
api_key = "k"

[[destinations]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/t"
secret = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="
"""


def setup(tmp_path: Path) -> tuple[Engine, DeliveryWorker, dict[str, RecordingDestination]]:
    settings = settings_from_toml(CONFIG, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    esp_kinds = ("profile", "event", "erase", "unsubscribe")
    dests = {
        "google": RecordingDestination(
            "google", "google_customer_match", purpose="ads", kinds=("audience_add",)
        ),
        "cio": RecordingDestination("cio", "customerio", purpose="email", kinds=esp_kinds),
        "hook": RecordingDestination("hook", "webhook", kinds=("event",)),
    }
    worker = DeliveryWorker(settings, engine.store, destinations=dests, rng=lambda: 0.0)
    return engine, worker, dests


def test_ad_items_carry_each_persons_stated_consent(tmp_path: Path) -> None:
    engine, worker, dests = setup(tmp_path)
    engine.apply(
        [
            user(1, emails=("ann@example.com",)),
            consent(at(-1), "ads", True, email="ann@example.com"),
            ticket(1, at(0), "open"),
            user(2, emails=("bo@example.com",)),  # consent never stated: allowed by default
            ticket(2, at(0), "open", requester_id=2),
        ]
    )
    worker.sync()
    by_email = {i.identifiers.emails[0]: i for i in dests["google"].delivered}
    assert by_email["ann@example.com"].consent == {"ads": True}
    assert by_email["bo@example.com"].consent == {}


def test_withdrawing_email_consent_unsubscribes_at_each_esp(tmp_path: Path) -> None:
    engine, worker, dests = setup(tmp_path)
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    worker.sync()
    assert dests["cio"].delivered
    before = len(dests["cio"].delivered)
    engine.apply([consent(at(1), "email", False, email="ann@example.com")])
    report = worker.sync()
    sent = dests["cio"].delivered[before:]
    assert [i.kind for i in sent] == ["unsubscribe"]
    assert sent[0].identifiers.emails == ("ann@example.com",)
    assert report.sent >= 1
    # Ads and analytics destinations get nothing for an email-consent change.
    assert all(i.kind != "unsubscribe" for i in dests["hook"].delivered)
    # Later state changes no longer reach the ESP.
    engine.apply([ticket(1, at(2), "solved")])
    worker.sync()
    assert [i.kind for i in dests["cio"].delivered[before:]] == ["unsubscribe"]


def test_granting_email_consent_sends_no_unsubscribe(tmp_path: Path) -> None:
    engine, worker, dests = setup(tmp_path)
    engine.apply(
        [
            user(1, emails=("ann@example.com",)),
            consent(at(0), "email", True, email="ann@example.com"),
            ticket(1, at(0), "open"),
        ]
    )
    worker.sync()
    assert dests["cio"].delivered
    assert all(i.kind != "unsubscribe" for i in dests["cio"].sent)


def test_no_unsubscribe_for_someone_the_esp_never_received(tmp_path: Path) -> None:
    """The unsubscribe names the address only to an ESP that already holds it: a person whose
    email consent is refused before anything was sent is not exported just to opt out."""
    engine, worker, dests = setup(tmp_path)
    engine.apply(
        [
            user(1, emails=("ann@example.com",)),
            consent(at(-2), "email", True, email="ann@example.com"),
        ]
    )
    engine.apply([consent(at(-1), "email", False, email="ann@example.com")])
    report = worker.sync()
    assert all(i.kind != "unsubscribe" for i in dests["cio"].sent)
    assert dests["cio"].sent == [] and report.skipped >= 1
