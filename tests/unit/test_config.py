from __future__ import annotations

import re
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.config import (
    STATE_FIELDS,
    ConfigError,
    Settings,
    load_settings,
    settings_from_mapping,
    settings_from_toml,
    starter_config_text,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

FULL = """
[store]
url = "postgresql://tactful:hunter2@db.internal/tactful"

[zendesk]
subdomain = "acme"
email = "ops@acme.com"
api_token = "env:ZENDESK_TOKEN"
webhook_secret = "env:ZENDESK_WEBHOOK_SECRET"
public_url = "https://tactful.acme.com/"
app_public_key = "pk-123"

[identity]
key = "phone"
default_region = "us"

[csat]
good = 4
bad = 2

[[reasons]]
name = "refund"
tags = ["refund", "chargeback"]
keywords = ["refund", "chargeback"]
fields = { "360012345" = ["refund_request"], "360099" = "dispute" }
risk = true

[[reasons]]
name = "wrong_item"
keywords = ["wrong item"]

[[states]]
name = "refund_risk"
when = "refund_risk"
description = "Refund ticket open"

[[states]]
name = "open_ticket"
when = "has_open_ticket"

[[segments]]
name = "suppress_promos"
description = "Open ticket in the last 14 days"
when = "has_open_ticket and last_activity_at within 14d"
cooldown = "24h"
holdout = 0.05

[[segments]]
name = "at_risk"
when = 'support_state == "refund_risk"'

[[destinations]]
name = "meta"
type = "meta_audience"
segment = "suppress_promos"
audience_id = 23850000000000000
access_token = "env:META_TOKEN"

[[destinations]]
name = "cio"
type = "customerio"
segments = ["suppress_promos", "at_risk"]
site_id = "site"
api_key = "env:CIO_KEY"
region = "eu"
base_url = "http://localhost:9000/"

[[destinations]]
name = "hooks"
type = "webhook"
url = "https://hooks.acme.com/x"
secret = "env:HOOK_SECRET"
purpose = "email"

[[destinations]]
name = "wh"
type = "warehouse"
url = "duckdb:///wh.duckdb"

[consent]
ads = false
fields = { ads = "ads_consent" }

[api]
token = "env:TACTFUL_API_TOKEN"

[engine]
batch_size = 500
"""

ENV = {
    "ZENDESK_TOKEN": "zd-token",
    "ZENDESK_WEBHOOK_SECRET": "zd-secret",
    "META_TOKEN": "meta-token",
    "CIO_KEY": "cio-key",
    "HOOK_SECRET": WHSEC,
    "TACTFUL_API_TOKEN": " api-token\n",
}


def errors_of(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        settings_from_toml(textwrap.dedent(text), environ=environ or {})
    return info.value.errors


def one_error(text: str, environ: dict[str, str] | None = None) -> str:
    errors = errors_of(text, environ)
    assert len(errors) == 1, errors
    return errors[0]


def test_full_config_loads() -> None:
    s = settings_from_toml(FULL, environ=ENV)
    assert s.store.url.startswith("postgresql://")
    assert s.zendesk.api_token == "zd-token"
    assert s.zendesk.public_url == "https://tactful.acme.com"
    assert s.zendesk.api_url == "https://acme.zendesk.com"
    assert s.identity.key == "phone"
    assert s.identity.default_region == "US"
    assert (s.csat.good, s.csat.bad) == (4, 2)
    assert s.reasons[0].fields == {"360012345": ["refund_request"], "360099": ["dispute"]}
    assert [st.name for st in s.states] == ["refund_risk", "open_ticket"]
    assert s.states[0].description == "Refund ticket open"
    seg = s.segments[0]
    assert (seg.cooldown, seg.holdout) == (timedelta(hours=24), 0.05)
    assert s.segments[1].cooldown is None and s.segments[1].holdout == 0.0
    assert s.api.token == "api-token"  # env values are trimmed
    assert s.engine.batch_size == 500
    assert (s.consent.ads, s.consent.email, s.consent.analytics) == (False, True, True)
    assert s.consent.default("ads") is False
    assert s.consent.fields == {"ads": "ads_consent"}


def test_destinations_are_typed_with_settings_and_purpose() -> None:
    s = settings_from_toml(FULL, environ=ENV)
    meta, cio, hooks, wh = s.destinations
    assert meta.is_ad_audience and meta.purpose == "ads"
    assert meta.segment == "suppress_promos" and meta.segment_names == ["suppress_promos"]
    assert meta.setting("audience_id") == "23850000000000000"
    assert meta.settings["access_token"] == "meta-token"
    assert cio.purpose == "email" and cio.segment_names == ["suppress_promos", "at_risk"]
    assert cio.base_url == "http://localhost:9000"
    assert cio.setting("region") == "eu"
    assert hooks.purpose == "email"  # overridden
    assert hooks.segment_names is None  # everything
    assert wh.purpose == "analytics" and wh.setting("url") == "duckdb:///wh.duckdb"
    assert s.destination("wh") is wh and s.destination("nope") is None


def test_rules_are_compiled_and_usable() -> None:
    s = settings_from_toml(FULL, environ=ENV)
    assert [r.name for r in s.compiled_states] == ["refund_risk", "open_ticket"]
    assert [r.name for r in s.compiled_segments] == ["suppress_promos", "at_risk"]
    rule = s.segment("suppress_promos").rule  # type: ignore[union-attr]
    value, next_change = rule.evaluate(
        {"has_open_ticket": True, "last_activity_at": NOW - timedelta(days=1)}, NOW
    )
    assert value is True and next_change is not None
    assert s.compiled_segments[1].evaluate({"support_state": "refund_risk"}, NOW)[0] is True


def test_reason_classifier_from_config() -> None:
    s = settings_from_toml(FULL, environ=ENV)
    classifier = s.reason_classifier()
    assert classifier is s.reason_classifier()
    assert classifier.classify([], "Got the WRONG item", []) == ("wrong_item", False)
    assert classifier.classify([], "", [("360099", "Dispute")]) == ("refund", True)
    assert classifier.classify(["vip"], "hello", []) == ("other", False)


def test_masked_hides_secrets() -> None:
    s = settings_from_toml(FULL, environ=ENV)
    masked = s.masked()
    text = repr(masked)
    for secret in ("zd-token", "zd-secret", "meta-token", "cio-key", WHSEC, "api-token", "hunter2"):
        assert secret not in text
    assert masked["store"]["url"] == "postgresql://tactful:********@db.internal/tactful"
    assert masked["zendesk"]["subdomain"] == "acme"
    assert masked["segments"][0]["cooldown"] == "1d"
    assert masked["destinations"][0]["settings"]["audience_id"] == 23850000000000000
    assert masked["destinations"][0]["settings"]["access_token"] == "********"
    assert s.store.url.endswith("hunter2@db.internal/tactful")  # the real value is intact


def test_defaults() -> None:
    s = settings_from_mapping({}, environ={})
    assert isinstance(s, Settings)
    assert s.store.url == "sqlite:///tactful.db"
    assert s.identity.key == "email" and s.identity.default_region is None
    assert (s.csat.good, s.csat.bad) == (5, 1)
    assert not s.reasons and not s.states and not s.segments and not s.destinations
    assert (s.consent.ads, s.consent.email, s.consent.analytics) == (True, True, True)
    assert s.api.token is None and s.engine.batch_size == 20_000
    assert s.zendesk.api_url is None
    assert s.reason_classifier().classify(["refund"], "refund", []) == ("other", False)


@pytest.mark.parametrize(
    "url", ["sqlite:///tactful.db", "sqlite:////var/lib/tactful.db", "postgresql://u@h/db"]
)
def test_store_urls_accepted(url: str) -> None:
    assert settings_from_mapping({"store": {"url": url}}, environ={}).store.url == url


@pytest.mark.parametrize("url", ["mysql://h/db", "tactful.db", "sqlite://x.db", "sqlite:///"])
def test_store_urls_rejected(url: str) -> None:
    assert one_error(f'[store]\nurl = "{url}"').startswith("store.url: ")


def test_state_fields_cover_the_contract() -> None:
    assert STATE_FIELDS["has_open_ticket"] == "bool"
    assert STATE_FIELDS["open_reasons"] == "list"
    assert STATE_FIELDS["csat_score"] == "int"
    assert STATE_FIELDS["last_refund_at"] == "time"
    assert STATE_FIELDS["support_state"] == "str"
    assert STATE_FIELDS["promo_override_until"] == "time"  # the sidebar override (#5)
    assert STATE_FIELDS["brand_id"] == "int" and STATE_FIELDS["brand_ids"] == "list"  # #22
    assert STATE_FIELDS["last_sentiment"] == "float"  # issue 25
    assert len(STATE_FIELDS) == 18 + 1 + 2 + 5  # + brand_id(s) (#22), the inferences (#25)


# --- env: -----------------------------------------------------------------------------


def test_unset_env_is_reported_with_its_location() -> None:
    assert one_error('[zendesk]\nemail = "a@b.co"\napi_token = "env:ZENDESK_TOKEN"') == (
        "zendesk.api_token: environment variable ZENDESK_TOKEN is not set"
    )


def test_every_unset_env_is_reported() -> None:
    errors = errors_of(FULL, environ={"ZENDESK_TOKEN": "x"})
    assert errors == [
        "zendesk.webhook_secret: environment variable ZENDESK_WEBHOOK_SECRET is not set",
        "destinations[0] (meta).access_token: environment variable META_TOKEN is not set",
        "destinations[1] (cio).api_key: environment variable CIO_KEY is not set",
        "destinations[2] (hooks).secret: environment variable HOOK_SECRET is not set",
        "api.token: environment variable TACTFUL_API_TOKEN is not set",
    ]


def test_empty_and_malformed_env_references() -> None:
    errors = errors_of(
        '[api]\ntoken = "env:EMPTY"\n[zendesk]\nsubdomain = "env:1BAD"', {"EMPTY": " "}
    )
    assert errors == [
        "api.token: environment variable EMPTY is empty",
        "zendesk.subdomain: invalid environment reference 'env:1BAD': use env:NAME",
    ]


def test_env_values_are_validated_like_literal_ones() -> None:
    assert one_error("[segments]", {}) == "segments: must be an array of tables ([[segments]])"
    text = """
    [[segments]]
    name = "s"
    when = "has_open_ticket"
    holdout = "env:HOLDOUT"
    cooldown = "env:COOLDOWN"
    """
    s = settings_from_toml(textwrap.dedent(text), environ={"HOLDOUT": "0.1", "COOLDOWN": "2h"})
    assert (s.segments[0].holdout, s.segments[0].cooldown) == (0.1, timedelta(hours=2))
    error = one_error(text, {"HOLDOUT": "0.1", "COOLDOWN": "2x"})
    assert error.startswith("segments[0] (s).cooldown: invalid duration '2x'")


def test_env_list_items() -> None:
    s = settings_from_mapping(
        {"reasons": [{"name": "r", "tags": ["a", "env:TAG"]}]}, environ={"TAG": "b"}
    )
    assert s.reasons[0].tags == ["a", "b"]


# --- errors -------------------------------------------------------------------------------


def test_bad_cooldown_names_segment_and_key() -> None:
    text = """
    [[segments]]
    name = "a"
    when = "has_open_ticket"
    [[segments]]
    name = "b"
    when = "has_open_ticket"
    [[segments]]
    name = "suppress_promos"
    when = "has_open_ticket"
    cooldown = "24x"
    """
    assert one_error(text).startswith(
        "segments[2] (suppress_promos).cooldown: invalid duration '24x'"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('[identity]\nkey = "name"', "identity.key: input should be 'email', 'phone' or"),
        ('[identity]\ndefault_region = "XX"', "identity.default_region: unknown region 'XX'"),
        ("[csat]\ngood = 6", "csat.good: input should be less than or equal to 5, got 6"),
        ("[csat]\nbad = 0", "csat.bad: input should be greater than or equal to 1"),
        ('[csat]\ngood = "x"', "csat.good: input should be a valid integer"),
        ("[engine]\nbatch_size = 0", "engine.batch_size: input should be greater than"),
        ('[zendesk]\nsubdomain = "acme.zendesk.com"', "zendesk.subdomain: give only the subdomain"),
        ('[zendesk]\nsubdomain = "a b"', "zendesk.subdomain: invalid subdomain"),
        ('[zendesk]\nbase_url = "acme.com"', "zendesk.base_url: must be an http:// or https://"),
        ('[zendesk]\napi_token = "t"', "zendesk: api_token needs email"),
        (
            '[zendesk]\nsubdomian = "x"',
            "zendesk.subdomian: unknown key (did you mean 'subdomain'?)",
        ),
        ('[stor]\nurl = "x"', "stor: unknown section (did you mean 'store'?)"),
        ('store = "x"', "store: must be a table ([store])"),
        ('[consent]\nfields = { adz = "f" }', "consent.fields.adz: input should be 'ads', 'email'"),
        ('[consent]\nads = "maybe"', "consent.ads: input should be a valid boolean"),
        ("[api]\ntoken = 5", "api.token: input should be a valid string"),
        ('[[reasons]]\nname = "r"', "reasons[0] (r): matches nothing"),
        ('[[reasons]]\ntags = ["x"]', "reasons[0].name: is required"),
        ('[[reasons]]\nname = "r"\nrisk = "x"\ntags = ["a"]', "reasons[0] (r).risk: input should"),
        (
            '[[states]]\nname = "Open Ticket"\nwhen = "has_open_ticket"',
            "states[0] (Open Ticket).name: invalid name",
        ),
        (
            '[[states]]\nname = "clear"\nwhen = "has_open_ticket"',
            "states[0] (clear).name: 'clear' is reserved",
        ),
        ('[[states]]\nname = "s"', "states[0] (s).when: is required"),
        (
            '[[segments]]\nname = "s"\nwhen = "has_open_ticket"\nholdout = 1.0',
            "segments[0] (s).holdout: input should be less than 1",
        ),
        (
            '[[segments]]\nname = "s"\nwhen = "has_open_ticket"\nholdout = -0.1',
            "segments[0] (s).holdout: input should be greater than or equal to 0",
        ),
        (
            '[[segments]]\nname = "s"\nwhen = "has_open_ticket"\ncooldown = 24',
            "segments[0] (s).cooldown: expected a duration such as '24h', got 24",
        ),
        (
            '[[segments]]\nname = "s"\nwhen = "has_open_ticket"\ncooldwn = "1h"',
            "segments[0] (s).cooldwn: unknown key (did you mean 'cooldown'?)",
        ),
        ("segments = [1]", "segments[0]: must be a table ([[segments]])"),
    ],
)
def test_error_kinds(text: str, expected: str) -> None:
    assert one_error(text).startswith(expected)


def test_rule_errors_name_rule_and_position() -> None:
    text = """
    [[states]]
    name = "broken"
    when = "has_open_ticket and"
    [[segments]]
    name = "typo"
    when = "has_open_tickt"
    """
    errors = errors_of(text)
    assert len(errors) == 2
    assert re.fullmatch(r"states\[0\] \(broken\)\.when: .+ at line 1, column 20", errors[0])
    assert errors[1].startswith("segments[0] (typo).when: ")
    assert "has_open_tickt" in errors[1] and "line 1, column 1" in errors[1]


def test_multiline_rule_error_position() -> None:
    text = '[[segments]]\nname = "m"\nwhen = """\nhas_open_ticket\nand csat_score <= "x"\n"""'
    error = one_error(text)
    assert error.startswith("segments[0] (m).when: ") and "line 2" in error


def test_state_rules_cannot_use_support_state() -> None:
    text = """
    [[states]]
    name = "loop"
    when = 'has_open_ticket and support_state == "x"'
    """
    assert one_error(text) == (
        "states[0] (loop).when: a state rule cannot use support_state (the states compute it)"
        " at line 1, column 21"
    )


def test_duplicate_names() -> None:
    text = """
    [[reasons]]
    name = "r"
    tags = ["a"]
    [[reasons]]
    name = "r"
    tags = ["b"]
    [[segments]]
    name = "s"
    when = "has_open_ticket"
    [[segments]]
    name = "s"
    when = "has_open_ticket"
    """
    assert errors_of(text) == [
        "reasons[1] (r).name: duplicate name 'r' (first used by reasons[0] (r))",
        "segments[1] (s).name: duplicate name 's' (first used by segments[0] (s))",
    ]


SEG = '[[segments]]\nname = "s"\nwhen = "has_open_ticket"\n'


@pytest.mark.parametrize(
    ("dest", "expected"),
    [
        (
            'type = "meta_audience"\nsegment = "s"\naudience_id = "1"',
            ["access_token: is required for type 'meta_audience'"],
        ),
        (
            'type = "meta_audience"\naudience_id = "1"\naccess_token = "t"',
            ["segment: is required: an ad audience follows exactly one segment"],
        ),
        (
            'type = "tiktok_audience"\nsegments = ["s"]\nadvertiser_id = "1"\n'
            'audience_id = "2"\naccess_token = "t"',
            ["segments: an ad audience follows exactly one segment"],
        ),
        (
            'type = "meta_audience"\nsegment = "nope"\naudience_id = "1"\naccess_token = "t"',
            ["segment: unknown segment 'nope' (defined: s)"],
        ),
        (
            'type = "klaviyo"\nsegments = ["s", "x"]\napi_key = "k"',
            ["segments: unknown segment 'x' (defined: s)"],
        ),
        ('type = "klaviyo"\nsegments = []\napi_key = "k"', ["segments: is empty"]),
        (
            'type = "klaviyo"\nsegment = "s"\nsegments = ["s"]\napi_key = "k"',
            ["segments: give either segment or segments"],
        ),
        ('type = "klaviyo"\napi_key = ""', ["api_key: must not be empty"]),
        ('type = "klaviyo"\napi_key = true', ["api_key: must be a string, got bool"]),
        (
            'type = "customerio"\nsite_id = "1"\napi_key = "k"\nregion = "ap"',
            ["region: must be 'us' or 'eu', got 'ap'"],
        ),
        (
            'type = "webhook"\nurl = "ftp://x"\nsecret = "' + WHSEC + '"',
            ["url: must be an http:// or https:// URL"],
        ),
        (
            'type = "webhook"\nurl = "https://x"\nsecret = "plain"',
            ["secret: must start with 'whsec_'"],
        ),
        (
            'type = "webhook"\nurl = "https://x"\nsecret = "whsec_%%%"',
            ["secret: must be 'whsec_' followed by base64"],
        ),
        (  # the server would refuse it at start: ``tactful check`` refuses it too
            'type = "webhook"\nurl = "https://x"\nsecret = "whsec_YWJj"',
            ["secret: must decode to 24–64 bytes (the spec's length), got 3"],
        ),
        ('type = "warehouse"\nurl = "mysql://x"', ["url: unsupported warehouse URL"]),
        (
            'type = "mixpanel"\nproject_id = 1',
            ["service_account_user: is required", "service_account_secret: is required"],
        ),
        (
            'type = "google_customer_match"\nsegment = "s"\ncustomer_id = "1"\n'
            'user_list_id = "2"\ndeveloper_token = "d"\nclient_id = "c"\nclient_secret = "s"',
            ["refresh_token: is required"],
        ),
        ('type = "fax"', ["type: unknown destination type 'fax'; the types are meta_audience"]),
        ('type = "klavyio"\napi_key = "k"', ["type: unknown destination type 'klavyio' (did you"]),
        (
            'type = "customerio"\nsite_id = "1"\napi_key = "k"\nregoin = "eu"',
            ["regoin: unknown key for type 'customerio' (did you mean 'region'?)"],
        ),
        (
            'type = "customerio"\nsite_id = "1"\napi_key = "k"\nerase_acton = "suppress"',
            ["erase_acton: unknown key for type 'customerio' (did you mean 'erase_action'?)"],
        ),
        (
            'type = "customerio"\nsite_id = "1"\napi_key = "k"\nerase_action = "purge"',
            ["erase_action: must be 'delete' or 'suppress', got 'purge'"],
        ),
        (
            'type = "klaviyo"\napi_key = "k"\nsegmnts = ["s"]',
            ["segmnts: unknown key for type 'klaviyo' (did you mean 'segments'?)"],
        ),
        (
            'type = "klaviyo"\napi_key = "k"\npurpose = "sales"',
            ["purpose: input should be 'ads', 'email' or 'analytics'"],
        ),
        (
            'type = "klaviyo"\napi_key = "k"\nbase_url = "localhost"',
            ["base_url: must be an http:// or https:// URL"],
        ),
    ],
)
def test_destination_errors(dest: str, expected: list[str]) -> None:
    errors = errors_of(SEG + '[[destinations]]\nname = "d"\n' + dest)
    assert len(errors) == len(expected), errors
    for error, prefix in zip(errors, expected, strict=True):
        assert error.startswith("destinations[0] (d)." + prefix), error


def test_optional_destination_keys_have_their_defaults() -> None:
    text = SEG + '[[destinations]]\nname = "g"\ntype = "customerio"\nsite_id = 1\napi_key = "k"\n'
    dest = settings_from_toml(text, environ={}).destinations[0]
    assert dest.setting("region") == "us"  # default
    assert dest.setting("erase_action") == "delete"
    assert dest.setting("site_id") == "1"


def test_unknown_destination_keys_are_rejected() -> None:
    """An unknown key used to be kept silently: ``regoin = "eu"`` sent an EU customer's data
    to the US endpoint."""
    text = SEG + '[[destinations]]\nname = "g"\ntype = "klaviyo"\napi_key = "k"\ntimeout = 5'
    assert one_error(text) == "destinations[0] (g).timeout: unknown key for type 'klaviyo'"


def test_all_errors_are_reported_at_once() -> None:
    text = """
    [store]
    url = "mysql://x"
    [zendesk]
    api_token = "env:ZENDESK_TOKEN"
    email = "a@b.co"
    [identity]
    key = "nickname"
    [[states]]
    name = "bad state"
    when = "nonsense_field"
    [[segments]]
    name = "suppress_promos"
    when = "has_open_ticket"
    cooldown = "24x"
    holdout = 2
    [[segments]]
    name = "suppress_promos"
    when = "has_open_ticket and"
    [[destinations]]
    name = "meta"
    type = "meta_audience"
    segment = "missing"
    """
    errors = errors_of(text)
    joined = "\n".join(errors)
    for fragment in [
        "zendesk.api_token: environment variable ZENDESK_TOKEN is not set",
        "store.url: unsupported scheme 'mysql'",
        "identity.key: ",
        "states[0] (bad state).name: invalid name",
        "states[0] (bad state).when: unknown field",
        "segments[0] (suppress_promos).cooldown: invalid duration '24x'",
        "segments[0] (suppress_promos).holdout: ",
        "segments[1] (suppress_promos).name: duplicate name",
        "segments[1] (suppress_promos).when: ",
        "destinations[0] (meta).audience_id: is required",
        "destinations[0] (meta).access_token: is required",
        "destinations[0] (meta).segment: unknown segment 'missing'",
    ]:
        assert fragment in joined, fragment
    assert len(errors) == 12, errors


def test_config_error_str_is_readable() -> None:
    error = ConfigError(["a.b: bad", "c: worse"], "tactful.toml")
    assert str(error) == "2 configuration errors in tactful.toml:\n  - a.b: bad\n  - c: worse"
    assert str(ConfigError(["x: y"])) == "1 configuration error in <memory>:\n  - x: y"


# --- loading ------------------------------------------------------------------------------


def test_load_settings_from_path(tmp_path: Path) -> None:
    path = tmp_path / "conf.toml"
    path.write_text("[engine]\nbatch_size = 7\n", encoding="utf-8")
    s = load_settings(path, environ={})
    assert s.engine.batch_size == 7 and s.source == str(path)
    assert load_settings(str(path), environ={}).engine.batch_size == 7


def test_load_settings_from_env_var(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text("[engine]\nbatch_size = 9\n", encoding="utf-8")
    assert load_settings(environ={"TACTFUL_CONFIG": str(path)}).engine.batch_size == 9


def test_load_settings_from_cwd_then_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}).source == "<defaults>"
    (tmp_path / "tactful.toml").write_text("[engine]\nbatch_size = 3\n", encoding="utf-8")
    assert load_settings(environ={}).engine.batch_size == 3


