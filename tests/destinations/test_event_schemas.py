"""Every event Tactful sends out has a JSON Schema (``tactful.destinations.event_schemas``,
copied to ``docs/schemas/``), and every webhook body emitted end to end validates against it
(issue 22, "one payload vocabulary")."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from tactful.config import settings_from_toml
from tactful.core.events import Identifier, PersonErased
from tactful.delivery.worker import DeliveryWorker
from tactful.destinations.event_schemas import SCHEMAS
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import at, consent, new_store_url, ticket, user
from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sim.server import run_in_thread

DOCS = Path(__file__).resolve().parents[2] / "docs" / "schemas"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"  # the spec's example secret


def test_the_docs_hold_the_same_schemas() -> None:
    on_disk = {p.stem: json.loads(p.read_text()) for p in DOCS.glob("*.json")}
    assert on_disk == SCHEMAS


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_each_schema_is_a_valid_draft_2020_12_schema(name: str) -> None:
    jsonschema_rs.Draft202012Validator(SCHEMAS[name])  # raises on an invalid schema


def test_a_body_with_the_old_identifier_names_is_refused() -> None:
    validator = jsonschema_rs.Draft202012Validator(SCHEMAS["person_erased"])
    body: dict[str, Any] = {
        "type": "person_erased",
        "timestamp": "2026-12-01T00:00:00.000Z",
        "data": {"person_id": "p_1", "identifiers": {}, "occurred_at": "2026-12-01T00:00:00Z"},
    }
    assert validator.is_valid(body)
    body["data"]["identifiers"] = {"emails": ["a@example.com"]}
    assert not validator.is_valid(body)
    changed = jsonschema_rs.Draft202012Validator(SCHEMAS["support_state_changed"])
    body = {**body, "type": "support_state_changed"}
    body["data"] = {**body["data"], "identifiers": {"emails": ["a@example.com"]}}
    assert not changed.is_valid(body)


def test_every_emitted_webhook_body_validates(tmp_path: Path) -> None:
    receiver = FakeWebhookReceiver(SECRET)
    base_url, stop = run_in_thread(receiver.app)
    config = f"""
[[segments]]
name = "open_issue"
when = "has_open_ticket"

[[destinations]]
name = "hook"
type = "webhook"
url = "{base_url}/hooks"
secret = "{SECRET}"
"""
    settings = settings_from_toml(config, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    worker = DeliveryWorker(settings, engine.store, rng=lambda: 0.0)
    try:
        engine.apply(
            [
                user(1, emails=("ann@example.com",), phones=("+14155550100",)),
                consent(at(-1), "analytics", True, email="ann@example.com"),
                ticket(1, at(0), "open"),
                user(2, emails=("bo@example.com",)),
                ticket(2, at(0), "open", requester_id=2),
            ]
        )
        engine.apply([ticket(1, at(1), "solved")])
        engine.apply([PersonErased("erase-1", at(5), Identifier("email", "bo@example.com"), "dpo")])
        worker.sync()
        bodies = [d.payload for d in receiver.deliveries]
    finally:
        worker.close()
        stop()
        engine.store.close()
    assert {b["type"] for b in bodies} == set(SCHEMAS)  # every type was emitted
    for body in bodies:
        errors = list(jsonschema_rs.Draft202012Validator(SCHEMAS[body["type"]]).iter_errors(body))
        assert not errors, (body, [str(e) for e in errors])
    identified = [b["data"]["identifiers"] for b in bodies if b["data"]["identifiers"]]
    assert identified and all("email" in ids for ids in identified)  # the API's names


def test_the_schemas_are_served_at_slash_schemas(tmp_path: Path) -> None:
    """Issue 22: every outgoing event's JSON Schema at ``/schemas/<type>.json``."""
    from starlette.testclient import TestClient

    from tactful.web.app import create_app

    settings = settings_from_toml('[[segments]]\nname = "s"\nwhen = "true"\n', environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    app = create_app(settings, engine, tick_seconds=0)
    with TestClient(app, base_url="http://127.0.0.1:8000") as c:  # loopback: no token needed
        index = c.get("/schemas/")
        assert index.status_code == 200
        assert index.json()["schemas"] == [f"/schemas/{t}.json" for t in sorted(SCHEMAS)]
        for name, schema in SCHEMAS.items():
            r = c.get(f"/schemas/{name}.json")
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/schema+json")
            assert r.json() == schema
        assert c.get("/schemas/nope.json").status_code == 404
        assert c.get("/schemas/support_state_changed").status_code == 404
