"""Segment, Amplitude and Mixpanel track calls: the shared suite and each vendor's rules."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest

from tactful.config.models import DestinationSettings
from tactful.destinations import amplitude, mixpanel, registry, segment
from tactful.destinations.amplitude import AmplitudeDestination
from tactful.destinations.base import Destination, Identifiers, Item
from tactful.destinations.mixpanel import MixpanelDestination
from tactful.destinations.segment import SegmentDestination
from tactful.http.auth import basic_auth_header as basic_auth
from tactful.testing.conformance import Conformance, conformance_tests
from tactful.testing.fakes.analytics import (
    FakeAmplitude,
    FakeMixpanel,
    FakeSegment,
    FakeVendor,
)
from tests.destinations.conftest import Served

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
AT_MS = 1772366400000


def item(i: int, person: str | None = None, **properties: Any) -> Item:
    return Item(
        key=f"outbox-{i}",
        kind="event",
        person_id=person or f"p_{i:06d}",
        at=AT,
        identifiers=Identifiers(external_ids=(f"crm-{i}",)),
        name="support_state_changed",
        properties=properties or {"new_state": "refund_risk", "changed": ["support_state"]},
    )


def make_segment(root: str, **kw: Any) -> SegmentDestination:
    return SegmentDestination(name="segment", write_key="segment-write-key", base_url=root, **kw)


def make_amplitude(root: str, **kw: Any) -> AmplitudeDestination:
    return AmplitudeDestination(name="amp", api_key="amplitude-api-key", base_url=root, **kw)


def make_mixpanel(root: str, **kw: Any) -> MixpanelDestination:
    return MixpanelDestination(
        name="mp",
        project_id="12345",
        service_account_user="sa.user",
        service_account_secret="sa-secret",
        base_url=root,
        **kw,
    )


class TestSegmentConformance(Conformance):
    def make(self, base_url: str) -> Destination:
        return make_segment(base_url)

    def make_fake(self) -> Any:
        return FakeSegment()

    def items(self, n: int) -> list[Item]:
        return [item(i) for i in range(n)]


class TestAmplitudeConformance(TestSegmentConformance):
    def make(self, base_url: str) -> Destination:
        return make_amplitude(base_url)

    def make_fake(self) -> Any:
        return FakeAmplitude()


class TestMixpanelConformance(TestSegmentConformance):
    def make(self, base_url: str) -> Destination:
        return make_mixpanel(base_url)

    def make_fake(self) -> Any:
        return FakeMixpanel()


for _cls in (TestSegmentConformance, TestAmplitudeConformance, TestMixpanelConformance):
    conformance_tests(_cls)


@pytest.fixture
def served(serve: Served) -> Callable[..., Any]:
    def start(fake: FakeVendor, make: Callable[..., Any], **kw: Any) -> tuple[Any, Any]:
        return fake, serve.closing(make(serve(fake), **kw))

    return start


def body(fake: FakeVendor, n: int = 0) -> Any:
    return orjson.loads(fake.requests[n].body)


# -- Segment -------------------------------------------------------------------------------


def test_segment_sends_track_calls_with_basic_auth(served: Any) -> None:
    fake, dest = served(FakeSegment(), make_segment)
    assert dest.send([item(1)])[0].kind == "ok"
    request = fake.requests[0]
    assert request.path == "/v1/batch"
    assert request.headers["authorization"] == basic_auth("segment-write-key", "")
    assert body(fake) == {
        "batch": [
            {
                "type": "track",
                "event": "support_state_changed",
                "userId": "crm-1",  # identify_by default: the brand's external id
                "properties": {"new_state": "refund_risk", "changed": ["support_state"]},
                "timestamp": "2026-03-01T12:00:00.000Z",
                "messageId": segment.message_id("outbox-1"),
            }
        ]
    }
    assert list(fake.snapshot()) == [segment.message_id("outbox-1")] and not fake.dropped


def test_segment_splits_by_bytes_and_rejects_oversized_messages(served: Any) -> None:
    fake, dest = served(FakeSegment(), make_segment)
    items = [item(i, note="x" * 20_000) for i in range(60)] + [item(99, note="y" * 40_000)]
    outcomes = dest.send(items)
    assert [o.kind for o in outcomes] == ["ok"] * 60 + ["reject"]
    assert "32 KB" in outcomes[-1].error
    assert len(fake.requests) >= 3
    assert all(len(r.body) <= 500_000 and r.status == 200 for r in fake.requests)
    assert len(fake.snapshot()) == 60


def test_after_a_transient_failure_later_requests_wait(served: Any) -> None:
    fake, dest = served(FakeSegment(), make_segment)
    fake.fail_next(1, 503)
    outcomes = dest.send([item(i, note="x" * 20_000) for i in range(60)])
    assert {o.kind for o in outcomes} == {"retry"}
    assert len(fake.requests) == 1 and fake.snapshot() == {}


def test_segment_400_rejects_the_request_and_external_id_is_optional(served: Any) -> None:
    fake, dest = served(FakeSegment(), make_segment, identify_by=("external_id",))
    assert dest.send([item(1)])[0].kind == "ok"
    assert body(fake)["batch"][0]["userId"] == "crm-1"
    fake.fail_next(1, 400)
    assert [o.kind for o in dest.send([item(2), item(3)])] == ["reject", "reject"]


def test_segment_wrong_write_key_is_rejected(served: Any) -> None:
    _, dest = served(FakeSegment(write_key="other"), make_segment)
    outcome = dest.send([item(1)])[0]
    assert outcome.kind == "reject" and outcome.status == 401


# -- Amplitude -----------------------------------------------------------------------------


def test_amplitude_sends_events_with_insert_ids(served: Any) -> None:
    fake, dest = served(FakeAmplitude(), make_amplitude)
    assert dest.send([item(1)])[0].kind == "ok"
    assert fake.requests[0].path == "/2/httpapi"
    assert body(fake) == {
        "api_key": "amplitude-api-key",
        "events": [
            {
                "user_id": "crm-1",
                "event_type": "support_state_changed",
                "time": AT_MS,
                "event_properties": {"new_state": "refund_risk", "changed": ["support_state"]},
                "insert_id": amplitude.insert_id("outbox-1"),
            }
        ],
    }


def test_amplitude_rejects_only_the_events_a_400_names_and_resends_the_rest(
    served: Any,
) -> None:
    fake, dest = served(FakeAmplitude(), make_amplitude)
    fake.poison(amplitude.insert_id("outbox-1"), amplitude.insert_id("outbox-3"))
    outcomes = dest.send([item(i) for i in range(5)])
    assert [o.kind for o in outcomes] == ["ok", "reject", "ok", "reject", "ok"]
    assert "events_with_invalid_fields" in outcomes[1].error
    stored = {e["insert_id"] for e in fake.snapshot().values()}
    assert stored == {amplitude.insert_id(f"outbox-{i}") for i in (0, 2, 4)}
    assert [r.status for r in fake.requests] == [400, 400, 200]


def test_amplitude_short_user_ids_lower_min_id_length(served: Any) -> None:
    fake, dest = served(FakeAmplitude(), make_amplitude, identify_by=("person_id",))
    assert dest.send([item(1, person="p1"), item(2)])[0].kind == "ok"
    assert body(fake)["options"] == {"min_id_length": 2}


def test_amplitude_429_without_retry_after_waits_30_seconds(served: Any) -> None:
    fake, dest = served(FakeAmplitude(), make_amplitude)
    fake.fail_next(1, 429)
    outcome = dest.send([item(1)])[0]
    assert (outcome.kind, outcome.retry_after) == ("retry", 30.0)


def test_amplitude_invalid_api_key_rejects_everything(served: Any) -> None:
    _, dest = served(FakeAmplitude(api_key="other"), make_amplitude)
    outcomes = dest.send([item(1), item(2)])
    assert [o.kind for o in outcomes] == ["reject", "reject"]
    assert "Invalid API key" in outcomes[0].error


# -- Mixpanel ------------------------------------------------------------------------------


def test_mixpanel_imports_with_a_service_account(served: Any) -> None:
    fake, dest = served(FakeMixpanel(), make_mixpanel)
    assert dest.send([item(1)])[0].kind == "ok"
    request = fake.requests[0]
    assert request.path == "/import"
    assert request.headers["authorization"] == basic_auth("sa.user", "sa-secret")
    query = parse_qs(urlsplit(dest.url).query)
    assert query == {"strict": ["1"], "project_id": ["12345"]}
    assert body(fake) == [
        {
            "event": "support_state_changed",
            "properties": {
                "new_state": "refund_risk",
                "changed": ["support_state"],
                "time": AT_MS,
                "distinct_id": "crm-1",
                "$insert_id": mixpanel.insert_id("outbox-1"),
            },
        }
    ]


def test_mixpanel_partial_400_rejects_failed_records_and_keeps_the_rest(served: Any) -> None:
    fake, dest = served(FakeMixpanel(), make_mixpanel)
    fake.poison(mixpanel.insert_id("outbox-2"))
    outcomes = dest.send([item(i) for i in range(4)])
    assert [o.kind for o in outcomes] == ["ok", "ok", "reject", "ok"]
    assert outcomes[2].error.startswith("properties:") and outcomes[2].status == 400
    assert len(fake.requests) == 1 and len(fake.snapshot()) == 3


def test_mixpanel_reserved_properties_win_and_bad_credentials_reject(served: Any) -> None:
    fake, dest = served(FakeMixpanel(secret="other"), make_mixpanel)
    outcome = dest.send([item(1, time="forged", distinct_id="someone")])[0]
    assert outcome.kind == "reject" and outcome.status == 401
    sent = body(fake)[0]["properties"]
    assert (sent["time"], sent["distinct_id"]) == (AT_MS, "crm-1")


# -- shared --------------------------------------------------------------------------------


def test_non_event_items_are_rejected_without_requests(served: Any) -> None:
    fake, dest = served(FakeSegment(), make_segment)
    profile = Item("k", "profile", "p_000001", AT, Identifiers())
    assert dest.send([profile])[0].kind == "reject"
    assert fake.requests == []


def test_dedupe_ids_are_stable_and_fit_every_vendor() -> None:
    ids = {segment.message_id("k"), amplitude.insert_id("k"), mixpanel.insert_id("k")}
    assert len(ids) == 1
    (value,) = ids
    assert len(value) == 36 and value != segment.message_id("k2")


@pytest.mark.parametrize(
    ("settings", "cls"),
    [
        ({"type": "segment", "write_key": "w"}, SegmentDestination),
        (
            {"type": "amplitude", "api_key": "a", "base_url": "https://api.eu.amplitude.com"},
            AmplitudeDestination,
        ),
        (
            {
                "type": "mixpanel",
                "project_id": 7,
                "service_account_user": "u",
                "service_account_secret": "s",
            },
            MixpanelDestination,
        ),
    ],
)
def test_registry_creates_them(settings: dict[str, Any], cls: type) -> None:
    config = DestinationSettings.model_validate({"name": "d", **settings})
    dest = registry.create(config)
    try:
        assert isinstance(dest, cls) and dest.purpose == "analytics"
    finally:
        dest.close()
