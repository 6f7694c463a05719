"""Time that cannot be poisoned (issue 18 §4).

One signed webhook with ``updated_at`` in 2031 used to move the engine clock to 2031 for
good; ``POST /api/events`` moved it to 9999-12-31; every time-window segment emptied. Event
times later than the wall clock plus ``[engine] future_skew`` are refused at every edge
(webhook, API, import) with a clear error and counted; ``tactful clock repair`` mends a
store whose clock was pushed forward before the guard existed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tactful.cli.main import main
from tactful.config import settings_from_toml
from tactful.core import codec
from tactful.engine.engine import Engine, rules_from_settings
from tactful.engine.importer import import_files
from tactful.store.sqlite import open_store
from tactful.testing import new_store_url, ticket, user
from tactful.web.app import create_app
from tactful.zendesk.signing import sign

pytestmark = pytest.mark.store

SECRET = "dGVzdC13ZWJob29rLXNlY3JldA=="
TOKEN = "t0ken"
CONFIG = f"""
[zendesk]
webhook_secret = "{SECRET}"

[api]
token = "{TOKEN}"

[[segments]]
name = "recent"
when = "has_open_ticket and last_activity_at within 14d"
"""
NOW = datetime.now(UTC).replace(microsecond=0)
FUTURE = datetime(2031, 1, 1, tzinfo=UTC)


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_engine(tmp_path: Path, config: str = CONFIG) -> Engine:
    settings = settings_from_toml(config, environ={})
    return Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = settings_from_toml(CONFIG, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    with TestClient(create_app(settings, engine, tick_seconds=0)) as c:
        yield c


def signed(body: bytes) -> dict[str, str]:
    ts = stamp(datetime.now(UTC))
    return {
        "X-Zendesk-Webhook-Signature": sign(SECRET, ts, body),
        "X-Zendesk-Webhook-Signature-Timestamp": ts,
        "Content-Type": "application/json",
    }


def trigger(ticket_id: int, when: datetime) -> bytes:
    return orjson.dumps(
        {
            "ticket": {
                "id": ticket_id,
                "status": "Open",
                "priority": "Normal",
                "tags": "",
                "subject": "Rash",
                "via": "Web Form",
                "created_at": stamp(NOW - timedelta(hours=1)),
                "updated_at": stamp(when),
                "requester": {"id": 7, "email": "ann@example.com"},
            }
        }
    )


def clock_of(c: TestClient) -> datetime | None:
    return c.app.state.ctx.engine.clock()  # type: ignore[attr-defined,no-any-return]


def test_a_webhook_from_the_future_is_refused_and_counted(client: TestClient) -> None:
    ok = client.post("/webhooks/zendesk", content=trigger(1, NOW), headers=signed(trigger(1, NOW)))
    assert ok.status_code == 200, ok.text
    before = clock_of(client)
    body = trigger(2, FUTURE)
    r = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "event_in_future"
    assert r.json()["detail"][0]["at"] == "2031-01-01T00:00:00Z"
    assert clock_of(client) == before
    assert (
        'tactful_events_rejected_total{reason="event_in_future"} 1.0' in client.get("/metrics").text
    )
    person = client.get("/api/people/ann@example.com", headers={"Authorization": f"Bearer {TOKEN}"})
    assert person.json()["segments"]["recent"]["member"] is True


def test_the_events_api_refuses_9999(client: TestClient) -> None:
    def post(at: str) -> Any:
        event = {
            "type": "health",
            "person": {"email": "bob@example.com"},
            "health": "unsatisfied",
            "at": at,
            "id": "h1",
        }
        auth = {"Authorization": f"Bearer {TOKEN}"}
        return client.post("/api/events", json={"events": [event]}, headers=auth)

    r = post("2031-01-01T00:00:00Z")  # a valid time, but years ahead of the wall clock
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "event_in_future"
    r = post("9999-12-31T00:00:00Z")  # outside the times the API accepts at all (issue 19)
    assert r.status_code == 422, r.text
    assert clock_of(client) is None
    assert "event_in_future" in client.get("/metrics").text


def test_an_import_refuses_future_events_and_applies_the_rest(tmp_path: Path) -> None:
    engine = make_engine(tmp_path)
    page = {
        "tickets": [
            {
                "id": n,
                "status": "open",
                "requester_id": 7,
                "created_at": stamp(NOW - timedelta(hours=1)),
                "updated_at": stamp(when),
                "subject": "Rash",
            }
            for n, when in ((1, NOW), (2, FUTURE))
        ],
        "end_of_stream": True,
    }
    path = tmp_path / "tickets.json"
    path.write_text(json.dumps(page))
    summary = import_files(engine, [path])
    assert sum(summary.rejected.values()) == 1
    (reason,) = summary.rejected
    assert "future_skew" in reason
    clock = engine.clock()
    assert clock is not None and clock <= datetime.now(UTC) + timedelta(minutes=5)


def test_the_skew_is_configurable(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, CONFIG + '\n[engine]\nfuture_skew = "2d"\n')
    stats = engine.apply([ticket(1, NOW + timedelta(days=1), requester_id=7)])
    assert stats.rejected == []
    stats = engine.apply([ticket(2, NOW + timedelta(days=3), requester_id=7)])
    assert len(stats.rejected) == 1


def ann_is_recent(engine: Engine) -> bool:
    with engine.store.reader() as reader:
        (pid,) = reader.find_persons("email", "ann@example.com")
        membership = reader.load_persons([pid])[pid].memberships.get("recent")
    return membership is not None and membership.member


def test_clock_repair_mends_a_poisoned_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A store poisoned before the guard: its clock and log hold 2031."""
    url = new_store_url(tmp_path)
    settings = settings_from_toml(CONFIG, environ={})
    poisoned = Engine(
        dataclasses.replace(rules_from_settings(settings), future_skew=None), open_store(url)
    )
    poisoned.apply([user(7, NOW, emails=("ann@example.com",)), ticket(1, NOW, requester_id=7)])
    poisoned.apply([ticket(2, FUTURE, requester_id=8)])
    assert poisoned.clock() == FUTURE
    assert not ann_is_recent(poisoned)  # the window emptied
    config = tmp_path / "tactful.toml"
    config.write_text(f'[store]\nurl = "{url}"\n' + CONFIG)
    assert main(["--config", str(config), "clock", "repair", "--dry-run", "--json"]) == 0
    dry = json.loads(capsys.readouterr().out)
    assert dry["removed_events"] == [
        {"key": dry["removed_events"][0]["key"], "at": "2031-01-01T00:00:00Z"}
    ]
    assert poisoned.clock() == FUTURE  # a dry run changes nothing
    assert main(["--config", str(config), "clock", "repair", "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert codec.parse_time(done["clock_before"]) == FUTURE
    engine = make_engine(tmp_path)
    engine.store = open_store(url)
    clock = engine.clock()
    assert clock is not None and clock <= datetime.now(UTC) + timedelta(minutes=5)
    assert ann_is_recent(engine)  # back in the window
    with engine.store.reader() as reader:
        assert reader.find_persons("zendesk_user_id", "8") == []
