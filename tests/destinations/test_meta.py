"""Meta Custom Audience destination: the shared suite against the fake, and Meta specifics."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from tactful.config.models import DestinationSettings
from tactful.core.platform import PlatformReport
from tactful.destinations import hashing, registry
from tactful.destinations.base import (
    Identifiers,
    Item,
    ItemKind,
    report_of,
)
from tactful.destinations.meta import SMALL_AUDIENCE_MESSAGE, MetaAudience
from tactful.testing.conformance import Conformance, conformance_tests
from tactful.testing.fakes.meta import FakeMeta
from tests.destinations.conftest import Served

AUDIENCE = "23850000000000000"
TOKEN = "meta-test-token"
AT = datetime(2026, 3, 1, tzinfo=UTC)


def item(i: int, kind: ItemKind = "audience_add", person: str | None = None, **ids: Any) -> Item:
    identifiers = (
        Identifiers(**ids)
        if ids
        else Identifiers(
            emails=(f"person{i}@example.com",),
            phones=(f"+1555{i:07d}",),
            external_ids=(f"crm-{i}",),
        )
    )
    return Item(f"k{i}-{kind}", kind, person or f"p{i}", AT, identifiers, segment="vip")


def form(request: Any) -> dict[str, Any]:
    fields = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
    return {k: json.loads(v) if k in ("payload", "session") else v for k, v in fields.items()}


class TestMetaConformance(Conformance):
    def make(self, base_url: str) -> MetaAudience:
        return MetaAudience(
            name="meta",
            audience_id=AUDIENCE,
            access_token=TOKEN,
            base_url=FakeMeta.base_url(base_url),
        )

    def make_fake(self) -> Any:
        return FakeMeta()

    def items(self, n: int) -> list[Item]:
        return [item(i) for i in range(n)]

    def ordered(self) -> list[Item]:
        return [item(1), item(1, "audience_remove")]


conformance_tests(TestMetaConformance)


@pytest.fixture
def served(serve: Served) -> Callable[..., tuple[FakeMeta, MetaAudience]]:
    def start(token: str = TOKEN, audience: str = AUDIENCE, **fake_args: Any) -> Any:
        fake = FakeMeta(**fake_args)
        root = serve(fake)
        dest = MetaAudience(
            name="meta", audience_id=audience, access_token=token, base_url=FakeMeta.base_url(root)
        )
        fake.root = root  # type: ignore[attr-defined]
        return fake, serve.closing(dest)

    return start


def test_request_format_multi_key_rows_hashed_by_meta_rules(served: Any) -> None:
    fake, dest = served()
    mary = Identifiers(emails=(" Mary@Example.com",), phones=("+15559876543",))
    many = Identifiers(emails=("a@x.com", "b@x.com"), external_ids=("crm-9",))
    outcomes = dest.send([item(1, emails=mary.emails, phones=mary.phones), item(2, **vars_(many))])
    assert [o.kind for o in outcomes] == ["ok", "ok"]
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", f"/v27.0/{AUDIENCE}/users")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    sent = form(request)
    assert sent["access_token"] == TOKEN
    assert sent["payload"] == {
        "schema": ["EMAIL", "PHONE", "EXTERN_ID"],
        "is_raw": True,
        "data": [
            [hashing.sha256_hex("mary@example.com"), hashing.sha256_hex("15559876543"), ""],
            [hashing.sha256_hex("a@x.com"), "", "crm-9"],
            [hashing.sha256_hex("b@x.com"), "", ""],
        ],
    }
    session = sent["session"]
    assert session["batch_seq"] == 1 and session["last_batch_flag"] is True
    assert session["estimated_num_total"] == 3 and session["session_id"] > 0


def vars_(identifiers: Identifiers) -> dict[str, Any]:
    return {name: getattr(identifiers, name) for name in ("emails", "phones", "external_ids")}


def test_removals_use_delete_with_the_same_payload(served: Any) -> None:
    fake, dest = served()
    dest.send([item(1), item(2)])
    assert [o.kind for o in dest.send([item(1, "audience_remove")])] == ["ok"]
    assert fake.requests[-1].method == "DELETE"
    assert form(fake.requests[-1])["payload"]["data"][0][2] == "crm-1"
    [remaining] = fake.snapshot()[AUDIENCE]
    assert ("EXTERN_ID", "crm-2") in remaining


def test_splits_into_requests_of_at_most_10000_rows_in_one_session(served: Any) -> None:
    fake, dest = served()
    outcomes = dest.send([item(i) for i in range(10_001)])
    assert all(o.kind == "ok" for o in outcomes)
    sent = [form(r) for r in fake.requests]
    assert [len(s["payload"]["data"]) for s in sent] == [10_000, 1]
    assert [s["session"]["batch_seq"] for s in sent] == [1, 2]
    assert [s["session"]["last_batch_flag"] for s in sent] == [False, True]
    assert len({s["session"]["session_id"] for s in sent}) == 1
    assert {s["session"]["estimated_num_total"] for s in sent} == {10_001}
    assert len(fake.snapshot()[AUDIENCE]) == 10_001


def test_fake_rejects_more_than_10000_rows(served: Any) -> None:
    fake, _ = served()
    rows = [[hashing.sha256_hex(str(i)), "", ""] for i in range(10_001)]
    body = {"payload": json.dumps({"schema": ["EMAIL", "PHONE", "EXTERN_ID"], "data": rows})}
    url = f"{FakeMeta.base_url(fake.root)}/{AUDIENCE}/users"
    response = httpx.post(url, data={**body, "access_token": TOKEN})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100
    assert fake.snapshot()[AUDIENCE] == frozenset()


def test_per_person_order_add_then_remove_in_one_send(served: Any) -> None:
    fake, dest = served()
    batch = [item(1), item(2), item(1, "audience_remove", person="p1"), item(3)]
    assert [o.kind for o in dest.send(batch)] == ["ok"] * 4
    # p1's add goes out before p1's remove; other people's adds may be grouped after it
    ops = [(r.method, [row[2] for row in form(r)["payload"]["data"]]) for r in fake.requests]
    assert ops == [("POST", ["crm-1", "crm-2"]), ("POST", ["crm-3"]), ("DELETE", ["crm-1"])]
    members = fake.snapshot()[AUDIENCE]
    assert {dict(m)["EXTERN_ID"] for m in members} == {"crm-2", "crm-3"}


def test_throttling_is_retried_after_metas_estimate_and_stops_the_batch(served: Any) -> None:
    fake, dest = served()
    fake.throttle_next(1, minutes=3)
    batch = [item(1), item(2, "audience_remove", person="p2")]
    outcomes = dest.send(batch)
    assert [o.kind for o in outcomes] == ["retry", "retry"]
    assert outcomes[0].retry_after == 180
    assert "Meta error 17/2446079" in outcomes[0].error
    assert len(fake.requests) == 1  # the removal was not attempted


def test_bad_token_is_rejected_with_a_clear_message(served: Any) -> None:
    fake, dest = served(token="expired")
    outcomes = dest.send([item(1), item(2, "audience_remove")])
    assert [o.kind for o in outcomes] == ["reject", "reject"]
    assert "Meta rejected the access token" in outcomes[0].error and "190" in outcomes[0].error
    assert len(fake.requests) == 1


def test_unknown_audience_is_rejected(served: Any) -> None:
    _, dest = served(audience="999")
    [outcome] = dest.send([item(1)])
    assert outcome.kind == "reject" and "100/33" in outcome.error


def test_small_audience_refuses_removals_but_adds_go_through(served: Any) -> None:
    fake, dest = served(refuse_removals_below=5)
    dest.send([item(i) for i in range(3)])
    batch = [item(0, "audience_remove", person="p0"), item(7)]
    removal, add = dest.send(batch)
    assert removal.kind == "reject" and removal.error == SMALL_AUDIENCE_MESSAGE
    assert "refuses removals from small audiences" in removal.error
    assert add.kind == "ok"
    assert len(fake.snapshot()[AUDIENCE]) == 4


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> MetaAudience:
    return MetaAudience(
        name="meta",
        audience_id=AUDIENCE,
        access_token=TOKEN,
        transport=httpx.MockTransport(handler),
    )


def test_invalid_entries_reject_only_their_items() -> None:
    bad = hashing.meta_email("person2@example.com")
    assert bad is not None

    def handler(request: httpx.Request) -> httpx.Response:
        rows = json.loads(dict(parse_qsl(request.content.decode()))["payload"])["data"]
        samples = {bad: "Invalid email hash"}
        return httpx.Response(
            200,
            json={
                "audience_id": AUDIENCE,
                "session_id": "1",
                "num_received": len(rows),
                "num_invalid_entries": 2,
                "invalid_entry_samples": samples,
            },
        )

    dest = mock(handler)
    outcomes = dest.send([item(1), item(2, emails=("person2@example.com",)), item(3)])
    assert [o.kind for o in outcomes] == ["ok", "reject", "ok"]
    assert outcomes[1].error == "Meta reported an invalid entry: Invalid email hash"
    # Meta's own answer goes to the sync run: counts and reasons, never the hashed entries
    report = report_of(outcomes)
    assert report == PlatformReport(3, 2, "received", ("Invalid email hash",))
    assert bad not in repr(report)


def test_the_platform_report_adds_up_every_request_of_a_send(served: Any) -> None:
    fake, dest = served()
    outcomes = dest.send([item(i) for i in range(1, 4)])
    assert [o.kind for o in outcomes] == ["ok"] * 3
    assert report_of(outcomes) == PlatformReport(3, 0, "received", ())
    split = MetaAudience(
        name="meta",
        audience_id=AUDIENCE,
        access_token=TOKEN,
        base_url=FakeMeta.base_url(fake.root),
        rows_per_request=2,
    )
    assert report_of(split.send([item(i) for i in range(1, 6)])) == PlatformReport(
        5, 0, "received", ()
    )
    split.close()


@pytest.mark.parametrize(
    ("status", "error", "kind", "retry_after"),
    [
        (
            400,
            {"code": 4, "error_subcode": 1504022, "message": "Application request limit"},
            "retry",
            None,
        ),
        (400, {"code": 613, "error_subcode": 1487742, "message": "Too many calls"}, "retry", None),
        (400, {"code": 80003, "message": "Too many calls to this custom audience"}, "retry", None),
        (
            500,
            {"code": 2, "message": "Service temporarily unavailable", "is_transient": True},
            "retry",
            None,
        ),
        (
            400,
            {"code": 100, "message": "(#100) Data is missing or does not match schema"},
            "reject",
            None,
        ),
        (403, {"code": 200, "message": "Permissions error"}, "reject", None),
    ],
)
def test_graph_error_codes(status: int, error: dict[str, Any], kind: str, retry_after: Any) -> None:
    dest = mock(lambda request: httpx.Response(status, json={"error": error}))
    [outcome] = dest.send([item(1)])
    assert (outcome.kind, outcome.retry_after, outcome.status) == (kind, retry_after, status)
    assert str(error["code"]) in outcome.error


def test_retry_after_header_wins_and_connection_errors_retry() -> None:
    headers = {"Retry-After": "9"}
    body = {"error": {"code": 17, "message": "User request limit reached"}}
    [outcome] = mock(lambda r: httpx.Response(400, json=body, headers=headers)).send([item(1)])
    assert (outcome.kind, outcome.retry_after) == ("retry", 9)

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    [outcome] = mock(boom).send([item(1)])
    assert outcome.kind == "retry" and "unreachable" in outcome.error


def test_items_without_identifiers_are_skipped_and_other_kinds_rejected() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"num_received": 1})

    dest = mock(handler)
    empty = Item("k", "audience_add", "p", AT, Identifiers(zendesk_user_ids=("7",)))
    profile = Item("k2", "profile", "p", AT, Identifiers(emails=("a@x.com",)))
    outcomes = dest.send([empty, profile, item(3)])
    # a Zendesk id alone is nothing Meta can match: skipped (issue 18 §6), not dead-lettered
    assert [o.kind for o in outcomes] == ["skip", "reject", "ok"]
    assert len(calls) == 1


def test_create_from_config_through_the_registry() -> None:
    config = DestinationSettings.model_validate(
        {
            "name": "meta_vip",
            "type": "meta_audience",
            "segment": "vip",
            "audience_id": 23850000000000001,
            "access_token": "tok",
        }
    )
    dest = registry.create(config, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert isinstance(dest, MetaAudience)
    assert dest.url == "https://graph.facebook.com/v27.0/23850000000000001/users"
    assert (dest.purpose, dest.segments, dest.type) == ("ads", ["vip"], "meta_audience")
    dest.close()
