"""CSAT survey responses and legacy ratings fold into one ``csat_score``; brands reach rules.

Both survive a replay of the event log (the store keeps ``brand_id`` on the ticket record,
and the survey response is a ``rating_given`` event like a legacy rating)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tactful.engine.engine import Engine
from tactful.testing import at, harness, rating, ticket, user
from tactful.zendesk.parse import parse_object
from tests.integration.test_engine_scenarios import person

pytestmark = pytest.mark.store

CONFIG = """
[[segments]]
name = "glowlab"
when = "brand_id == 360001"

[[segments]]
name = "ever_lumen"
when = '"360002" in brand_ids'

[[segments]]
name = "recovery"
when = "csat_score <= 2"
"""


def survey(rid: str, rating_value: int, updated_at: str, points: int = 5) -> Any:
    answer = {
        "type": "rating_scale",
        "rating": rating_value,
        "question": {
            "id": "q1",
            "alias": "rating_scale",
            "type": "rating_scale",
            "options": [{"id": f"o{i}", "rating": i} for i in range(1, points + 1)],
        },
        "created_at": updated_at,
        "updated_at": updated_at,
    }
    return {
        "survey_response": {
            "id": rid,
            "answers": [answer],
            "responder_id": 1,
            "subject_zrns": ["zen:ticket:1"],
            "survey": {"id": "s1", "state": "enabled", "version": 1},
        }
    }


def iso(hours: float) -> str:
    return at(hours).isoformat().replace("+00:00", "Z")


def segments(found: dict[str, Any]) -> set[str]:
    return {name for name, m in found["segments"].items() if m["member"]}


def test_survey_response_sets_csat_and_latest_wins_across_sources() -> None:
    h = harness(CONFIG)
    h.engine.apply([user(1, emails=("a@example.com",)), ticket(1, at(0), "solved")])
    h.engine.apply(parse_object(survey("01SURVEY", 4, iso(2))).events)
    state = person(h.engine)["state"]
    assert state["csat_score"] == 4
    assert state["csat_at"] == iso(2)
    h.engine.apply([rating(7, at(3), "bad")])  # legacy rating, later: it wins
    assert person(h.engine)["state"]["csat_score"] == 1
    h.engine.apply(parse_object(survey("01SURVEY2", 3, iso(4), points=3)).events)
    state = person(h.engine)["state"]
    assert (state["csat_score"], state["csat_at"]) == (5, iso(4))  # top of a 3-point scale
    h.engine.apply(parse_object(survey("01OLD", 1, iso(1))).events)  # older: loses
    assert person(h.engine)["state"]["csat_score"] == 5
    before = person(h.engine)
    report = h.engine.replay()
    assert report.changed == []
    after = person(h.engine)  # history differs: a replay applies the late older one in order
    assert (after["state"], after["segments"]) == (before["state"], before["segments"])


def test_brand_reaches_rules_and_survives_replay() -> None:
    h = harness(CONFIG)
    t1 = ticket(1, at(0), "solved")
    h.engine.apply([user(1, emails=("a@example.com",)), _branded(t1, 360002)])
    found = person(h.engine)
    assert found["state"]["brand_id"] == 360002
    assert found["state"]["brand_ids"] == ["360002"]
    assert segments(found) == {"ever_lumen"}
    h.engine.apply([_branded(ticket(2, at(1), "open"), 360001)])
    found = person(h.engine)
    assert found["state"]["brand_id"] == 360001  # the most recently created ticket's
    assert found["state"]["brand_ids"] == ["360001", "360002"]
    assert segments(found) == {"glowlab", "ever_lumen"}
    report = h.engine.replay()
    assert report.changed == []
    assert person(h.engine) == found


def _branded(version: Any, brand_id: int) -> Any:
    from dataclasses import replace

    return replace(version, key=f"{version.key}:brand{brand_id}", brand_id=brand_id)


def test_survey_response_webhook_and_brand_envelope_over_http(tmp_path: Any) -> None:
    """The webhook shapes: a signed ``{"survey_response": …}`` body (the API object, as a
    relay posts it) and a ticket event envelope whose ``detail`` carries ``brand_id``."""
    from datetime import UTC, datetime, timedelta

    from starlette.testclient import TestClient

    from tactful.config import settings_from_toml
    from tactful.engine.engine import rules_from_settings
    from tactful.store.sqlite import open_store
    from tactful.testing import new_store_url
    from tactful.web.app import create_app
    from tests.integration.test_web import CONFIG as WEB_CONFIG
    from tests.integration.test_web import auth, signed, trigger_body

    settings = settings_from_toml(WEB_CONFIG + CONFIG, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    with TestClient(create_app(settings, engine, tick_seconds=0)) as client:

        def post(doc: Any) -> Any:
            body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
            r = client.post("/webhooks/zendesk", content=body, headers=signed(body))
            assert r.status_code == 200, r.text
            return r.json()

        now = datetime.now(UTC).replace(microsecond=0)
        stamp = (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")
        post(trigger_body(ticket_id=42, status="Solved"))
        doc = survey("01WEBHOOK", 1, stamp)
        doc["survey_response"] |= {"responder_id": 7, "subject_zrns": ["zen:ticket:42"]}
        assert post(doc)["events"] == 1
        envelope = {
            "type": "zen:event-type:ticket.brand_changed",
            "id": "evt-1",
            "time": now.isoformat().replace("+00:00", "Z"),
            "detail": {
                "id": "43",
                "status": "OPEN",
                "requester_id": "7",
                "brand_id": "360001",
                "created_at": now.isoformat().replace("+00:00", "Z"),
                "updated_at": now.isoformat().replace("+00:00", "Z"),
            },
            "event": {"current": "360001", "previous": "360002"},
        }
        assert post(envelope)["events"] == 1
        found = client.get("/api/people/ann@example.com", headers=auth()).json()
    assert found["state"]["csat_score"] == 1 and found["state"]["csat_at"] == stamp
    assert (found["state"]["brand_id"], found["state"]["brand_ids"]) == (360001, ["360001"])
    assert found["segments"]["recovery"]["member"] and found["segments"]["glowlab"]["member"]
