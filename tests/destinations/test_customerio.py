"""Customer.io destination: the shared suite against the fake, and Customer.io specifics."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tactful.config.models import DestinationSettings
from tactful.destinations import registry
from tactful.destinations.base import Destination, Identifiers, Item, ItemKind, report_of
from tactful.destinations.customerio import CustomerIODestination, create
from tactful.destinations.profiles import ProfileActions, ProfileError, ulid_for
from tactful.testing.conformance import Conformance, conformance_tests, serving
from tactful.testing.fakes.customerio import FakeCustomerIO
from tactful.testing.sim.server import run_in_thread

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STATE = {
    "has_open_ticket": True,
    "open_ticket_count": 1,
    "open_reasons": ["refund"],
    "last_ticket_at": datetime(2026, 2, 28, 9, 30, tzinfo=UTC),
    "last_activity_at": "2026-02-28T10:00:00Z",
    "support_state": "open_issue",
    "zendesk_id": 7001,
    "zendesk_tags": ["vip"],
}


def config(base_url: str | None = None, **settings: Any) -> DestinationSettings:
    data = {"name": "cio", "type": "customerio", "site_id": "site-1", "api_key": "track-key"}
    data.update({"app_api_key": "app-key", **settings})
    if base_url:
        data["base_url"] = base_url
    return DestinationSettings.model_validate(data)


def item(
    i: int,
    kind: ItemKind = "profile",
    *,
    name: str = "",
    props: dict[str, Any] | None = None,
    person: str | None = None,
    at: datetime = AT,
    identifiers: Identifiers | None = None,
) -> Item:
    ids = identifiers or Identifiers(emails=(f"person{i}@example.com",))
    default = STATE if kind == "profile" else {"reason": "refund"}
    props = default if props is None else props
    return Item(f"k{i}-{kind}-{name}", kind, person or f"p{i}", at, ids, name, None, props)


class TestCustomerIOConformance(Conformance):
    def make(self, base_url: str) -> Destination:
        return create(config(base_url))

    def make_fake(self) -> Any:
        return FakeCustomerIO()

    def items(self, n: int) -> list[Item]:
        kinds: list[ItemKind] = ["profile", "event"]
        return [item(i, kinds[i % 2], name="zendesk_ticket_created") for i in range(n)]

    def rejected_item(self) -> Item:
        return item(9, "event", name="x" * 101)  # Customer.io refuses names over 100

    def ordered(self) -> list[Item]:
        return [item(1, name="v1"), item(1, name="v2", props={**STATE, "open_ticket_count": 2})]


conformance_tests(TestCustomerIOConformance)


def _create(base_url: str, **settings: Any) -> CustomerIODestination:
    return create(config(base_url, **settings))


@pytest.fixture
def vendor() -> Iterator[tuple[FakeCustomerIO, Callable[..., CustomerIODestination]]]:
    with serving(FakeCustomerIO(), _create) as served:
        yield served


def batches(fake: FakeCustomerIO) -> list[list[dict[str, Any]]]:
    return [json.loads(r.body)["batch"] for r in fake.requests if r.path == "/api/v2/batch"]


def test_request_format_auth_and_entries(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    event = item(2, "event", name="zendesk_ticket_created", props={"csat_at": AT, "n": 1})
    outcomes = dest.send([item(1), event, item(3, "erase")])
    assert [o.kind for o in outcomes] == ["ok", "ok", "ok"]
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/api/v2/batch")
    expected = "Basic " + base64.b64encode(b"site-1:track-key").decode()
    assert request.headers["authorization"] == expected
    assert request.headers["content-type"] == "application/json"
    identify, track, erase = json.loads(request.body)["batch"]
    assert identify["type"] == "person" and identify["action"] == "identify"
    assert identify["identifiers"] == {"email": "person1@example.com"}
    assert identify["timestamp"] == int(AT.timestamp())
    attrs = identify["attributes"]
    assert attrs["last_ticket_at"] == int(datetime(2026, 2, 28, 9, 30, tzinfo=UTC).timestamp())
    assert attrs["last_activity_at"] == int(datetime(2026, 2, 28, 10, tzinfo=UTC).timestamp())
    assert attrs["open_reasons"] == ["refund"] and attrs["has_open_ticket"] is True
    assert track == {
        "type": "person",
        "identifiers": {"email": "person2@example.com"},
        "action": "event",
        "id": ulid_for(event.key, AT),
        "name": "zendesk_ticket_created",
        "timestamp": int(AT.timestamp()),
        "attributes": {"csat_at": int(AT.timestamp()), "n": 1},
    }
    assert erase == {
        "type": "person",
        "identifiers": {"email": "person3@example.com"},
        "action": "delete",
    }


def test_region_selects_track_and_app_hosts() -> None:
    seen: list[httpx.URL] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url)
        if request.url.path.endswith("/attributes"):
            return httpx.Response(404, json={"errors": [{"detail": "not found"}]})
        return httpx.Response(200, json={})

    transport = httpx.MockTransport(handler)
    eu = create(config(region="eu"), transport=transport)
    us = create(config(), transport=transport)
    assert [o.kind for o in eu.send([item(1)])] == ["ok"]
    assert eu.read_profile("a@example.com") is None
    assert us.send([item(1)])[0].kind == "ok"
    hosts = [(u.host, u.raw_path.decode().split("?")[0]) for u in seen]
    assert hosts[0] == ("track-eu.customer.io", "/api/v2/batch")
    assert hosts[1] == ("api-eu.customer.io", "/v1/customers/a%40example.com/attributes")
    assert seen[1].params["id_type"] == "email"
    assert hosts[2] == ("track.customer.io", "/api/v2/batch")
    with pytest.raises(ValueError, match="region"):
        CustomerIODestination(name="x", site_id="s", api_key="k", region="ap")


def test_event_id_is_a_stable_ulid_and_redelivery_is_deduplicated(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    event = item(1, "event", name="zendesk_csat_received")
    assert dest.send([event])[0].kind == "ok"
    assert dest.send([event])[0].kind == "ok"
    ulid = ulid_for(event.key, AT)
    assert len(ulid) == 26 and ulid == ulid_for(event.key, AT) != ulid_for("other", AT)
    assert list(fake.snapshot()["events"]) == [ulid]
    assert [b[0]["id"] for b in batches(fake)] == [ulid, ulid]


def test_erase_deletes_or_suppresses(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    assert [o.kind for o in dest.send([item(1), item(2)])] == ["ok", "ok"]
    assert dest.send([item(1, "erase")])[0].kind == "ok"
    assert fake.person("person1@example.com") is None
    suppressing = make(erase_action="suppress")
    assert suppressing.send([item(2, "erase")])[0].kind == "ok"
    assert suppressing.send([item(2)])[0].kind == "ok"  # accepted, but ignored by Customer.io
    assert fake.person("person2@example.com") is None
    assert fake.snapshot()["suppressed"] == ["person2@example.com"]
    with pytest.raises(ValueError, match="erase_action"):
        create(config(erase_action="forget"))


def test_per_entry_refusal_does_not_sink_the_batch(vendor: Any) -> None:
    fake, make = vendor
    long_name = item(2, "event", name="x" * 101)
    outcomes = make().send([item(1), long_name, item(3)])
    assert [o.kind for o in outcomes] == ["ok", "reject", "ok"]
    assert "event name" in outcomes[1].error and outcomes[1].status == 207
    assert fake.person("person3@example.com") is not None
    # Customer.io's own answer, for the sync run (issue 21 §2): reasons, never the values
    report = report_of(outcomes)
    assert report is not None
    assert (report.received, report.invalid, report.status) == (3, 1, "207 Multi-Status")
    assert report.diagnostics and all("x" * 101 not in d for d in report.diagnostics)


def test_unusable_items_are_skipped_or_rejected_without_a_request(vendor: Any) -> None:
    fake, make = vendor
    phone_only = item(1, identifiers=Identifiers(phones=("+15550000001",)))
    nameless = item(2, "event")
    huge = item(3, "event", name="big", props={"blob": "x" * 40_000})
    outcomes = make().send([phone_only, nameless, huge])
    # no identifier Customer.io matches on: skipped (issue 18 §6), not dead-lettered
    assert [o.kind for o in outcomes] == ["skip", "reject", "reject"]
    assert "no usable identifier" in outcomes[0].error
    assert fake.requests == []


def test_external_id_addresses_the_person_without_email(vendor: Any) -> None:
    fake, make = vendor
    crm = item(1, identifiers=Identifiers(external_ids=("crm-1",)))
    assert make().send([crm])[0].kind == "ok"
    assert batches(fake)[0][0]["identifiers"] == {"id": "crm-1"}
    assert fake.person("crm-1") is not None


def test_requests_stay_within_500kb_and_tickets_within_1000_bytes(vendor: Any) -> None:
    fake, make = vendor
    tickets = [
        {"id": n, "updated_at": f"2026-02-{n:02d}T00:00:00Z", "subject": "s" * 60}
        for n in range(1, 29)
    ]
    big = {**STATE, "zendesk_tickets": tickets, **{f"note_{j}": "y" * 900 for j in range(25)}}
    items = [item(i, props=big) for i in range(40)]
    assert {o.kind for o in make().send(items)} == {"ok"}
    sizes = [len(r.body) for r in fake.requests]
    assert len(sizes) > 1 and max(sizes) <= 500_000
    kept = fake.person("person0@example.com")["zendesk_tickets"]
    assert 0 < len(kept) < len(tickets) and len(json.dumps(kept, separators=(",", ":"))) <= 1000
    assert kept[0]["id"] == 28  # the most recently updated tickets are kept


def test_an_erase_never_shares_a_request_with_the_same_persons_update(vendor: Any) -> None:
    fake, make = vendor
    later = AT + timedelta(minutes=1)
    outcomes = make().send([item(1), item(1, "erase", at=later), item(2)])
    assert [o.kind for o in outcomes] == ["ok"] * 3
    assert [[e["action"] for e in b] for b in batches(fake)] == [
        ["identify"],
        ["delete", "identify"],
    ]
    assert fake.person("person1@example.com") is None


def test_429_holds_the_rest_and_5xx_holds_the_person(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    fake.fail_next(1, 429, retry_after=3)
    outcomes = dest.send([item(1), item(2, "erase")])
    assert [(o.kind, o.retry_after) for o in outcomes] == [("retry", 3), ("retry", 3)]
    fake.fail_next(1, 502)
    outcomes = dest.send([item(1), item(1, "erase"), item(2)])
    assert [o.kind for o in outcomes] == ["retry", "retry", "ok"]
    assert "earlier" in outcomes[1].error


def test_connection_failure_is_retry() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    dest = create(config(), transport=httpx.MockTransport(refuse))
    assert dest.send([item(1)])[0].kind == "retry"


def test_rate_limited_fake_answers_429_with_retry_after() -> None:
    fake = FakeCustomerIO(rate_limit_per_second=1)
    base_url, stop = run_in_thread(fake.app)
    dest = create(config(base_url))
    try:
        first, second = dest.send([item(1), item(1, "erase")])
        assert first.kind == "ok" and (second.kind, second.retry_after) == ("retry", 1.0)
    finally:
        dest.close()
        stop()


def test_wrong_credentials_are_rejected(vendor: Any) -> None:
    _fake, make = vendor
    outcome = make(api_key="nope").send([item(1)])[0]
    assert (outcome.kind, outcome.status) == ("reject", 401)
    assert "Unauthorized" in outcome.error


def sidebar(dest: CustomerIODestination) -> ProfileActions:
    return dest  # checked by mypy: the destination offers the sidebar's actions


def test_sidebar_reads_and_changes_the_profile(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    assert dest.send([item(1)])[0].kind == "ok"
    fake.add_to_segment("person1@example.com", 7, "VIP")
    fake.add_topic(4, "Product updates")
    fake.add_topic(5, "Weekly deals", subscribed_by_default=False)
    profile = dest.read_profile("PERSON1@example.com")
    assert profile is not None
    assert (profile.email, profile.lists, profile.opted_out) == (
        "person1@example.com",
        ["topic_4"],  # subscription topics: what list removal can change
        False,
    )
    assert profile.raw["list_names"] == {"topic_4": "Product updates"}
    assert profile.raw["segments"] == {"7": "VIP"} and profile.signup_at is not None
    app = [r for r in fake.requests if r.path.startswith("/v1/")]
    assert all(r.headers["authorization"] == "Bearer app-key" for r in app)

    dest.set_optout("person1@example.com", True)
    assert dest.read_profile("person1@example.com").opted_out is True
    put = [r for r in fake.requests if r.method == "PUT"][-1]
    assert put.path == "/api/v1/customers/person1@example.com"
    assert json.loads(put.body) == {"unsubscribed": True, "_update": True}

    dest.change_email("person1@example.com", "new1@example.com")
    put = [r for r in fake.requests if r.method == "PUT"][-1]
    assert put.path.startswith("/api/v1/customers/cio_") and json.loads(put.body) == {
        "email": "new1@example.com"
    }
    moved = dest.read_profile("new1@example.com")
    assert moved is not None and moved.opted_out is True  # the same profile, kept
    assert dest.read_profile("person1@example.com") is None
    assert fake.person("new1@example.com")["support_state"] == "open_issue"

    with pytest.raises(ProfileError, match="segments"):
        dest.remove_from_list("new1@example.com", "7")
    dest.remove_from_list("new1@example.com", "topic_4")
    put = [r for r in fake.requests if r.method == "PUT"][-1]
    assert json.loads(put.body) == {
        "cio_subscription_preferences.topics.topic_4": False,
        "_update": True,
    }
    assert dest.read_profile("new1@example.com").lists == []
    with pytest.raises(ProfileError) as missing:
        dest.change_email("nobody@example.com", "x@example.com")
    assert missing.value.status == 404


def test_sidebar_needs_the_app_api_key(vendor: Any) -> None:
    _fake, make = vendor
    dest = make(app_api_key=None)
    with pytest.raises(ProfileError, match="app_api_key"):
        dest.read_profile("a@example.com")
    wrong = make(app_api_key="wrong")
    with pytest.raises(ProfileError) as denied:
        wrong.read_profile("a@example.com")
    assert denied.value.status == 401


def test_create_from_config_through_the_registry() -> None:
    dest = registry.create(
        config(segments=["vip"]), transport=httpx.MockTransport(lambda r: httpx.Response(200))
    )
    assert isinstance(dest, CustomerIODestination)
    assert (dest.name, dest.type, dest.purpose, dest.segments) == (
        "cio",
        "customerio",
        "email",
        ["vip"],
    )
    assert (
        dest.track_url == "https://track.customer.io" and dest.app_url == "https://api.customer.io"
    )
    assert dest.capabilities.kinds == frozenset({"profile", "event", "erase", "unsubscribe"})
    dest.close()
    bad = DestinationSettings.model_validate({"name": "c", "type": "customerio", "site_id": "s"})
    with pytest.raises(ValueError, match="api_key"):
        create(bad)


def test_unsubscribe_sets_the_reserved_attribute_without_creating_anyone(vendor: Any) -> None:
    """Issue 18 §1: withdrawn email consent is Customer.io's ``unsubscribed`` attribute."""
    fake, make = vendor
    dest = make()
    assert dest.send([item(1)])[0].kind == "ok"
    stranger = item(2, "unsubscribe")
    outcomes = dest.send([item(1, "unsubscribe"), stranger])
    assert [o.kind for o in outcomes] == ["ok", "ok"]
    puts = [r for r in fake.requests if r.method == "PUT"]
    assert [r.path for r in puts] == [
        "/api/v1/customers/person1@example.com",
        "/api/v1/customers/person2@example.com",
    ]
    assert json.loads(puts[0].body) == {"unsubscribed": True, "_update": True}
    assert fake.person("person1@example.com")["unsubscribed"] is True
    assert fake.person("person2@example.com") is None  # _update never creates a person


