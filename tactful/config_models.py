"""The sections of ``tactful.toml`` as pydantic models (shape and per-value checks).

``tactful.config`` validates each section and each ``[[...]]`` entry on its own with these
models, so that one bad entry does not hide the errors of the others, then runs the checks
that span entries (unique names, segment references, rules). See product.md section 6.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, ClassVar, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from tactful.core.events import CONSENT_PURPOSES
from tactful.core.reasons import ReasonRule
from tactful.core.rules import FieldType, Rule, parse_duration, parse_rule

Purpose = Literal["ads", "email", "analytics"]
IdentityKey = Literal["email", "phone", "external_id"]
DestinationType = Literal[
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
]

# Support-state fields (product.md section 3) and their rule types.
STATE_FIELDS: dict[str, FieldType] = {
    "has_open_ticket": "bool",
    "open_ticket_count": "int",
    "open_reasons": "list",
    "ticket_count": "int",
    "last_ticket_at": "time",
    "last_activity_at": "time",
    "last_ticket_status": "str",
    "ticket_reason": "str",
    "last_resolved_at": "time",
    "priority": "str",
    "refund_risk": "bool",
    "last_refund_at": "time",
    "csat_score": "int",
    "csat_at": "time",
    "health": "str",
    "health_at": "time",
    "promo_override_until": "time",
    "ticket_tags": "list",
    "support_state": "str",
}
# ``[[states]]`` rules compute ``support_state``, so they cannot read it.
STATE_RULE_FIELDS: dict[str, FieldType] = {
    k: v for k, v in STATE_FIELDS.items() if k != "support_state"
}

# type -> (default purpose, required keys, optional keys with their defaults)
DESTINATION_SPECS: dict[str, tuple[Purpose, tuple[str, ...], dict[str, str]]] = {
    "meta_audience": ("ads", ("audience_id", "access_token"), {}),
    "google_customer_match": (
        "ads",
        (
            "customer_id",
            "user_list_id",
            "developer_token",
            "client_id",
            "client_secret",
            "refresh_token",
        ),
        {"login_customer_id": ""},
    ),
    "google_data_manager": (
        "ads",
        ("operating_account_id", "audience_id", "client_id", "client_secret", "refresh_token"),
        {"account_type": "GOOGLE_ADS", "login_account_id": "", "login_account_type": ""},
    ),
    "tiktok_audience": ("ads", ("advertiser_id", "audience_id", "access_token"), {}),
    "customerio": ("email", ("site_id", "api_key"), {"region": "us"}),
    "sailthru": ("email", ("api_key", "api_secret"), {}),
    "klaviyo": ("email", ("api_key",), {}),
    "webhook": ("analytics", ("url", "secret"), {}),
    "warehouse": ("analytics", ("url",), {}),
    "segment": ("analytics", ("write_key",), {}),
    "amplitude": ("analytics", ("api_key",), {}),
    "mixpanel": (
        "analytics",
        ("project_id", "service_account_user", "service_account_secret"),
        {},
    ),
}
AD_TYPES = frozenset(
    {"meta_audience", "google_customer_match", "google_data_manager", "tiktok_audience"}
)
GOOGLE_ACCOUNT_TYPES = (
    "GOOGLE_ADS",
    "DISPLAY_VIDEO_ADVERTISER",
    "DISPLAY_VIDEO_PARTNER",
    "DATA_PARTNER",
)
# ``identify_by``: type -> (identifier kinds it accepts, default fallback order)
IDENTIFY_BY: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "customerio": (
        ("email", "external_id", "zendesk_user_id", "person_id"),
        ("email", "external_id"),
    ),
    "klaviyo": (
        ("email", "phone", "external_id", "zendesk_user_id", "person_id"),
        ("email", "external_id"),
    ),
    "sailthru": (
        ("email", "external_id", "zendesk_user_id", "person_id"),
        ("email", "external_id"),
    ),
    "segment": (
        ("external_id", "email", "zendesk_user_id", "person_id"),
        ("external_id", "person_id"),
    ),
    "amplitude": (
        ("external_id", "email", "zendesk_user_id", "person_id"),
        ("external_id", "person_id"),
    ),
    "mixpanel": (
        ("external_id", "email", "zendesk_user_id", "person_id"),
        ("external_id", "person_id"),
    ),
}
WAREHOUSE_SCHEMES = ("duckdb", "parquet", "postgresql", "postgres", "snowflake", "bigquery")
SECRET_KEY = re.compile(r"(token|secret|api_key|write_key|password)$")

_SNAKE = re.compile(r"[a-z][a-z0-9_]*")
_DEST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def check_http_url(value: str | None) -> str | None:
    if value is not None and not re.match(r"https?://[^/\s]+", value):
        raise ValueError(f"must be an http:// or https:// URL, got {value!r}")
    return value.rstrip("/") if value else value


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StoreSettings(Section):
    url: str = "sqlite:///tactful.db"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0].split("+", 1)[0] if "://" in value else ""
        if scheme == "sqlite":
            if not value.startswith("sqlite:///") or len(value) == len("sqlite:///"):
                raise ValueError("sqlite URLs look like sqlite:///relative.db or sqlite:////abs.db")
        elif scheme not in ("postgresql", "postgres"):
            shown = f"scheme '{scheme}'" if scheme else f"{value!r}"
            raise ValueError(f"unsupported {shown}: use sqlite:///path or postgresql://...")
        return value


class ZendeskSettings(Section):
    subdomain: str | None = None
    email: str | None = None
    api_token: str | None = None
    webhook_secret: str | None = None
    base_url: str | None = None
    public_url: str | None = None
    app_public_key: str | None = None
    app_audience: str | None = None  # the sidebar JWT's expected ``aud`` (checked when set)
    high_value_tag: str | None = None  # Zendesk user tag for value score 4 (sidebar)

    @field_validator("subdomain")
    @classmethod
    def _subdomain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip().lower()
        if value.endswith(".zendesk.com"):
            raise ValueError(f"give only the subdomain: '{value.removesuffix('.zendesk.com')}'")
        if not _SUBDOMAIN.fullmatch(value):
            raise ValueError(f"invalid subdomain {value!r}")
        return value

    _urls = field_validator("base_url", "public_url")(check_http_url)

    @model_validator(mode="after")
    def _token_needs_email(self) -> ZendeskSettings:
        if self.api_token and not self.email:
            raise ValueError("api_token needs email (the agent the token authenticates)")
        return self

    @property
    def api_url(self) -> str | None:
        """Base of the Zendesk API: ``base_url``, else ``https://{subdomain}.zendesk.com``."""
        if self.base_url:
            return self.base_url
        return f"https://{self.subdomain}.zendesk.com" if self.subdomain else None


