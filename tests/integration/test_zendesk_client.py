"""The Zendesk API client: retry decisions, the rate limiter, HTTP behaviour against
``httpx.MockTransport``, ``zendesk install`` against an in-memory webhooks/triggers API, and
the ``tactful zendesk`` commands."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tactful import __version__
from tactful.cli.main import main
from tactful.config import settings_from_mapping
from tactful.core.events import TicketVersion
from tactful.zendesk.client import (
    Checkpoint,
    SlidingWindowLimiter,
    ZendeskAuthError,
    ZendeskClient,
    ZendeskConfigError,
    ZendeskError,
    api_token_auth,
    parse_retry_after,
    retry_decision,
)
from tactful.zendesk.install import (
    RECOMMENDED_TRIGGER_BODY,
    TRIGGER_TITLE,
    WEBHOOK_NAME,
    InstallError,
    install,
)
from tactful.zendesk.parse import parse_object

EMAIL = "agent@acme.example"
TOKEN = "s3cr3t-token"
BASE = "https://acme.zendesk.com"
NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


Handler = Callable[[httpx.Request], httpx.Response]


def client_for(handler: Handler, time: FakeTime | None = None, **kwargs: Any) -> ZendeskClient:
    time = time or FakeTime()
    return ZendeskClient(
        BASE,
        EMAIL,
        TOKEN,
        transport=httpx.MockTransport(handler),
        sleep=time.sleep,
        clock=time.clock,
        rand=lambda: 1.0,  # the full backoff step (equal jitter takes off up to half)
        wall_clock=lambda: NOW,
        **kwargs,
    )


def sequence(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(item, Exception):
            raise item
        return item

    return handler, seen


def ok(body: Any) -> httpx.Response:
    return httpx.Response(200, content=orjson.dumps(body))


# --------------------------------------------------------------------------- pure decisions


def test_retry_decision_429_waits_retry_after() -> None:
    assert retry_decision(429, 1, 30.0) == 30.0
    assert retry_decision(429, 5, 0.0) == 0.0
    assert retry_decision(429, 1, None) == 1.0  # no header: back off


def test_retry_decision_5xx_and_network_errors_back_off_exponentially() -> None:
    assert [retry_decision(503, n, None) for n in (1, 2, 3, 4)] == [1.0, 2.0, 4.0, 8.0]
    assert retry_decision(None, 2, None) == 2.0  # timeout / connection error
    assert retry_decision(500, 1, None, jitter=0.0) == 0.5  # equal jitter: half to all
    assert retry_decision(502, 7, None, max_attempts=10) == 60.0  # capped
    assert retry_decision(503, 1, 10.0) == 10.0  # a longer Retry-After on 503 is honoured


def test_retry_decision_gives_up() -> None:
    for status in (400, 401, 403, 404, 422):
        assert retry_decision(status, 1, None) is None
    assert retry_decision(409, 1, None) == 1.0  # a conflicting update: try again
    assert retry_decision(503, 8, None, max_attempts=8) is None
    assert retry_decision(429, 8, 5.0, max_attempts=8) is None
    assert retry_decision(429, 1, 7200.0) is None  # a Retry-After of hours is an outage


def test_parse_retry_after_seconds_and_http_dates() -> None:
    assert parse_retry_after("30", NOW) == 30.0
    assert parse_retry_after(" 1.5 ", NOW) == 1.5
    later = format_datetime(NOW + timedelta(seconds=45), usegmt=True)
    assert parse_retry_after(later, NOW) == 45.0
    earlier = format_datetime(NOW - timedelta(seconds=45), usegmt=True)
    assert parse_retry_after(earlier, NOW) == 0.0
    assert parse_retry_after("-3", NOW) == 0.0
    for bad in (None, "", "soon", "nan"):
        assert parse_retry_after(bad, NOW) is None


# --------------------------------------------------------------------------- the limiter


def test_limiter_lets_ten_through_and_sleeps_the_eleventh_until_the_window_frees() -> None:
    time = FakeTime()
    limiter = SlidingWindowLimiter(10, 60.0, clock=time.clock, sleep=time.sleep)
    for _ in range(10):
        assert limiter.acquire() == 0.0
        time.now += 1.0  # requests take a second each
    assert time.sleeps == []
    assert limiter.acquire() == pytest.approx(50.0)  # first slot was taken at t=0, now t=10
    assert time.now == pytest.approx(60.0)
    assert limiter.acquire() == pytest.approx(1.0)  # the second slot frees at t=61
    time.now += 120
    assert limiter.acquire() == 0.0  # an idle window: no waiting at all


def test_limiter_with_a_frozen_clock_waits_the_whole_window() -> None:
    sleeps: list[float] = []
    limiter = SlidingWindowLimiter(10, 60.0, clock=lambda: 5.0, sleep=sleeps.append)
    for _ in range(10):
        limiter.acquire()
    limiter.acquire()
    assert sleeps == [60.0]


# --------------------------------------------------------------------------- HTTP


def test_basic_auth_header_and_user_agent_are_exact() -> None:
    handler, seen = sequence(ok({"user": {"id": 7}}))
    client = client_for(handler)
    assert client.get_user(7) == {"id": 7}
    request = seen[0]
    expected = "Basic " + base64.b64encode(f"{EMAIL}/token:{TOKEN}".encode()).decode()
    assert request.headers["Authorization"] == expected == api_token_auth(EMAIL, TOKEN)
    assert request.headers["User-Agent"] == f"tactful/{__version__}"
    assert str(request.url) == f"{BASE}/api/v2/users/7.json"


def test_429_with_retry_after_is_honoured() -> None:
    handler, _ = sequence(
        httpx.Response(429, headers={"Retry-After": "7"}), ok({"user": {"id": 1}})
    )
    time = FakeTime()
    client = client_for(handler, time)
    assert client.get_user(1) == {"id": 1}
    assert time.sleeps == [7.0]
    assert client.stats.throttled == 1 and client.stats.requests == 2


def test_429_with_an_http_date() -> None:
    when = format_datetime(NOW + timedelta(seconds=12), usegmt=True)
    handler, _ = sequence(httpx.Response(429, headers={"Retry-After": when}), ok({"user": {}}))
    time = FakeTime()
    client_for(handler, time).get_user(1)
    assert time.sleeps == [12.0]


def test_503_backs_off_then_succeeds() -> None:
    handler, seen = sequence(httpx.Response(503), httpx.Response(503), ok({"user": {"id": 1}}))
    time = FakeTime()
    assert client_for(handler, time).get_user(1) == {"id": 1}
    assert time.sleeps == [1.0, 2.0] and len(seen) == 3


def test_timeouts_and_connection_errors_are_retried() -> None:
    handler, seen = sequence(
        httpx.ReadTimeout("slow"), httpx.ConnectError("refused"), ok({"user": {"id": 2}})
    )
    assert client_for(handler).get_user(2) == {"id": 2}
    assert len(seen) == 3


def test_gives_up_with_a_clear_error_naming_the_endpoint_not_the_ids() -> None:
    handler, seen = sequence(httpx.Response(503))
    time = FakeTime()
    with pytest.raises(ZendeskError) as info:
        client_for(handler, time, max_attempts=4).get_user(123456789)
    message = str(info.value)
    assert message.startswith(
        "Zendesk API GET /api/v2/users/{id}.json returned HTTP 503 after 4 attempts"
    )
    assert "123456789" not in message and TOKEN not in message and EMAIL not in message
    assert len(seen) == 4 and time.sleeps == [1.0, 2.0, 4.0]
    assert info.value.status == 503


def test_network_failure_message() -> None:
    handler, _ = sequence(httpx.ConnectError("[Errno 111] Connection refused"))
    with pytest.raises(ZendeskError, match=r"could not connect .*check the network"):
        client_for(handler, max_attempts=2).get_user(1)


@pytest.mark.parametrize(
    ("status", "advice"),
    [
        (401, "check [zendesk] email and api_token"),
        (403, "lacks permission"),
    ],
)
def test_401_and_403_fail_at_once(status: int, advice: str) -> None:
    handler, seen = sequence(httpx.Response(status, content=b'{"error": "Unauthorized"}'))
    time = FakeTime()
    with pytest.raises(ZendeskAuthError) as info:
        list(client_for(handler, time).iter_pages("tickets", Checkpoint.beginning()))
    assert advice in str(info.value)
    assert f"GET /api/v2/incremental/tickets/cursor.json returned HTTP {status}" in str(info.value)
    assert len(seen) == 1 and time.sleeps == []
    assert TOKEN not in str(info.value)


def test_404_user_is_none_and_422_says_why() -> None:
    handler, _ = sequence(httpx.Response(404, content=b'{"error": "RecordNotFound"}'))
    assert client_for(handler).get_user(5) is None
    body = b'{"error": "RecordInvalid", "description": "Record validation errors"}'
    handler, _ = sequence(httpx.Response(422, content=body))
    with pytest.raises(ZendeskError, match=r"HTTP 422 \(RecordInvalid: Record validation"):
        client_for(handler).create_trigger({"title": "x"})


def test_a_200_that_is_not_json_is_retried() -> None:
    handler, seen = sequence(httpx.Response(200, content=b"<html>"), ok({"user": {"id": 3}}))
    assert client_for(handler).get_user(3) == {"id": 3}
    assert len(seen) == 2


def test_only_incremental_endpoints_use_the_ten_a_minute_budget() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v2/users/"):
            return ok({"user": {"id": 1}})
        return ok({"tickets": [], "after_cursor": "c", "end_of_stream": True})

    time = FakeTime()
    client = client_for(handler, time)
    for _ in range(30):
        client.get_user(1)
    assert time.sleeps == []
    for _ in range(10):
        list(client.iter_pages("tickets", Checkpoint.beginning()))
    assert time.sleeps == []
    list(client.iter_pages("tickets", Checkpoint.beginning()))
    assert time.sleeps == [60.0]
    assert client.stats.waited == 60.0


# --------------------------------------------------------------------------- export paging


def test_cursor_export_pages_follow_after_cursor_until_end_of_stream() -> None:
    pages = [
        {"users": [{"id": 1}], "after_cursor": "A", "end_of_stream": False},
        {"users": [{"id": 2}], "after_cursor": "B", "end_of_stream": True},
    ]
    handler, seen = sequence(ok(pages[0]), ok(pages[1]))
    got = list(client_for(handler, per_page=500).iter_pages("users", Checkpoint.beginning()))
    assert [dict(r.url.params) for r in seen] == [
        {"start_time": "0", "per_page": "500"},
        {"cursor": "A", "per_page": "500"},
    ]
    assert seen[0].url.path == "/api/v2/incremental/users/cursor.json"
    assert [(p.checkpoint, p.end_of_stream, p.records) for p in got] == [
        (Checkpoint(cursor="A"), False, 1),
        (Checkpoint(cursor="B"), True, 1),
    ]
    assert got[0].raw == orjson.dumps(pages[0])


def test_time_based_ticket_events_continue_at_end_time() -> None:
    handler, seen = sequence(
        ok({"ticket_events": [{}], "end_time": 200, "end_of_stream": False, "count": 1}),
        ok({"ticket_events": [], "end_time": 300, "end_of_stream": True, "count": 0}),
    )
    got = list(client_for(handler).iter_pages("ticket_events", Checkpoint(start_time=100)))
    comments = {"include": "comment_events"}  # the comments' text (issue 25)
    assert [dict(r.url.params) for r in seen] == [
        {"start_time": "100", **comments},
        {"start_time": "200", **comments},
    ]
    assert seen[0].url.path == "/api/v2/incremental/ticket_events.json"
    assert got[-1].checkpoint == Checkpoint(start_time=300) and got[-1].end_of_stream


def test_time_based_export_that_does_not_advance_is_an_error() -> None:
    handler, _ = sequence(ok({"ticket_events": [{}], "end_time": 100, "end_of_stream": False}))
    with pytest.raises(ZendeskError, match="end_time does not advance"):
        list(client_for(handler).iter_pages("ticket_events", Checkpoint(start_time=100)))


def test_satisfaction_ratings_use_cursor_pagination() -> None:
    handler, seen = sequence(
        ok({"satisfaction_ratings": [{}], "meta": {"has_more": True, "after_cursor": "X"}}),
        ok({"satisfaction_ratings": [{}], "meta": {"has_more": False, "after_cursor": "Y"}}),
    )
    got = list(client_for(handler).iter_pages("satisfaction_ratings", Checkpoint.beginning()))
    assert seen[0].url.path == "/api/v2/satisfaction_ratings"
    assert [dict(r.url.params) for r in seen] == [
        {"page[size]": "100"},
        {"page[size]": "100", "page[after]": "X"},
    ]
    assert got[-1].checkpoint == Checkpoint(cursor="Y") and got[-1].end_of_stream


def test_checkpoint_text_round_trip() -> None:
    for cp in (Checkpoint(cursor="MTU4|x=="), Checkpoint(start_time=1785755553)):
        assert Checkpoint.from_text(cp.to_text()) == cp
    assert Checkpoint.beginning().to_text() == '{"start_time":0}'
    for bad in ("", "xyz", "{}", '{"start_time": "1"}'):
        with pytest.raises(ValueError):
            Checkpoint.from_text(bad)


# --------------------------------------------------------------------------- write-back


def test_user_tags_and_fields() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path.endswith("/tags"):
            return ok({"tags": ["vip", "high_value"]})
        return ok({"user": {"id": 9, "user_fields": {"value_score": "4"}}})

    client = client_for(handler)
    assert client.add_user_tags(9, ["high_value"]) == ["vip", "high_value"]
    assert client.remove_user_tags(9, ["churn_risk"]) == ["vip", "high_value"]
    user = client.update_user_fields(9, {"value_score": "4"})
    assert user["user_fields"] == {"value_score": "4"}
    assert [(r.method, r.url.path, json.loads(r.content)) for r in seen] == [
        ("PUT", "/api/v2/users/9/tags", {"tags": ["high_value"]}),
        ("DELETE", "/api/v2/users/9/tags", {"tags": ["churn_risk"]}),
        ("PUT", "/api/v2/users/9", {"user": {"user_fields": {"value_score": "4"}}}),
    ]
    assert all(r.headers["Content-Type"] == "application/json" for r in seen)


def test_write_back_is_retried_on_429() -> None:
    handler, seen = sequence(httpx.Response(429, headers={"Retry-After": "2"}), ok({"tags": ["x"]}))
    time = FakeTime()
    assert client_for(handler, time).add_user_tags(1, ["x"]) == ["x"]
    assert time.sleeps == [2.0] and len(seen) == 2


def test_from_settings_lists_what_is_missing() -> None:
    settings = settings_from_mapping({"zendesk": {"subdomain": "acme"}}, environ={})
    with pytest.raises(ZendeskConfigError, match=r"missing email, api_token"):
        ZendeskClient.from_settings(settings.zendesk)
    with pytest.raises(ZendeskConfigError, match=r"missing subdomain \(or base_url\), email"):
        ZendeskClient.from_settings(settings_from_mapping({}, environ={}).zendesk)
    settings = settings_from_mapping(
        {
            "zendesk": {
                "base_url": "http://127.0.0.1:9999",
                "email": EMAIL,
                "api_token": "env:ZD_TOKEN",
            }
        },
        environ={"ZD_TOKEN": TOKEN},
    )
    with ZendeskClient.from_settings(settings.zendesk) as client:
        assert client.base_url == "http://127.0.0.1:9999"


# --------------------------------------------------------------------------- install


class FakeAdmin:
    """Webhooks (with signing secrets) and triggers, as the Zendesk API keeps them."""

    def __init__(self) -> None:
        self.webhooks: dict[str, dict[str, Any]] = {}
        self.triggers: dict[int, dict[str, Any]] = {}
        self.secrets: dict[str, str] = {}
        self.calls: list[tuple[str, str]] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        method, path = request.method, request.url.path
        self.calls.append((method, path))
        body = json.loads(request.content) if request.content else {}
        if path == "/api/v2/webhooks" and method == "GET":
            needle = request.url.params.get("filter[name_contains]", "")
            found = [w for w in self.webhooks.values() if needle in w["name"]]
            return ok({"webhooks": found, "meta": {"has_more": False}, "links": {}})
        if path == "/api/v2/webhooks" and method == "POST":
            wid = f"01HWEBHOOK{len(self.webhooks):016d}"
            self.webhooks[wid] = {"id": wid, **body["webhook"]}
            self.secrets[wid] = f"secret-{wid[-4:]}"
            return httpx.Response(201, content=orjson.dumps({"webhook": self.webhooks[wid]}))
        if path.startswith("/api/v2/webhooks/") and path.endswith("/signing_secret"):
            wid = path.split("/")[4]
            secret = {"algorithm": "sha256", "secret": self.secrets[wid]}
            return ok({"signing_secret": secret})
        if path.startswith("/api/v2/webhooks/") and method == "PUT":
            wid = path.split("/")[4]
            self.webhooks[wid].update(body["webhook"])
            return httpx.Response(204)
        if path == "/api/v2/triggers" and method == "GET":
            items = list(self.triggers.values())
            return ok({"triggers": items, "meta": {"has_more": False}})
        if path == "/api/v2/triggers" and method == "POST":
            tid = 900 + len(self.triggers)
            self.triggers[tid] = {"id": tid, **body["trigger"]}
            return httpx.Response(201, content=orjson.dumps({"trigger": self.triggers[tid]}))
        if path.startswith("/api/v2/triggers/") and method == "PUT":
            tid = int(path.rsplit("/", 1)[1])
            self.triggers[tid].update(body["trigger"])
            return ok({"trigger": self.triggers[tid]})
        return httpx.Response(404)

    def client(self) -> ZendeskClient:
        return client_for(self.handler)


def test_install_creates_webhook_and_trigger_then_is_idempotent() -> None:
    admin = FakeAdmin()
    result = install(admin.client(), "https://tactful.acme.example/")
    assert (result.webhook, result.trigger) == ("created", "created")
    assert result.endpoint == "https://tactful.acme.example/webhooks/zendesk"
    (hook,) = admin.webhooks.values()
    assert hook["name"] == WEBHOOK_NAME and hook["endpoint"] == result.endpoint
    assert (hook["http_method"], hook["request_format"], hook["status"]) == (
        "POST",
        "json",
        "active",
    )
    assert hook["subscriptions"] == ["conditional_ticket_events"]
    assert result.secret == admin.secrets[hook["id"]]
    (trigger,) = admin.triggers.values()
    assert trigger["title"] == TRIGGER_TITLE and trigger["active"] is True
    assert trigger["conditions"] == {
        "all": [],
        "any": [
            {"field": "update_type", "operator": "is", "value": "Create"},
            {"field": "update_type", "operator": "is", "value": "Change"},
        ],
    }
    assert trigger["actions"] == [
        {"field": "notification_webhook", "value": [hook["id"], RECOMMENDED_TRIGGER_BODY]}
    ]

    admin.calls.clear()
    again = install(admin.client(), "https://tactful.acme.example")
    assert (again.webhook, again.trigger) == ("unchanged", "unchanged")
    assert again.secret == result.secret
    assert all(method == "GET" for method, _ in admin.calls)

    moved = install(admin.client(), "https://new.acme.example")
    assert (moved.webhook, moved.trigger) == ("updated", "unchanged")
    assert hook["endpoint"] == "https://new.acme.example/webhooks/zendesk"
    trigger["actions"][0]["value"][1] = '{"ticket": {"id": {{ticket.id}}}}'  # edited by hand
    assert install(admin.client(), "https://new.acme.example").trigger == "updated"
    assert trigger["actions"][0]["value"][1] == RECOMMENDED_TRIGGER_BODY
    assert len(admin.webhooks) == 1 and len(admin.triggers) == 1


def test_install_refuses_a_webhook_subscribed_to_events() -> None:
    admin = FakeAdmin()
    admin.webhooks["01X"] = {
        "id": "01X",
        "name": WEBHOOK_NAME,
        "endpoint": "https://x.example/webhooks/zendesk",
        "subscriptions": ["zen:event-type:user.created"],
    }
    with pytest.raises(InstallError, match="subscribed to Zendesk events"):
        install(admin.client(), "https://x.example")


def test_recommended_body_rendered_by_zendesk_parses_to_a_ticket_version() -> None:
    rendered = (
        RECOMMENDED_TRIGGER_BODY.replace("{{ticket.id}}", "4242")
        .replace("{{ticket.status}}", "Open")
        .replace("{{ticket.priority}}", "-")
        .replace("{{ticket.tags}}", "refund vip")
        .replace("{{ticket.title}}", "Where is my refund?")
        .replace("{{ticket.via}}", "Web Form")
        .replace("{{ticket.created_at_with_timestamp}}", "2026-11-22T10:32Z")
        .replace("{{ticket.updated_at_with_timestamp}}", "2026-11-22T10:35Z")
        .replace("{{ticket.requester.id}}", "77")
        .replace("{{ticket.requester.email}}", "ann@example.com")
        .replace("{{ticket.requester.phone}}", "")
        .replace("{{ticket.requester.external_id}}", "")
    )
    parsed = parse_object(json.loads(rendered))
    assert parsed.shape == "trigger_ticket" and parsed.skipped == []
    (event,) = parsed.events
    assert isinstance(event, TicketVersion)
    assert (event.ticket_id, event.status, event.requester_id) == (4242, "open", 77)
    assert event.tags == ("refund", "vip")


# --------------------------------------------------------------------------- CLI


def write_config(tmp_path: Path, secret: str | None = "env:ZD_WEBHOOK_SECRET") -> Path:
    lines = [
        "[zendesk]",
        'subdomain = "acme"',
        f'email = "{EMAIL}"',
        'api_token = "env:ZD_TOKEN"',
        'public_url = "https://tactful.acme.example"',
    ]
    if secret is not None:
        lines.append(f'webhook_secret = "{secret}"')
    path = tmp_path / "tactful.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def admin(monkeypatch: pytest.MonkeyPatch) -> FakeAdmin:
    from tactful.cli import zendesk as commands

    fake = FakeAdmin()
    monkeypatch.setattr(
        commands,
        "make_client",
        lambda settings, **kw: ZendeskClient.from_settings(
            settings.zendesk, transport=httpx.MockTransport(fake.handler)
        ),
    )
    monkeypatch.setenv("ZD_TOKEN", TOKEN)
    monkeypatch.delenv("ZD_WEBHOOK_SECRET", raising=False)
    monkeypatch.delenv("TACTFUL_CONFIG", raising=False)
    return fake


def squash(text: str) -> str:
    return " ".join(text.split())


def test_cli_install_before_the_secret_exists_prints_it_once_with_the_env_name(
    admin: FakeAdmin,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = write_config(tmp_path)
    assert main(["--config", str(config), "zendesk", "install"]) == 0
    out = squash(capsys.readouterr().out)
    (wid,) = admin.webhooks
    secret = admin.secrets[wid]
    assert out.count(secret) == 1
    assert "webhook 'Tactful' created → https://tactful.acme.example/webhooks/zendesk" in out
    assert f"trigger '{TRIGGER_TITLE}' created" in out
    assert "environment variable ZD_WEBHOOK_SECRET" in out
    assert secret not in config.read_text()

    # once the variable holds the secret, running again changes and prints nothing secret
    monkeypatch.setenv("ZD_WEBHOOK_SECRET", secret)
    assert main(["--config", str(config), "zendesk", "install", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["webhook"]["action"] == "unchanged" and result["trigger"]["action"] == "unchanged"
    assert result["secret_configured"] is True and result["signing_secret"] is None


def test_cli_install_suggests_env_reference_when_secret_missing_or_literal(
    admin: FakeAdmin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, secret=None)
    assert main(["--config", str(config), "zendesk", "install", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["signing_secret"] == next(iter(admin.secrets.values()))
    assert 'webhook_secret = "env:TACTFUL_ZENDESK_WEBHOOK_SECRET"' in result["next_step"]
    config = write_config(tmp_path, secret="written-in-the-file")
    assert main(["--config", str(config), "zendesk", "install"]) == 0
    assert "is written in the file" in squash(capsys.readouterr().out)


def test_cli_install_needs_public_url(
    admin: FakeAdmin, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "tactful.toml"
    config.write_text(
        f'[zendesk]\nsubdomain = "acme"\nemail = "{EMAIL}"\napi_token = "env:ZD_TOKEN"\n'
    )
    assert main(["--config", str(config), "zendesk", "install"]) == 1
    assert "[zendesk] public_url is not set" in squash(capsys.readouterr().err)


def test_cli_trigger_body(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TACTFUL_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["zendesk", "trigger-body"]) == 0
    assert capsys.readouterr().out == RECOMMENDED_TRIGGER_BODY + "\n"
    config = write_config(tmp_path, secret=None)
    monkeypatch.setenv("ZD_TOKEN", TOKEN)
    assert main(["--config", str(config), "zendesk", "trigger-body", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["body"] == RECOMMENDED_TRIGGER_BODY
    assert result["webhook_endpoint"] == "https://tactful.acme.example/webhooks/zendesk"


def test_cli_tag_user(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tactful.cli import zendesk as commands

    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return ok({"tags": ["high_value", "vip"]})

    monkeypatch.setattr(
        commands,
        "make_client",
        lambda settings, **kw: ZendeskClient.from_settings(
            settings.zendesk, transport=httpx.MockTransport(handler)
        ),
    )
    monkeypatch.setenv("ZD_TOKEN", TOKEN)
    config = write_config(tmp_path, secret=None)
    assert main(["--config", str(config), "zendesk", "tag-user", "77", "high_value"]) == 0
    assert "the user's tags are now: high_value, vip" in capsys.readouterr().out
    args = ["--config", str(config), "zendesk", "tag-user", "77", "old", "--remove", "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out) == {
        "user_id": 77,
        "removed": ["old"],
        "tags": ["high_value", "vip"],
    }
    assert [(r.method, r.url.path) for r in seen] == [
        ("PUT", "/api/v2/users/77/tags"),
        ("DELETE", "/api/v2/users/77/tags"),
    ]


def test_cli_zendesk_errors_are_clear(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tactful.cli import zendesk as commands

    monkeypatch.setattr(
        commands,
        "make_client",
        lambda settings, **kw: ZendeskClient.from_settings(
            settings.zendesk, transport=httpx.MockTransport(lambda r: httpx.Response(401))
        ),
    )
    monkeypatch.setenv("ZD_TOKEN", TOKEN)
    config = write_config(tmp_path, secret=None)
    assert main(["--config", str(config), "zendesk", "tag-user", "77", "x"]) == 1
    err = squash(capsys.readouterr().err)
    assert "HTTP 401" in err and "check [zendesk] email and api_token" in err
    assert TOKEN not in err


def test_change_email_updates_the_primary_identity_in_place_on_the_simulator() -> None:
    from tactful.testing.sim import ZendeskSimulator
    from tactful.zendesk.client import ZendeskNotFound

    sim = ZendeskSimulator()
    user_id = sim.create_user("Ann Lee", "ann@example.com")
    base_url, stop = sim.serve()
    client = ZendeskClient(base_url, sim.email, sim.api_token, sleep=lambda s: None)
    try:
        identity = client.change_email(user_id, "ANN@example.com", "ann.new@example.com")
        assert identity["value"] == "ann.new@example.com" and identity["primary"] is True
        assert client.get_user(user_id)["email"] == "ann.new@example.com"  # type: ignore[index]
        with pytest.raises(ZendeskNotFound):
            client.change_email(user_id, "nobody@example.com", "x@example.com")
    finally:
        client.close()
        stop()
