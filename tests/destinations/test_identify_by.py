"""``identify_by``: each ESP and analytics destination addresses a person by the brand's own
identifiers, in a configured fallback order, for profiles, events, unsubscribes and erasure
(issue 22, "Identity that joins")."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
import pytest

from tactful.config import ConfigError, settings_from_toml
from tactful.config.models import DestinationSettings
from tactful.destinations import registry
from tactful.destinations.base import Identifiers, Item, ItemKind
from tactful.destinations.identify import IdentifyBy, identify_by_of, pick
from tactful.testing.fakes.analytics import FakeSegment
from tactful.testing.fakes.customerio import FakeCustomerIO
from tactful.testing.fakes.klaviyo import FakeKlaviyo
from tactful.testing.fakes.sailthru import FakeSailthru

AT = datetime(2026, 12, 1, tzinfo=UTC)
IDS = Identifiers(
    emails=("ann@example.com",), external_ids=(" CUST-42 ",), zendesk_user_ids=("9001",)
)
SETTINGS = {
    "customerio": {"site_id": "site-1", "api_key": "track-key"},
    "klaviyo": {"api_key": "pk_test"},
    "sailthru": {"api_key": "st-key", "api_secret": "st-secret"},
    "segment": {"write_key": "segment-write-key"},
}


def item(kind: ItemKind, ids: Identifiers = IDS, name: str = "") -> Item:
    props = {"support_state": "refund_risk"} if kind in ("profile", "event") else {}
    return Item(f"k-{kind}", kind, "p_0001", AT, ids, name, None, props)


def config(type_name: str, base_url: str | None = None, **keys: Any) -> DestinationSettings:
    data = {"name": "d", "type": type_name, **SETTINGS.get(type_name, {}), **keys}
    if base_url:
        data["base_url"] = base_url
    return DestinationSettings.model_validate(data)


def declared(type_name: str) -> IdentifyBy:
    """The ``identify_by`` a destination type declares in its module's ``SPEC``."""
    identify = registry.spec(type_name).identify_by
    assert identify is not None
    return identify


# -- the pure part --------------------------------------------------------------------------


def test_pick_takes_the_first_kind_the_item_has_trimmed() -> None:
    assert pick(item("event"), ("external_id", "email")) == ("external_id", "CUST-42")
    assert pick(item("event"), ("phone", "zendesk_user_id")) == ("zendesk_user_id", "9001")
    assert pick(item("event", Identifiers()), ("email", "person_id")) == ("person_id", "p_0001")
    assert pick(item("event", Identifiers(emails=("  ",))), ("email",)) is None


def test_defaults_and_the_older_user_id_setting() -> None:
    assert identify_by_of(config("customerio"), declared("customerio")) == ("email", "external_id")
    assert identify_by_of(config("segment"), declared("segment")) == ("external_id", "person_id")
    legacy = config("segment", user_id="person_id")
    assert identify_by_of(legacy, declared("segment")) == ("person_id",)
    assert identify_by_of(config("klaviyo", identify_by="phone"), declared("klaviyo")) == ("phone",)


@pytest.mark.parametrize(
    ("type_name", "value", "message"),
    [
        ("customerio", ["external_id", "sms"], "unknown identifier 'sms'"),
        ("customerio", ["phone"], "unknown identifier 'phone'"),  # Klaviyo only
        ("segment", ["email", "email"], "lists an identifier twice"),
        ("sailthru", [], "must be a non-empty list"),
        ("sailthru", [3], "must be a non-empty list"),
        ("meta_audience", ["email"], "is not used by type 'meta_audience'"),
    ],
)
def test_identify_by_is_validated(type_name: str, value: Any, message: str) -> None:
    extra = {"segment": "s", "audience_id": "1", "access_token": "t"}
    keys = extra if type_name == "meta_audience" else {}
    problems = config(type_name, identify_by=value, **keys).problems()
    assert any(key == "identify_by" and message in text for key, text in problems), problems