class IdentitySettings(Section):
    key: IdentityKey = "email"
    default_region: str | None = None

    @field_validator("default_region")
    @classmethod
    def _region(cls, value: str | None) -> str | None:
        if value is None:
            return None
        region = value.strip().upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown region {value!r}: use a two-letter code such as 'US'")
        return region


class CsatSettings(Section):
    good: int = Field(default=5, ge=1, le=5)
    bad: int = Field(default=1, ge=1, le=5)


class ReasonSettings(Section):
    name: str
    tags: list[str] = []
    keywords: list[str] = []
    fields: dict[str, list[str]] = {}
    risk: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip() or value != value.strip():
            raise ValueError(f"invalid name {value!r}: non-empty, no surrounding spaces")
        return value

    @field_validator("fields", mode="before")
    @classmethod
    def _single_values(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _matches_something(self) -> ReasonSettings:
        if (
            not any(t.strip() for t in self.tags)
            and not any(k.strip() for k in self.keywords)
            and not any(self.fields.values())
        ):
            raise ValueError("matches nothing: give tags, keywords or fields")
        return self

    def to_rule(self) -> ReasonRule:
        return ReasonRule(
            name=self.name,
            tags=frozenset(t.strip() for t in self.tags if t.strip()),
            keywords=tuple(self.keywords),
            fields={k.strip(): frozenset(v) for k, v in self.fields.items()},
            risk=self.risk,
        )


class _RuleSection(Section):
    name: str
    when: str
    description: str = ""
    _rule: Rule | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _SNAKE.fullmatch(value):
            raise ValueError(
                f"invalid name {value!r}: use lower-case letters, digits and _ (like open_ticket)"
            )
        return value

    rule_fields: ClassVar[Mapping[str, FieldType]] = STATE_FIELDS

    @property
    def rule(self) -> Rule:
        """The compiled ``when`` (compiled by ``tactful.config``, else now: may raise)."""
        if self._rule is None:
            self._rule = parse_rule(self.when, name=self.name, fields=self.rule_fields)
        return self._rule


class StateSettings(_RuleSection):
    rule_fields: ClassVar[Mapping[str, FieldType]] = STATE_RULE_FIELDS

    @field_validator("name")
    @classmethod
    def _not_clear(cls, value: str) -> str:
        if value == "clear":
            raise ValueError("'clear' is reserved: it is the state when no rule holds")
        return value


class SegmentSettings(_RuleSection):
    cooldown: timedelta | None = None
    holdout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @field_validator("cooldown", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if value is None or isinstance(value, timedelta):
            return value
        if not isinstance(value, str):
            raise ValueError(f"expected a duration such as '24h', got {value!r}")
        return parse_duration(value)


class DestinationSettings(Section):
    name: str
    type: DestinationType
    segment: str | None = None
    segments: list[str] | None = None
    base_url: str | None = None
    purpose: Purpose = "analytics"  # default: the type's purpose (DESTINATION_SPECS)
    settings: dict[str, Any] = {}

    @model_validator(mode="before")
    @classmethod
    def _collect_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields) - {"settings"}
        out = {k: v for k, v in data.items() if k in known}
        out["settings"] = {k: v for k, v in data.items() if k not in known}
        if out.get("purpose") is None and out.get("type") in DESTINATION_SPECS:
            out["purpose"] = DESTINATION_SPECS[out["type"]][0]
        return out

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _DEST_NAME.fullmatch(value):
            raise ValueError(f"invalid name {value!r}: use letters, digits, _ . -")
        return value

    _base_url = field_validator("base_url")(check_http_url)

    @model_validator(mode="after")
    def _defaults(self) -> DestinationSettings:
        for key, default in DESTINATION_SPECS[self.type][2].items():
            if default:
                self.settings.setdefault(key, default)
        return self

    @property
    def is_ad_audience(self) -> bool:
        return self.type in AD_TYPES

    @property
    def segment_names(self) -> list[str] | None:
        """The segments this destination follows; None means every segment."""
        return [self.segment] if self.segment is not None else self.segments

    def setting(self, key: str, default: str | None = None) -> str | None:
        """A type-specific key as text (ids written as TOML integers become strings)."""
        value = self.settings.get(key, default)
        return None if value is None else str(value)

    def problems(self) -> list[tuple[str, str]]:
        """Type-specific problems as ``(key, message)``: required keys and their values."""
        out: list[tuple[str, str]] = []
        _, required, _ = DESTINATION_SPECS[self.type]
        for key in required:
            value = self.settings.get(key)
            if value is None:
                out.append((key, f"is required for type '{self.type}'"))
            elif isinstance(value, bool) or not isinstance(value, str | int):
                out.append((key, f"must be a string, got {type(value).__name__}"))
            elif not str(value).strip():
                out.append((key, "must not be empty"))
        if self.type in AD_TYPES:
            if self.segments is not None:
                out.append(("segments", "an ad audience follows exactly one segment: use segment"))
            elif self.segment is None:
                out.append(("segment", "is required: an ad audience follows exactly one segment"))
        elif self.segment is not None and self.segments is not None:
            out.append(("segments", "give either segment or segments, not both"))
        elif self.segments == []:
            out.append(("segments", "is empty: omit it to receive every segment"))
        value = self.settings.get("region")
        if self.type == "customerio" and value not in ("us", "eu"):
            out.append(("region", f"must be 'us' or 'eu', got {value!r}"))
        out.extend(self._identify_by_problems())
        if self.type == "google_data_manager":
            for key in ("account_type", "login_account_type"):
                value = self.settings.get(key)
                if value and value not in GOOGLE_ACCOUNT_TYPES:
                    names = ", ".join(GOOGLE_ACCOUNT_TYPES)
                    out.append((key, f"must be one of {names}, got {value!r}"))
        out.extend(self._url_problems())
        return out

    def _identify_by_problems(self) -> list[tuple[str, str]]:
        value = self.settings.get("identify_by")
        if value is None:
            return []
        if self.type not in IDENTIFY_BY:
            return [("identify_by", f"is not used by type '{self.type}'")]
        allowed = IDENTIFY_BY[self.type][0]
        order = [value] if isinstance(value, str) else value
        if not isinstance(order, list) or not order or not all(isinstance(v, str) for v in order):
            return [("identify_by", 'must be a non-empty list such as ["external_id", "email"]')]
        out = [
            ("identify_by", f"unknown identifier {v!r}: use {', '.join(allowed)}")
            for v in order
            if v not in allowed
        ]
        if len(set(order)) != len(order):
            out.append(("identify_by", "lists an identifier twice"))
        return out

    def _url_problems(self) -> list[tuple[str, str]]:
        url, out = self.settings.get("url"), []
        if self.type == "webhook" and isinstance(url, str) and url.strip():
            try:
                check_http_url(url)
            except ValueError as e:
                out.append(("url", str(e)))
        if self.type == "warehouse" and isinstance(url, str) and url.strip():
            scheme = url.split("://", 1)[0] if "://" in url else ""
            if scheme not in WAREHOUSE_SCHEMES:
                names = ", ".join(f"{s}://" for s in WAREHOUSE_SCHEMES)
                out.append(("url", f"unsupported warehouse URL: use one of {names}"))
        secret = self.settings.get("secret")
        if self.type == "webhook" and isinstance(secret, str) and secret.strip():
            out.extend(("secret", m) for m in _webhook_secret_problems(secret))
        return out


def _webhook_secret_problems(secret: str) -> list[str]:
    if not secret.startswith("whsec_"):
        return ["must start with 'whsec_' (a Standard Webhooks secret)"]
    try:
        if not base64.b64decode(secret.removeprefix("whsec_"), validate=True):
            return ["is empty after 'whsec_'"]
    except (binascii.Error, ValueError):
        return ["must be 'whsec_' followed by base64"]
    return []


class ConsentSettings(Section):
    ads: bool = True
    email: bool = True
    analytics: bool = True
    fields: dict[Purpose, str] = {}

    def default(self, purpose: str) -> bool:
        """What to assume for ``purpose`` about a person whose consent is not known.

        A purpose governed by a Zendesk user field (``fields``) counts as not granted until
        the person's field is known: a user introduced by a webhook (which carries no user
        fields) is not exported before Tactful has read the field."""
        if purpose not in CONSENT_PURPOSES:
            raise ValueError(f"unknown consent purpose {purpose!r}")
        return purpose not in self.fields and bool(getattr(self, purpose))

    def defaults(self) -> dict[str, bool]:
        return {purpose: self.default(purpose) for purpose in CONSENT_PURPOSES}


class PrivacySettings(Section):
    """What a Zendesk user deletion does besides stopping every sync at once:
    ``erase_deleted_users`` = ``"when_permanently_deleted"`` (default: erase once Zendesk
    permanently deletes the user, as its deleted-users API shows) or ``"immediately"``."""

    erase_deleted_users: Literal["immediately", "when_permanently_deleted"] = (
        "when_permanently_deleted"
    )
    deleted_users_check: timedelta = timedelta(hours=1)

    @field_validator("deleted_users_check", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _as_duration(value)


class ApiSettings(Section):
    token: str | None = None
    dashboard_password: str | None = None  # the dashboard's login (besides the token)
    metrics_auth: bool = False  # /metrics needs the token too
    # Cookies' Secure flag: true always, false never; unset: when the request came over https
    # (directly, or through a proxy uvicorn trusts: --forwarded-allow-ips).
    secure_cookies: bool | None = None

    @model_validator(mode="after")
    def _metrics_auth_needs_token(self) -> ApiSettings:
        if self.metrics_auth and not self.token:
            raise ValueError("metrics_auth needs token (the bearer token /metrics will require)")
        return self


class EngineSettings(Section):
    batch_size: int = Field(default=20_000, ge=1, le=100_000)
    # Event times later than the wall clock plus this are refused at every edge, and the
    # engine clock never passes the wall clock plus this while serving.
    future_skew: timedelta = timedelta(minutes=5)

    @field_validator("future_skew", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return _as_duration(value)


def _as_duration(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError(f"expected a duration such as '3d', got {value!r}")
    return parse_duration(value)


class DeliverySettings(Section):
    """Retries of the delivery worker: backoff from ``retry_base`` doubling up to
    ``retry_cap`` (or the vendor's ``Retry-After``, clamped to that range); dead letter after
    ``max_age``. Every request to a destination ends within ``request_deadline``; after
    ``circuit_failures`` failed sends in a row a destination's circuit opens for
    ``circuit_cooldown`` (doubling up to ``circuit_max_cooldown`` while probes fail).
    Sync runs (each destination's delivery rounds) are kept for ``runs_keep``."""

    retry_base: timedelta = timedelta(seconds=1)
    retry_cap: timedelta = timedelta(minutes=15)
    max_age: timedelta = timedelta(days=3)
    # Imported history: "current" (profiles and audiences get the net change, event
    # destinations only changes newer than ``history_horizon``) or "all" (every change).
    history: Literal["current", "all"] = "current"
    history_horizon: timedelta = timedelta(days=7)
    request_deadline: timedelta = timedelta(seconds=30)
    circuit_failures: int = Field(default=5, ge=1, le=1000)
    circuit_cooldown: timedelta = timedelta(seconds=30)
    circuit_max_cooldown: timedelta = timedelta(minutes=10)
    runs_keep: timedelta = timedelta(days=30)

    @field_validator(
        "retry_base",
        "retry_cap",
        "max_age",
        "request_deadline",
        "circuit_cooldown",
        "circuit_max_cooldown",
        "history_horizon",
        "runs_keep",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
            return timedelta(seconds=value)  # a number is seconds: ``request_deadline = 10``
        return _as_duration(value)
