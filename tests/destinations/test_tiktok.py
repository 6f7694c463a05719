"""TikTok audience destination: the shared suite against the fake, and TikTok specifics."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tactful.config.models import DestinationSettings
from tactful.destinations import hashing, registry
from tactful.destinations.base import Identifiers, Item, ItemKind
from tactful.destinations.tiktok import TikTokAudience
from tactful.testing.conformance import Conformance, conformance_tests
from tactful.testing.fakes.tiktok import FakeTikTok
from tests.destinations.conftest import Served

ADVERTISER = "7000000000000000000"
AUDIENCE = "123456789"
TOKEN = "tiktok-test-token"
AT = datetime(2026, 3, 1, tzinfo=UTC)


def item(i: int, kind: ItemKind = "audience_add", person: str | None = None, **ids: Any) -> Item:
    identifiers = (
        Identifiers(**ids)
        if ids
        else Identifiers(emails=(f"person{i}@example.com",), phones=(f"+1555{i:07d}",))
    )
    return Item(f"k{i}-{kind}", kind, person or f"p{i}", AT, identifiers, segment="vip")


def make(base_url: str, token: str = TOKEN, **kwargs: Any) -> TikTokAudience:
    return TikTokAudience(
        name="tiktok",
        advertiser_id=ADVERTISER,
        audience_id=AUDIENCE,
        access_token=token,
        base_url=base_url,
        **kwargs,
    )


class TestTikTokConformance(Conformance):
    def make(self, base_url: str) -> TikTokAudience:
        return make(FakeTikTok.base_url(base_url))

    def make_fake(self) -> Any:
        return FakeTikTok()

    def items(self, n: int) -> list[Item]:
        return [item(i) for i in range(n)]

    def ordered(self) -> list[Item]:
        return [item(1), item(1, "audience_remove")]


conformance_tests(TestTikTokConformance)


@pytest.fixture
def served(serve: Served) -> Callable[..., tuple[FakeTikTok, TikTokAudience]]:
    def start(token: str = TOKEN, **fake_args: Any) -> Any:
        fake = FakeTikTok(**fake_args)
        return fake, serve.closing(make(FakeTikTok.base_url(serve(fake)), token))

    return start


def body(request: Any) -> Any:
    return json.loads(request.body)


def test_request_format_hashes_by_tiktok_rules(served: Any) -> None:
    fake, dest = served()
    jane = item(1, emails=("Jane.Doe+promo@Example.com",), phones=("+16577770000",))
    only_phone = item(2, phones=("+37493828222",), external_ids=("crm-2",))
    assert [o.kind for o in dest.send([jane, only_phone])] == ["ok", "ok"]
    [request] = fake.requests
    assert (request.method, request.path) == ("POST", "/open_api/v1.3/segment/mapping/")
    assert request.headers["access-token"] == TOKEN
    assert request.headers["content-type"] == "application/json"
    audiences = [AUDIENCE]
    assert body(request) == {
        "advertiser_ids": [ADVERTISER],
        "action": "add",
        "id_schema": ["EMAIL_SHA256", "PHONE_SHA256"],
        "batch_data": [
            [
                {"id": hashing.sha256_hex("jane.doe@example.com"), "audience_ids": audiences},
                {"id": hashing.sha256_hex("+16577770000"), "audience_ids": audiences},
            ],
            [{}, {"id": hashing.sha256_hex("+37493828222"), "audience_ids": audiences}],
        ],
    }


def test_removal_is_action_delete(served: Any) -> None:
    fake, dest = served()
    dest.send([item(1), item(2)])
    assert [o.kind for o in dest.send([item(1, "audience_remove")])] == ["ok"]
    assert body(fake.requests[-1])["action"] == "delete"
    remaining = fake.snapshot()[AUDIENCE]
    assert remaining == {
        ("EMAIL_SHA256", hashing.sha256_hex("person2@example.com")),
        ("PHONE_SHA256", hashing.sha256_hex("+15550000002")),
    }


def test_splits_into_requests_within_the_limit(served: Any) -> None:
    fake, dest = served()
    outcomes = dest.send([item(i) for i in range(2_001)])
    assert all(o.kind == "ok" for o in outcomes)
    assert [len(body(r)["batch_data"]) for r in fake.requests] == [1_000, 1_000, 1]


def test_per_person_order(served: Any) -> None:
    fake, dest = served()
    batch = [item(1), item(1, "audience_remove", person="p1"), item(1, person="p1")]
    assert [o.kind for o in dest.send(batch)] == ["ok"] * 3
    assert [body(r)["action"] for r in fake.requests] == ["add", "delete", "add"]
    assert len(fake.snapshot()[AUDIENCE]) == 2


def test_rate_limit_code_is_retried_and_stops_the_batch(served: Any) -> None:
    fake, dest = served()
    fake.rate_limit_next(1)
    outcomes = dest.send([item(1), item(2, "audience_remove")])
    assert [o.kind for o in outcomes] == ["retry", "retry"]
    assert "40100" in outcomes[0].error and outcomes[0].status == 200
    assert len(fake.requests) == 1


def test_bad_token_is_rejected_with_a_hint(served: Any) -> None:
    fake, dest = served(token="revoked")
    outcomes = dest.send([item(1), item(2, "audience_remove")])
    assert [o.kind for o in outcomes] == ["reject", "reject"]
    assert "TikTok rejected the access token" in outcomes[0].error
    assert "40105" in outcomes[0].error
    assert len(fake.requests) == 1


def test_wrong_advertiser_is_a_permission_error(served: Any) -> None:
    _, dest = served(advertiser_id="1")
    [outcome] = dest.send([item(1)])
    assert outcome.kind == "reject" and "40001" in outcome.error


def test_unknown_audience_is_rejected_by_the_fake(served: Any) -> None:
    _, dest = served(audience_ids=("42",))
    [outcome] = dest.send([item(1)])
    assert outcome.kind == "reject" and "40002" in outcome.error


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> TikTokAudience:
    return make("https://tiktok.test/open_api/v1.3", transport=httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("code", "kind"),
    [(40100, "retry"), (50000, "retry"), (40102, "reject"), (40104, "reject"), (40002, "reject")],
)
def test_error_codes(code: int, kind: str) -> None:
    answer = {"code": code, "message": "m", "request_id": "r", "data": {}}
    [outcome] = mock(lambda r: httpx.Response(200, json=answer)).send([item(1)])
    assert outcome.kind == kind and str(code) in outcome.error


def test_http_errors_and_connection_errors() -> None:
    throttled = mock(lambda r: httpx.Response(429, headers={"Retry-After": "5"}))
    [outcome] = throttled.send([item(1)])
    assert (outcome.kind, outcome.retry_after) == ("retry", 5)

    def boom(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    [outcome] = mock(boom).send([item(1)])
    assert outcome.kind == "retry" and "unreachable" in outcome.error


def test_items_without_email_or_phone_are_skipped() -> None:
    calls: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, json={"code": 0, "message": "OK", "data": {}})

    dest = mock(handler)
    outcomes = dest.send([item(1, external_ids=("crm-1",)), item(2)])
    assert [o.kind for o in outcomes] == ["skip", "ok"]
    assert len(calls) == 1


def test_create_from_config_through_the_registry() -> None:
    config = DestinationSettings.model_validate(
        {
            "name": "tiktok_vip",
            "type": "tiktok_audience",
            "segment": "vip",
            "advertiser_id": 7000000000000000001,
            "audience_id": 123,
            "access_token": "tok",
        }
    )
    dest = registry.create(config, transport=httpx.MockTransport(lambda r: httpx.Response(200)))
    assert isinstance(dest, TikTokAudience)
    assert dest.url == "https://business-api.tiktok.com/open_api/v1.3/segment/mapping/"
    assert (dest.advertiser_id, dest.audience_id) == ("7000000000000000001", "123")
    assert (dest.purpose, dest.segments, dest.type) == ("ads", ["vip"], "tiktok_audience")
    dest.close()


# --- the platform's report (issue 21 §3) ----------------------------------------------------


def test_audience_report_reads_cover_num(served: Any) -> None:
    fake, dest = served()
    assert [o.kind for o in dest.send([item(i) for i in range(3)])] == ["ok"] * 3
    report = dest.audience_report()
    # three people with an email and a phone each: six identifiers stored
    assert (report.audience_lower, report.audience_upper, report.status) == (6, 6, "")
    [get] = [r for r in fake.requests if r.method == "GET"]
    assert get.path == "/open_api/v1.3/dmp/custom_audience/get/"
    assert get.headers["access-token"] == TOKEN
    fake.matched = 4200
    assert dest.audience_report().audience_size == "4,200"


def test_audience_report_failures_are_unreadable(served: Any) -> None:
    from tactful.destinations.base import PlatformUnreadable

    _, revoked = served(token="revoked")
    with pytest.raises(PlatformUnreadable, match="40105"):
        revoked.audience_report()
    _, elsewhere = served(audience_ids=("42",))
    with pytest.raises(PlatformUnreadable, match="40002"):
        elsewhere.audience_report()
    fake, dest = served()
    fake.fail_next(1, 503)
    with pytest.raises(PlatformUnreadable, match="HTTP 503"):
        dest.audience_report()


def test_audience_report_sends_the_documented_query() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        details = {"audience_id": AUDIENCE, "cover_num": 1500, "is_valid": False}
        answer = {"code": 0, "message": "OK", "data": {"list": [{"audience_details": details}]}}
        return httpx.Response(200, json=answer)

    report = mock(handler).audience_report()
    assert report.audience_size == "1,500" and report.status.startswith("not valid")
    params = seen[0].url.params
    assert params["advertiser_id"] == ADVERTISER
    assert json.loads(params["custom_audience_ids"]) == [AUDIENCE]