def test_a_config_file_reports_a_bad_identify_by_with_its_place() -> None:
    text = """
[[destinations]]
name = "cio"
type = "customerio"
site_id = "s"
api_key = "k"
identify_by = ["external_id", "nickname"]
"""
    with pytest.raises(ConfigError) as info:
        settings_from_toml(text, environ={})
    assert any("identify_by" in e and "nickname" in e for e in info.value.errors)


def test_every_type_with_identify_by_defaults_within_what_it_accepts() -> None:
    declared = [s.identify_by for s in registry.specs() if s.identify_by is not None]
    assert len(declared) == 6  # the three ESPs and the three analytics tools
    for identify in declared:
        assert identify.default and set(identify.default) <= set(identify.accepted)


# -- ESPs: profiles, events, unsubscribes and erasure alike ---------------------------------


def test_customerio_addresses_people_by_the_configured_identifier(serve: Any) -> None:
    fake = FakeCustomerIO()
    dest = registry.create(config("customerio", serve(fake), identify_by=["external_id", "email"]))
    items = [item("profile"), item("event", name="zendesk_ticket_created"), item("erase")]
    assert [o.kind for o in dest.send(items)] == ["ok"] * 3
    batches = [json.loads(r.body)["batch"] for r in fake.requests]
    assert [e["identifiers"] for b in batches for e in b] == [{"id": "CUST-42"}] * 3
    assert dest.send([item("unsubscribe")])[0].kind == "ok"
    assert fake.requests[-1].path == "/api/v1/customers/CUST-42"
    dest.close()


def test_sailthru_addresses_people_by_extid(serve: Any) -> None:
    fake = FakeSailthru()
    dest = registry.create(config("sailthru", serve(fake), identify_by=["zendesk_user_id"]))
    kinds: list[ItemKind] = ["profile", "unsubscribe", "erase"]
    assert [dest.send([item(k)])[0].kind for k in kinds] == ["ok"] * 3
    posts = [dict(parse_qsl(r.body.decode())) for r in fake.requests if r.method == "POST"]
    assert {(json.loads(p["json"])["id"], json.loads(p["json"])["key"]) for p in posts} == {
        ("9001", "extid")
    }
    assert fake.snapshot()["users"] == {}  # erased by extid
    dest.close()


def test_klaviyo_addresses_profiles_by_external_id_and_erases_after_a_lookup(
    serve: Any,
) -> None:
    fake = FakeKlaviyo()
    dest = registry.create(config("klaviyo", serve(fake), identify_by=["external_id"]))
    assert dest.send([item("profile")])[0].kind == "ok"
    profile = json.loads(fake.requests[0].body)["data"]["attributes"]
    assert profile["external_id"] == "CUST-42" and "email" not in profile
    assert dest.send([item("erase")])[0].kind == "ok"
    lookup, job = fake.requests[1], json.loads(fake.requests[2].body)
    assert (lookup.method, lookup.path) == ("GET", "/api/profiles")
    assert "id" in job["data"]["attributes"]["profile"]["data"]
    assert fake.snapshot()["profiles"] == {}
    dest.close()


# -- analytics ----------------------------------------------------------------------------


def test_segment_user_id_follows_identify_by(serve: Any) -> None:
    fake = FakeSegment()
    base_url = serve(fake)
    for order, expected in (
        (["email", "person_id"], "ann@example.com"),
        (["zendesk_user_id"], "9001"),
        (None, "CUST-42"),  # the default: the brand's external id
    ):
        keys = {} if order is None else {"identify_by": order}
        dest = registry.create(config("segment", base_url, **keys))
        assert dest.send([item("event", name="support_state_changed")])[0].kind == "ok"
        assert orjson.loads(fake.requests[-1].body)["batch"][0]["userId"] == expected
        dest.close()
    dest = registry.create(config("segment", base_url, identify_by=["email"]))
    outcome = dest.send([item("event", Identifiers(), name="x")])[0]
    assert outcome.kind == "reject" and "identify_by" in outcome.error
    dest.close()