def test_unsubscribe_failures_are_classified(vendor: Any) -> None:
    fake, make = vendor
    fake.fail_next(1, 429, retry_after=3)
    outcome = make().send([item(1, "unsubscribe")])[0]
    assert (outcome.kind, outcome.retry_after) == ("retry", 3)
    # no identifier Customer.io can match: skipped, not dead-lettered (issue 18 §6)
    assert make().send([item(1, "unsubscribe", identifiers=Identifiers())])[0].kind == "skip"


def test_sidebar_shows_engagement_from_the_messages_sent(vendor: Any) -> None:
    """Issue 22: last open and click from the App API's messages of the person."""
    fake, make = vendor
    dest = make()
    assert dest.send([item(1)])[0].kind == "ok"
    opened, clicked = datetime(2026, 11, 3, 9, tzinfo=UTC), datetime(2026, 11, 3, 10, tzinfo=UTC)
    fake.record_delivery("person1@example.com", sent=int(opened.timestamp()) - 60)
    fake.record_delivery(
        "person1@example.com",
        sent=int(opened.timestamp()) - 30,
        opened=int(opened.timestamp()),
        clicked=int(clicked.timestamp()),
    )
    profile = dest.read_profile("person1@example.com")
    assert profile is not None
    assert (profile.last_open_at, profile.last_click_at) == (opened, clicked)
    assert any(r.path.endswith("/messages") for r in fake.requests)


def test_the_snapshot_is_what_was_sent_not_the_second_it_arrived(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The conformance suite compares two fakes fed the same items a moment apart; the
    ``created_at`` the fake stamps a new person with from its own clock must not count (it
    made the suite fail whenever a second ticked between the two sends)."""
    seconds = iter(range(1_800_000_000, 1_800_001_000))
    monkeypatch.setattr("tactful.testing.fakes.customerio.time.time", lambda: next(seconds))
    snapshots = []
    for _ in range(2):
        fake = FakeCustomerIO()
        with serving(fake, _create) as (_, make):
            assert [o.kind for o in make().send([item(1), item(2)])] == ["ok", "ok"]
            snapshots.append(fake.snapshot())
    assert snapshots[0] == snapshots[1]
