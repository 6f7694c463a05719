"""The registry is derived from what each destination module declares (its ``SPEC``)."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tactful.config import MASK, settings_from_toml
from tactful.config.models import DestinationSettings
from tactful.core.messages import ConsentChanged, MembershipChanged, Message, StateChanged
from tactful.delivery.router import Route, route
from tactful.destinations import registry

DOCS = Path(__file__).resolve().parents[2] / "docs" / "config.md"
PACKAGE = Path(registry.__file__).resolve().parents[1]


def _type_tables(tree: ast.AST) -> list[int]:
    """Lines of dict, set, list or tuple literals that name two destination types or more."""
    types = set(registry.MODULES)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            items: list[ast.expr | None] = list(node.keys)
        elif isinstance(node, ast.Set | ast.List | ast.Tuple):
            items = list(node.elts)
        else:
            continue
        named = {i.value for i in items if isinstance(i, ast.Constant)} & types
        if len(named) >= 2:
            found.append(node.lineno)
    return found


def test_no_table_of_destination_types_outside_the_registry() -> None:
    """What a type is and does is in its module's ``SPEC``: a table keyed by type names
    anywhere else (the sidebar's vendor names, doctor's probes were two) is a second place
    that a new type is forgotten in. Test data under ``tactful/testing`` aside."""
    tables = {
        str(p.relative_to(PACKAGE)): lines
        for p in sorted(PACKAGE.rglob("*.py"))
        if p.name != "registry.py" or p.parent.name != "destinations"
        if not p.is_relative_to(PACKAGE / "testing")
        if (lines := _type_tables(ast.parse(p.read_text())))
    }
    assert tables == {}


def test_the_table_check_sees_a_table() -> None:
    tree = ast.parse(
        'NAMES = {"customerio": "Customer.io", "klaviyo": "Klaviyo"}\nx = ("segment",)'
    )
    assert _type_tables(tree) == [1]


def test_docs_config_tables_are_the_registrys() -> None:
    text = DOCS.read_text()
    found = re.search(r"<!-- destination tables:[^\n]*-->\n(.*?)<!-- end of", text, re.S)
    assert found, "docs/config.md lost its generated destination tables"
    assert found.group(1) == registry.docs_tables(), (
        "docs/config.md and the destination SPECs disagree; paste "
        "tactful.destinations.registry.docs_tables() between the markers"
    )


@pytest.mark.parametrize("type_name", list(registry.MODULES))
def test_each_module_declares_its_type_and_documents_every_key(type_name: str) -> None:
    spec = registry.spec(type_name)
    assert spec.type == type_name
    assert spec.summary
    for key, field in spec.config.model_fields.items():
        assert field.description, f"{type_name}.{key} is undocumented"
        assert key not in DestinationSettings.SHARED, f"{type_name} redeclares {key}"


@pytest.mark.parametrize(
    ("key", "hint"), [("regoin", "region"), ("erase_acton", "erase_action"), ("segmnt", "segment")]
)
def test_unknown_keys_get_a_did_you_mean(key: str, hint: str) -> None:
    config = DestinationSettings.model_validate(
        {"name": "c", "type": "customerio", "site_id": "1", "api_key": "k", key: "eu"}
    )
    assert config.problems() == [
        (key, f"unknown key for type 'customerio' (did you mean '{hint}'?)")
    ]


def test_secrets_are_typed_and_masked() -> None:
    config = DestinationSettings.model_validate(
        {"name": "w", "type": "warehouse", "url": "bigquery://p/d", "credentials": "{}"}
    )
    assert config.secret_keys == {"credentials", "private_key"}
    assert registry.spec("customerio").config.secret_keys() == {"api_key", "app_api_key"}
    text = '[[destinations]]\nname = "w"\ntype = "warehouse"\nurl = "bigquery://p/d"\n'
    masked = settings_from_toml(text + 'credentials = "{\\"k\\": 1}"', environ={}).masked()
    assert masked["destinations"][0]["settings"]["credentials"] == MASK


def test_unknown_type_is_refused_with_a_did_you_mean() -> None:
    with pytest.raises(ValueError, match="did you mean 'mixpanel'"):
        registry.check_type("mixpanl")


AUDIENCE = (["audience_add"], [], ["audience_remove"])
ESP = (
    ["profile", "event:segment_membership_changed"],
    ["profile", "event:zendesk_ticket_created"],
    ["unsubscribe"],
)
EVENTS = (["event:segment_membership_changed"], ["event:support_state_changed"], [])
WAREHOUSE = (
    ["profile", "event:segment_membership_changed"],
    ["profile", "event:support_state_changed"],
    [],
)
ROUTING = {
    "meta_audience": AUDIENCE,
    "google_customer_match": AUDIENCE,
    "google_data_manager": AUDIENCE,
    "tiktok_audience": AUDIENCE,
    "customerio": ESP,
    "sailthru": ESP,
    "klaviyo": ESP,
    "webhook": EVENTS,
    "segment": EVENTS,
    "amplitude": EVENTS,
    "mixpanel": EVENTS,
    "warehouse": WAREHOUSE,
}


@pytest.mark.parametrize("type_name", list(registry.MODULES))
def test_routing_follows_the_roles_each_type_declares(type_name: str) -> None:
    """docs/destinations.md#routing, per type: the router decides by declared roles."""
    spec = registry.spec(type_name)
    dest = Route("d", type_name, "s" if spec.roles.audience else None, None, spec.purpose)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    rows: list[Message] = [
        MembershipChanged("p_1", "s", "entered", False, "", "", {}, when),
        StateChanged("p_1", None, None, ("ticket_count",), {}, {}, when),
        ConsentChanged("p_1", spec.purpose, False, when),
    ]
    got = tuple(
        [
            f"{d.kind}:{d.name}" if d.kind == "event" else d.kind
            for d in route(1, message, 0, [dest], frozenset({"s"}))
        ]
        for message in rows
    )
    assert got == ROUTING[type_name]