def test_load_settings_file_problems(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(tmp_path / "missing.toml", environ={})
    assert info.value.errors == [f"{tmp_path / 'missing.toml'}: file not found"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[store\nurl = 1", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(bad, environ={})
    assert info.value.errors[0].startswith(f"{bad}: invalid TOML: ")
    assert info.value.source == str(bad)


def test_load_settings_reports_source_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "t.toml"
    path.write_text("[csat]\ngood = 9\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    assert str(info.value).startswith(f"1 configuration error in {path}:")


# --- the starter file ---------------------------------------------------------------------


def test_starter_config_loads_with_no_environment() -> None:
    s = settings_from_toml(starter_config_text(), environ={})
    names = {seg.name for seg in s.segments}
    assert {"suppress_promos", "service_recovery", "reintroduce"} <= names
    promos = s.segment("suppress_promos")
    assert promos is not None
    assert (promos.cooldown, promos.holdout) == (timedelta(hours=24), 0.05)
    assert {"refund_risk", "urgent_open", "open_ticket", "low_csat"} <= {x.name for x in s.states}
    assert len(s.compiled_states) == len(s.states) and len(s.compiled_segments) == len(s.segments)
    assert s.destinations == []
    refund = next(r for r in s.reasons if r.name == "refund")
    assert refund.risk


def test_starter_reasons_classify_the_seed_scenarios() -> None:
    classify = settings_from_toml(starter_config_text(), environ={}).reason_classifier().classify
    assert classify([], "I want a refund", []) == ("refund", True)
    assert classify(["chargeback"], "Order 123", []) == ("refund", True)
    assert classify([], "Irritation after using the serum", []) == ("reaction", False)
    assert classify([], "Allergic reaction!!", []) == ("reaction", False)
    assert classify([], "Received the wrong item", []) == ("wrong_item", False)
    assert classify([], "Box arrived damaged", []) == ("damaged", False)
    assert classify([], "Where is my order?", []) == ("shipping", False)
    assert classify([], "Double charged on my card", []) == ("billing", False)
    assert classify([], "Cancel subscription please", []) == ("subscription", False)
    assert classify([], "Hello there", []) == ("other", False)


def test_starter_segments_behave_as_documented() -> None:
    s = settings_from_toml(starter_config_text(), environ={})
    reintroduce = s.segment("reintroduce")
    assert reintroduce is not None
    clean: dict[str, Any] = {
        "has_open_ticket": False,
        "last_resolved_at": NOW - timedelta(days=10),
    }
    assert reintroduce.rule.evaluate(clean, NOW)[0] is True
    refunded = {**clean, "last_refund_at": NOW - timedelta(days=20)}
    assert reintroduce.rule.evaluate(refunded, NOW)[0] is False
    too_soon = {**clean, "last_resolved_at": NOW - timedelta(days=2)}
    assert reintroduce.rule.evaluate(too_soon, NOW)[0] is False


def test_starter_config_with_everything_uncommented_loads_when_env_is_set() -> None:
    lines = []
    for line in starter_config_text().splitlines():
        # tables too: destinations, alerts and channels, the example segment and [reason_model]
        m = re.fullmatch(
            r"# (\[\[(?:destinations|alert_channels|alerts|segments)\]\]|\[reason_model\]"
            r"|[a-z_]+ = .*)",
            line,
        )
        lines.append(m.group(1) if m else line)
    text = "\n".join(lines)
    names = set(re.findall(r'"env:([A-Z0-9_]+)"', text))
    assert {"ZENDESK_API_TOKEN", "META_ACCESS_TOKEN", "TACTFUL_WEBHOOK_SECRET"} <= names
    environ = {name: "x-" + name.lower() for name in names}
    environ["TACTFUL_WEBHOOK_SECRET"] = WHSEC
    environ["TACTFUL_DB_URL"] = "postgresql://u:p@h/db"
    environ["SLACK_ALERTS_WEBHOOK"] = "https://hooks.slack.com/services/T0/B0/x"
    s = settings_from_toml(text, environ=environ)
    assert len(s.destinations) == 13
    assert [(a.name, a.when) for a in s.alerts] == [
        ("dead_letters", "dead_letters"),
        ("match_rate", "match_rate"),
        ("segment_jump", "segment_size"),
        ("zendesk_quiet", "zendesk_silence"),
        ("forged_webhooks", "signature_failures"),
    ]
    assert {tuple(a.notify) for a in s.alerts} == {("ops-slack",)}
    assert s.zendesk.subdomain == "yourbrand" and s.identity.default_region == "US"
    assert s.consent.fields == {"ads": "marketing_ads_consent", "email": "marketing_email_consent"}
    assert {d.type for d in s.destinations} == {
        "meta_audience",
        "google_customer_match",
        "google_data_manager",
        "tiktok_audience",
        "customerio",
        "sailthru",
        "klaviyo",
        "webhook",
        "warehouse",
        "segment",
        "amplitude",
        "mixpanel",
    }
    with pytest.raises(ConfigError) as info:
        settings_from_toml(text, environ={})
    assert all("is not set" in e for e in info.value.errors)
    live = "\n".join(line.split("#")[0] for line in lines)
    assert len(info.value.errors) == len(re.findall(r'"env:[A-Z0-9_]+"', live)) == 25


def test_starter_config_is_documented() -> None:
    text = starter_config_text()
    assert text.startswith("# tactful.toml")
    lines = text.splitlines()
    for i, line in enumerate(lines):
        is_setting = re.match(r"[a-z_]+ = ", line)
        if is_setting and "#" not in line:
            assert lines[i - 1].startswith("#"), f"undocumented line {i + 1}: {line}"


def test_models_built_directly_compile_their_rule_on_demand() -> None:
    from tactful.config.models import SegmentSettings, StateSettings
    from tactful.core.rules import RuleError

    seg = SegmentSettings(name="s", when='support_state == "x"')
    assert seg.rule.evaluate({"support_state": "x"}, NOW)[0] is True
    with pytest.raises(RuleError):
        _ = StateSettings(name="s", when='support_state == "x"').rule
