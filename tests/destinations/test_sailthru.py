"""Sailthru destination: the shared suite against the fake, and Sailthru specifics."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tactful.config.models import DestinationSettings
from tactful.destinations import registry
from tactful.destinations.base import Destination, Identifiers, Item, ItemKind
from tactful.destinations.profiles import ProfileActions, ProfileError
from tactful.destinations.sailthru import SailthruDestination, create, signature, signed_params
from tactful.testing.conformance import Conformance, conformance_tests, serving
from tactful.testing.fakes.sailthru import FakeSailthru
from tactful.testing.sim.server import run_in_thread

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
VARS = {
    "support_state": "recently_resolved",
    "last_resolved_at": datetime(2026, 2, 20, 8, 0, tzinfo=UTC),
    "zendesk_id": 42,
    "zendesk_tags": ["vip", "eu"],
    "zendesk_health": "neutral",
}


def config(base_url: str | None = None, **settings: Any) -> DestinationSettings:
    data: dict[str, Any] = {
        "name": "sailthru",
        "type": "sailthru",
        "api_key": "st-key",
        "api_secret": "st-secret",
        **settings,
    }
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
    default = VARS if kind == "profile" else {"reason": "refund"}
    props = default if props is None else props
    return Item(f"k{i}-{kind}-{name}", kind, f"p{i}", AT, ids, name, None, props)


class TestSailthruConformance(Conformance):
    """Profiles only: /user is an upsert, while /event has no id to deduplicate on."""

    def make(self, base_url: str) -> Destination:
        return create(config(base_url))

    def make_fake(self) -> Any:
        return FakeSailthru()

    def items(self, n: int) -> list[Item]:
        return [item(i) for i in range(n)]

    def ordered(self) -> list[Item]:
        return [item(1, name="v1"), item(1, name="v2", props={**VARS, "open_ticket_count": 2})]


conformance_tests(TestSailthruConformance)


def _create(base_url: str, **settings: Any) -> SailthruDestination:
    return create(config(base_url, **settings))


@pytest.fixture
def vendor() -> Iterator[tuple[FakeSailthru, Callable[..., SailthruDestination]]]:
    with serving(FakeSailthru(), _create) as served:
        yield served


def official_signature(params: dict[str, Any], secret: str) -> str:
    """The sailthru-python-client algorithm: secret + sorted str() of the (nested) values."""

    def values(obj: Any) -> list[Any]:
        if isinstance(obj, dict):
            return [v for value in obj.values() for v in values(value)]
        return [obj]

    return hashlib.md5(
        (secret + "".join(sorted(str(v) for v in values(params)))).encode()
    ).hexdigest()


def test_signature_matches_the_official_algorithm() -> None:
    params = signed_params("st-key", "st-secret", {"id": "a@example.com", "key": "email"})
    assert params == {
        "api_key": "st-key",
        "format": "json",
        "json": '{"id":"a@example.com","key":"email"}',
        "sig": "754fb0ecf390324656ac1532475cc408",
    }
    unsigned = {k: v for k, v in params.items() if k != "sig"}
    assert (
        params["sig"] == official_signature(unsigned, "st-secret") == signature(params, "st-secret")
    )


def test_profile_request_is_a_signed_form_post(vendor: Any) -> None:
    fake, make = vendor
    assert make().send([item(1)])[0].kind == "ok"
    (request,) = fake.requests
    assert (request.method, request.path) == ("POST", "/user")
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    form = dict(parse_qsl(request.body.decode()))
    assert set(form) == {"api_key", "format", "json", "sig"}
    assert (form["api_key"], form["format"]) == ("st-key", "json")
    assert form["sig"] == official_signature(
        {k: v for k, v in form.items() if k != "sig"}, "st-secret"
    )
    assert json.loads(form["json"]) == {
        "id": "person1@example.com",
        "key": "email",
        "vars": {
            "support_state": "recently_resolved",
            "last_resolved_at": "2026-02-20T08:00:00Z",
            "zendesk_id": 42,
            "zendesk_tags": ["vip", "eu"],
            "zendesk_health": "neutral",
            "zendesk_sync": True,  # the vars Sailthru's Zendesk integration documents
            "zendesk_active": True,
        },
    }
    assert fake.user("person1@example.com")["vars"]["zendesk_health"] == "neutral"


def test_events_and_external_ids(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    crm = Identifiers(external_ids=("crm-9",))
    outcomes = dest.send([item(1, "event", name="zendesk_csat_received"), item(2, identifiers=crm)])
    assert [o.kind for o in outcomes] == ["ok", "ok"]
    assert json.loads(fake.params[0]["json"]) == {
        "id": "person1@example.com",
        "key": "email",
        "event": "zendesk_csat_received",
        "vars": {"reason": "refund"},
    }
    assert fake.requests[0].path == "/event"
    assert json.loads(fake.params[1]["json"])["key"] == "extid"
    assert fake.snapshot()["events"] == [
        {
            "user": "person1@example.com",
            "event": "zendesk_csat_received",
            "vars": {"reason": "refund"},
        }
    ]
    outcome = dest.send([item(3, identifiers=Identifiers(phones=("+15550000003",)))])[0]
    assert outcome.kind == "skip" and "no usable identifier" in outcome.error


def test_erase_is_a_signed_delete_and_missing_users_count_as_erased(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    assert dest.send([item(1)])[0].kind == "ok"
    assert [o.kind for o in dest.send([item(1, "erase"), item(1, "erase")])] == ["ok", "ok"]
    delete = fake.requests[1]
    assert (delete.method, delete.path, delete.body) == ("DELETE", "/user", b"")
    assert json.loads(fake.params[1]["json"]) == {"id": "person1@example.com", "key": "email"}
    assert fake.requests[2].status == 404
    assert fake.user("person1@example.com") is None


def test_bad_credentials_and_bad_email_are_rejected(vendor: Any) -> None:
    _fake, make = vendor
    wrong_secret = make(api_secret="nope").send([item(1)])[0]
    assert (wrong_secret.kind, wrong_secret.status) == ("reject", 401)
    assert wrong_secret.error == "Sailthru error 5: Authentication failed"
    wrong_key = make(api_key="nope").send([item(1)])[0]
    assert wrong_key.error == "Sailthru error 3: Invalid API key"
    bad = make().send([item(2, identifiers=Identifiers(emails=("not-an-email",)))])[0]
    assert (bad.kind, bad.status) == ("reject", 400) and "error 11" in bad.error


def test_rate_limit_error_43_uses_the_reset_header() -> None:
    fake = FakeSailthru(per_second=1)
    base_url, stop = run_in_thread(fake.app)
    dest = create(config(base_url))
    try:
        outcomes = dest.send([item(1), item(2), item(3)])
        assert [o.kind for o in outcomes] == ["ok", "retry", "retry"]
        assert "Sailthru error 43" in outcomes[1].error and outcomes[1].status == 429
        assert outcomes[1].retry_after is not None and 0 <= outcomes[1].retry_after <= 2
        assert len(fake.requests) == 2
    finally:
        dest.close()
        stop()


def test_error_reported_with_200_is_classified() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"error": 9, "errormsg": "Internal Error"})

    dest = create(config(), transport=httpx.MockTransport(handler))
    outcome = dest.send([item(1)])[0]
    assert (outcome.kind, outcome.error) == ("retry", "Sailthru error 9: Internal Error")
    assert urlsplit(dest.base_url).netloc == "api.sailthru.com"


def sidebar(dest: SailthruDestination) -> ProfileActions:
    return dest  # checked by mypy: the destination offers the sidebar's actions


def test_sidebar_reads_and_changes_the_profile(vendor: Any) -> None:
    fake, make = vendor
    dest = make()
    opened = datetime(2026, 2, 25, 18, 30, tzinfo=UTC)
    fake.add_user("person1@example.com", {"Newsletter": 1, "Deals": 1}, open_time=opened)
    assert dest.send([item(1)])[0].kind == "ok"
    profile = dest.read_profile("person1@example.com")
    assert profile is not None
    assert (profile.lists, profile.opted_out) == (["Deals", "Newsletter"], False)
    assert profile.last_open_at == opened and profile.signup_at is not None
    assert (profile.last_click_at, profile.raw["vars"]["zendesk_id"]) == (None, 42)
    get = fake.requests[-1]
    assert get.method == "GET" and get.body == b""
    query = json.loads(fake.params[-1]["json"])
    assert query["fields"] == {
        "keys": 1,
        "vars": 1,
        "lists": 1,
        "optout_email": 1,
        "engagement": 1,
        "activity": 1,
    }

    dest.remove_from_list("person1@example.com", "Deals")
    assert json.loads(fake.params[-1]["json"])["lists"] == {"Deals": 0}
    dest.set_optout("person1@example.com", True)
    assert json.loads(fake.params[-1]["json"])["optout_email"] == "all"
    after = dest.read_profile("person1@example.com")
    assert after is not None and (after.lists, after.opted_out) == (["Newsletter"], True)
    dest.set_optout("person1@example.com", False)
    assert fake.user("person1@example.com")["optout_email"] == "none"

    dest.change_email("person1@example.com", "new1@example.com")
    assert json.loads(fake.params[-1]["json"]) == {
        "id": "person1@example.com",
        "key": "email",
        "keys": {"email": "new1@example.com"},
    }
    moved = dest.read_profile("new1@example.com")
    assert moved is not None and moved.lists == ["Newsletter"]
    assert moved.raw["vars"]["support_state"] == "recently_resolved"  # the profile was kept
    assert dest.read_profile("person1@example.com") is None

    assert dest.send([item(2)])[0].kind == "ok"
    with pytest.raises(ProfileError, match="conflict") as taken:
        dest.change_email("new1@example.com", "person2@example.com")
    assert taken.value.status == 400


def test_create_from_config_through_the_registry() -> None:
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"ok": True}))
    dest = registry.create(config(segments=["vip"]), transport=transport)
    assert isinstance(dest, SailthruDestination)
    assert (dest.name, dest.type, dest.purpose, dest.segments) == (
        "sailthru",
        "sailthru",
        "email",
        ["vip"],
    )
    dest.close()
    with pytest.raises(ValueError, match="api_secret"):
        create(
            DestinationSettings.model_validate({"name": "s", "type": "sailthru", "api_key": "k"})
        )


def test_unsubscribe_opts_the_user_out_of_all_email(vendor: Any) -> None:
    """Issue 18 §1: withdrawn email consent is Sailthru's ``optout_email: all``."""
    fake, make = vendor
    dest = make()
    assert dest.send([item(1)])[0].kind == "ok"
    assert dest.send([item(1, "unsubscribe")])[0].kind == "ok"
    form = dict(parse_qsl(fake.requests[-1].body.decode()))
    assert (fake.requests[-1].method, fake.requests[-1].path) == ("POST", "/user")
    assert json.loads(form["json"]) == {
        "id": "person1@example.com",
        "key": "email",
        "optout_email": "all",
        "vars": {"zendesk_sync": False},
    }
    assert fake.user("person1@example.com")["optout_email"] == "all"
    assert fake.user("person1@example.com")["vars"]["zendesk_sync"] is False


def test_a_person_without_a_zendesk_user_is_not_zendesk_active(vendor: Any) -> None:
    fake, make = vendor
    assert make().send([item(2, props={"support_state": "none"})])[0].kind == "ok"
    assert fake.user("person2@example.com")["vars"] == {
        "support_state": "none",
        "zendesk_sync": True,
        "zendesk_active": False,
    }