# The fewest keys each type needs (the type's own keys; ``tmp`` is a directory).
MINIMAL = {
    "meta_audience": {"audience_id": "1", "access_token": "t"},
    "google_customer_match": {
        "customer_id": "123",
        "user_list_id": "456",
        "developer_token": "d",
        "client_id": "c",
        "client_secret": "s",
        "refresh_token": "r",
    },
    "google_data_manager": {
        "operating_account_id": "123",
        "audience_id": "456",
        "client_id": "c",
        "client_secret": "s",
        "refresh_token": "r",
    },
    "tiktok_audience": {"advertiser_id": "1", "audience_id": "2", "access_token": "t"},
    "customerio": {"site_id": "1", "api_key": "k"},
    "sailthru": {"api_key": "k", "api_secret": "s"},
    "klaviyo": {"api_key": "k"},
    "webhook": {
        "url": "https://hooks.example.com/in",
        "secret": "whsec_a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2s=",
    },
    "warehouse": {"url": "parquet:///{tmp}"},
    "segment": {"write_key": "w"},
    "amplitude": {"api_key": "k"},
    "mixpanel": {"project_id": "1", "service_account_user": "u", "service_account_secret": "s"},
}


def _entry(type_name: str, tmp: Path, **more: str) -> DestinationSettings:
    keys = {k: v.replace("{tmp}", str(tmp)) for k, v in MINIMAL[type_name].items()}
    return DestinationSettings.model_validate(
        {"name": "d", "type": type_name, "segment": "s", **keys, **more}
    )


@pytest.mark.parametrize("type_name", list(registry.MODULES))
def test_create_builds_from_the_validated_keys(type_name: str, tmp_path: Path) -> None:
    assert set(MINIMAL) == set(registry.MODULES)
    config = _entry(type_name, tmp_path)
    assert config.problems() == []
    destination = registry.create(
        config, transport=httpx.MockTransport(lambda r: httpx.Response(500))
    )
    assert destination.name == "d"
    destination.close()


@pytest.mark.parametrize("type_name", list(registry.MODULES))
def test_create_refuses_what_the_config_model_refuses(type_name: str, tmp_path: Path) -> None:
    """An entry that skipped ``tactful check`` (built in code) is refused by ``create()``
    for the same reasons: a misspelt key never sends to the default endpoint."""
    with pytest.raises(ValueError, match="regoin unknown key for type"):
        registry.create(_entry(type_name, tmp_path, regoin="eu"))
    first = next(iter(MINIMAL[type_name]))
    missing = _entry(type_name, tmp_path)
    del missing.settings[first]
    with pytest.raises(ValueError, match=f"'d': {first} is required for type '{type_name}'"):
        registry.create(missing)
