"""Klaviyo destination: the shared suite against the fake, and Klaviyo specifics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tactful.config.models import DestinationSettings
from tactful.destinations import registry
from tactful.destinations.base import Destination, Identifiers, Item, ItemKind
from tactful.destinations.klaviyo import REVISION, KlaviyoDestination, create
from tactful.destinations.profiles import ProfileActions, ProfileError
from tactful.testing.conformance import Conformance, conformance_tests, serving
from tactful.testing.fakes.klaviyo import FakeKlaviyo
from tactful.testing.sim.server import run_in_thread

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
STATE = {
    "has_open_ticket": False,
    "ticket_count": 3,
    "last_resolved_at": datetime(2026, 2, 20, 8, 0, tzinfo=UTC),
    "csat_score": 2,
    "zendesk_health": "unsatisfied",
    "zendesk_tickets": [{"id": 1, "status": "solved", "subject": "Refund"}],
}


def config(base_url: str | None = None, **settings: Any) -> DestinationSettings:
    data: dict[str, Any] = {"name": "klaviyo", "type": "klaviyo", "api_key": "pk_test", **settings}
    if base_url:
        data["base_url"] = base_url
    return DestinationSettings.model_validate(data)


def item(
    i: int,
    kind: ItemKind = "profile",
    *,
    name: str = "",
    props: dict[str, Any] | None = None,
    identifiers: Identifiers | None = None,
) -> Item:
    ids = identifiers or Identifiers(emails=(f"person{i}@example.com",))
    default = STATE if kind == "profile" else {"reason": "refund", "at": AT}
    props = default if props is None else props
    return Item(f"k{i}-{kind}-{name}", kind, f"p{i}", AT, ids, name, None, props)


class TestKlaviyoConformance(Conformance):
    def make(self, base_url: str) -> Destination:
        return create(config(base_url))

    def make_fake(self) -> Any:
        return FakeKlaviyo()

    def items(self, n: int) -> list[Item]:
        kinds: list[ItemKind] = ["profile", "event"]
        return [item(i, kinds[i % 2], name="zendesk_ticket_resolved") for i in range(n)]

    def ordered(self) -> list[Item]:
        return [item(1, name="v1"), item(1, name="v2", props={**STATE, "open_ticket_count": 2})]


conformance_tests(TestKlaviyoConformance)


def _create(base_url: str, **settings: Any) -> KlaviyoDestination:
    return create(config(base_url, **settings))


@pytest.fixture
def vendor() -> Iterator[tuple[FakeKlaviyo, Callable[..., KlaviyoDestination]]]:
    with serving(FakeKlaviyo(), _create) as served:
        yield served


def bodies(fake: FakeKlaviyo, path: str) -> list[Any]:
    return [json.loads(r.body) for r in fake.requests if r.path == path and r.body]


def test_profile_import_request_format(vendor: Any) -> None:
    fake, make = vendor
    assert make().send([item(1)])[0].kind == "ok"
    (request,) = fake.requests
    assert (request.method, request.path, request.status) == ("POST", "/api/profile-import", 201)
    assert request.headers["authorization"] == "Klaviyo-API-Key pk_test"
    assert request.headers["revision"] == REVISION
    assert request.headers["content-type"] == "application/vnd.api+json"
    assert request.headers["accept"] == "application/vnd.api+json"
    assert json.loads(request.body) == {
        "data": {
            "type": "profile",
            "attributes": {
                "email": "person1@example.com",
                "properties": {
                    "has_open_ticket": False,
                    "ticket_count": 3,
                    "last_resolved_at": "2026-02-20T08:00:00Z",
                    "csat_score": 2,
                    "zendesk_health": "unsatisfied",
                    "zendesk_tickets": [{"id": 1, "status": "solved", "subject": "Refund"}],
                },
            },
        }
    }
    assert make().send([item(1, props={"csat_score": 5})])[0].kind == "ok"
    assert fake.requests[-1].status == 200  # an update of the same profile
    props = fake.profile("person1@example.com")["attributes"]["properties"]
    assert props["csat_score"] == 5 and props["zendesk_health"] == "unsatisfied"


def test_event_request_format_and_unique_id_dedupe(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    event = item(1, "event", name="zendesk_ticket_created")
    assert [o.kind for o in dest.send([event, event])] == ["ok", "ok"]
    first, second = bodies(fake, "/api/events")
    assert (
        first
        == second
        == {
            "data": {
                "type": "event",
                "attributes": {
                    "properties": {"reason": "refund", "at": "2026-03-01T12:00:00Z"},
                    "time": "2026-03-01T12:00:00Z",
                    "unique_id": event.key,
                    "metric": {
                        "data": {"type": "metric", "attributes": {"name": "zendesk_ticket_created"}}
                    },
                    "profile": {
                        "data": {"type": "profile", "attributes": {"email": "person1@example.com"}}
                    },
                },
            }
        }
    )
    assert all(r.status == 202 for r in fake.requests)
    assert len(fake.snapshot()["events"]) == 1


def test_external_id_when_no_email(vendor: Any) -> None:
    fake, make = vendor
    crm = item(1, identifiers=Identifiers(external_ids=("crm-1",)))
    assert make().send([crm])[0].kind == "ok"
    assert bodies(fake, "/api/profile-import")[0]["data"]["attributes"]["external_id"] == "crm-1"
    no_ids = item(2, identifiers=Identifiers(phones=("+15550000002",)))
    outcome = make().send([no_ids])[0]
    assert outcome.kind == "skip" and "no usable identifier" in outcome.error


def test_erase_by_email_and_by_external_id(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    crm_ids = Identifiers(external_ids=("crm-2",))
    assert [o.kind for o in dest.send([item(1), item(2, identifiers=crm_ids)])] == ["ok", "ok"]
    erase_crm = item(2, "erase", identifiers=crm_ids)
    assert [o.kind for o in dest.send([item(1, "erase"), erase_crm])] == ["ok", "ok"]
    jobs = bodies(fake, "/api/data-privacy-deletion-jobs")
    assert jobs[0] == {
        "data": {
            "type": "data-privacy-deletion-job",
            "attributes": {
                "profile": {
                    "data": {"type": "profile", "attributes": {"email": "person1@example.com"}}
                }
            },
        }
    }
    assert jobs[1]["data"]["attributes"]["profile"]["data"]["id"]
    assert fake.snapshot()["profiles"] == {}
    lookup = next(r for r in fake.requests if r.method == "GET")
    assert lookup.path == "/api/profiles"
    assert dest.send([erase_crm])[0].kind == "ok"  # nobody left: nothing to do


def test_conflict_is_rejected_not_retried(vendor: Any) -> None:
    fake, make = vendor
    fake.fail_next(1, 409)
    outcome = make().send([item(1)])[0]
    assert (outcome.kind, outcome.status) == ("reject", 409)
    assert "injected 409" in outcome.error


def test_fake_validates_key_revision_and_shape(vendor: Any) -> None:
    _fake, make = vendor
    denied = make(api_key="wrong").send([item(1)])[0]
    assert (denied.kind, denied.status) == ("reject", 401)
    assert "private key" in denied.error
    bad_revision = make(revision="latest").send([item(1)])[0]
    assert (bad_revision.kind, bad_revision.status) == ("reject", 400)
    assert "revision" in bad_revision.error
    long_metric = make().send([item(2, "event", name="m" * 130)])[0]
    assert long_metric.kind == "reject" and "/data/attributes/metric" in long_metric.error


def test_revision_is_configurable(vendor: Any) -> None:
    fake, make = vendor
    assert make(revision="2024-10-15").send([item(1)])[0].kind == "ok"
    assert fake.requests[0].headers["revision"] == "2024-10-15"


def test_throttling_holds_the_rest_of_the_batch() -> None:
    fake = FakeKlaviyo(burst_per_second=1)
    base_url, stop = run_in_thread(fake.app)
    dest = create(config(base_url))
    try:
        outcomes = dest.send([item(1), item(2), item(3)])
        assert [(o.kind, o.retry_after) for o in outcomes] == [
            ("ok", None),
            ("retry", 1.0),
            ("retry", 1.0),
        ]
        assert "throttled" in outcomes[1].error
        assert len(fake.requests) == 2
    finally:
        dest.close()
        stop()


def test_connection_failure_is_retry() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    dest = create(config(), transport=httpx.MockTransport(refuse))
    assert dest.send([item(1)])[0].kind == "retry"


def sidebar(dest: KlaviyoDestination) -> ProfileActions:
    return dest  # checked by mypy: the destination offers the sidebar's actions


def test_sidebar_reads_and_changes_the_profile(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    assert dest.send([item(1)])[0].kind == "ok"
    fake.add_to_list("person1@example.com", "LsT1", "Newsletter")
    profile = dest.read_profile("person1@example.com")
    assert profile is not None
    assert (profile.lists, profile.opted_out) == (["LsT1"], False)
    assert profile.raw["list_names"] == {"LsT1": "Newsletter"} and profile.signup_at is not None
    query = next(r for r in fake.requests if r.method == "GET")
    assert query.path == "/api/profiles"

    dest.set_optout("person1@example.com", True)
    job = bodies(fake, "/api/profile-subscription-bulk-delete-jobs")[0]
    assert job["data"]["type"] == "profile-subscription-bulk-delete-job"
    person = job["data"]["attributes"]["profiles"]["data"][0]["attributes"]
    assert person == {
        "email": "person1@example.com",
        "subscriptions": {"email": {"marketing": {"consent": "UNSUBSCRIBED"}}},
    }
    assert dest.read_profile("person1@example.com").opted_out is True
    dest.set_optout("person1@example.com", False)
    assert bodies(fake, "/api/profile-subscription-bulk-create-jobs")
    assert dest.read_profile("person1@example.com").opted_out is False

    dest.remove_from_list("person1@example.com", "LsT1")
    removal = next(r for r in fake.requests if r.method == "DELETE")
    assert removal.path == "/api/lists/LsT1/relationships/profiles" and removal.status == 204
    assert dest.read_profile("person1@example.com").lists == []

    dest.change_email("person1@example.com", "new1@example.com")
    patch = next(r for r in fake.requests if r.method == "PATCH")
    pid = json.loads(patch.body)["data"]["id"]
    assert patch.path == f"/api/profiles/{pid}"
    moved = fake.profile("new1@example.com")
    assert moved is not None and moved["attributes"]["properties"]["csat_score"] == 2
    assert dest.read_profile("person1@example.com") is None

    with pytest.raises(ProfileError) as missing:
        dest.change_email("nobody@example.com", "x@example.com")
    assert missing.value.status == 404
    assert dest.send([item(2)])[0].kind == "ok"
    with pytest.raises(ProfileError) as taken:
        dest.change_email("new1@example.com", "person2@example.com")
    assert taken.value.status == 409


def test_create_from_config_through_the_registry() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(202))
    dest = registry.create(config(segments=["vip"]), transport=transport)
    assert isinstance(dest, KlaviyoDestination)
    assert (dest.name, dest.type, dest.purpose, dest.segments) == (
        "klaviyo",
        "klaviyo",
        "email",
        ["vip"],
    )
    assert dest.base_url == "https://a.klaviyo.com"
    dest.close()
    with pytest.raises(ValueError, match="api_key"):
        create(DestinationSettings.model_validate({"name": "k", "type": "klaviyo"}))


def test_unsubscribe_is_a_global_bulk_unsubscribe_job(vendor: Any) -> None:
    """Issue 18 §1: withdrawn email consent is Klaviyo's "Bulk Unsubscribe Profiles"."""
    fake, make = vendor
    dest = make()
    assert dest.send([item(1)])[0].kind == "ok"
    assert dest.send([item(1, "unsubscribe")])[0].kind == "ok"
    (job,) = bodies(fake, "/api/profile-subscription-bulk-delete-jobs")
    assert job == {
        "data": {
            "type": "profile-subscription-bulk-delete-job",
            "attributes": {
                "profiles": {
                    "data": [
                        {
                            "type": "profile",
                            "attributes": {
                                "email": "person1@example.com",
                                "subscriptions": {
                                    "email": {"marketing": {"consent": "UNSUBSCRIBED"}}
                                },
                            },
                        }
                    ]
                }
            },
        }
    }
    assert fake.profile("person1@example.com")["consent"] == "UNSUBSCRIBED"


def test_unsubscribe_by_external_id_looks_up_the_email(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    with fake.lock:  # a profile the brand created with both identifiers
        fake._upsert({"email": "ext@example.com", "external_id": "CUST-1"})
    only_id = Identifiers(external_ids=("CUST-1",))
    assert dest.send([item(1, "unsubscribe", identifiers=only_id)])[0].kind == "ok"
    assert fake.profile("ext@example.com")["consent"] == "UNSUBSCRIBED"
    unknown = Identifiers(external_ids=("CUST-404",))
    before = len(bodies(fake, "/api/profile-subscription-bulk-delete-jobs"))
    assert dest.send([item(2, "unsubscribe", identifiers=unknown)])[0].kind == "ok"
    assert len(bodies(fake, "/api/profile-subscription-bulk-delete-jobs")) == before
