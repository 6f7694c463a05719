"""The sections of ``tactful.toml`` as pydantic models (shape and per-value checks).

``tactful.config`` validates each section and each ``[[...]]`` entry on its own with these
models, so that one bad entry does not hide the errors of the others, then runs the checks
that span entries (unique names, segment references, rules). See product.md section 6.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from tactful.core.events import CONSENT_PURPOSES, Purpose
from tactful.core.reasons import ReasonRule
from tactful.core.rules import FieldType, Rule, parse_duration, parse_rule
from tactful.core.state import FIELD_TYPES
from tactful.destinations import registry

if TYPE_CHECKING:
    from tactful.destinations.spec import Roles

IdentityKey = Literal["email", "phone", "external_id"]

# Support-state fields (product.md section 3) and their rule types.
STATE_FIELDS: dict[str, FieldType] = dict(FIELD_TYPES)
# ``[[states]]`` rules compute ``support_state``, so they cannot read it.
STATE_RULE_FIELDS: dict[str, FieldType] = {
    k: v for k, v in STATE_FIELDS.items() if k != "support_state"
}

SECRET_KEY = re.compile(r"(token|secret|api_key|write_key|password)$")

_SNAKE = re.compile(r"[a-z][a-z0-9_]*")
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_SUBDOMAIN = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?")


def check_name(value: str) -> str:
    """A destination's or alert's ``name``: letters, digits, ``_ . -``."""
    if not NAME.fullmatch(value):
        raise ValueError(f"invalid name {value!r}: use letters, digits, _ . -")
    return value


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
    # The sidebar offers to add the proof of an agent action to the ticket as a private
    # note (an internal comment through the Tickets API; needs email and api_token).
    private_notes: bool = False

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
        if self.private_notes and not (self.api_token and (self.subdomain or self.base_url)):
            raise ValueError(
                "private_notes needs the Zendesk API: subdomain (or base_url), email and "
                "api_token (the agent the notes are written as)"
            )
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


class ReasonModelSettings(Section):
    """``[reason_model]``: the reason learned from what customers write (docs/reasons.md)."""

    # Use the active trained model for tickets that no ``[[reasons]]`` rule matched.
    enabled: bool = True
    # A prediction less sure than this leaves the reason ``other``.
    threshold: float = Field(default=0.6, ge=0.0, le=1.0)
    # ``tactful reasons train`` refuses to activate a model whose macro-averaged precision or
    # recall on the held-out tickets is below this.
    quality_floor: float = Field(default=0.7, ge=0.0, le=1.0)
    # The share of labelled tickets held out to measure a trained model.
    held_out: float = Field(default=0.25, gt=0.0, lt=1.0)
    # Reasons with fewer labelled tickets than this are not learned.
    min_examples: int = Field(default=5, ge=2)


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
    """One ``[[destinations]]`` entry: the keys every destination has, and ``settings``,
    the type-specific ones, which the type's own config model checks (``problems``;
    ``tactful.destinations.registry``)."""

    name: str
    type: str
    segment: str | None = None
    segments: list[str] | None = None
    base_url: str | None = None
    purpose: Purpose = "analytics"  # default: the type's purpose (its module's SPEC)
    # Send the fields inferred from what customers write (reason_source, reason_confidence,
    # last_sentiment, sentiment_at, negative_ticket): off unless the destination opts in.
    inferences: bool = False
    settings: dict[str, Any] = {}

    SHARED: ClassVar[frozenset[str]] = frozenset(
        {"name", "type", "segment", "segments", "base_url", "purpose", "identify_by", "inferences"}
    )

    @model_validator(mode="before")
    @classmethod
    def _collect_settings(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        known = set(cls.model_fields) - {"settings"}
        out = {k: v for k, v in data.items() if k in known}
        out["settings"] = {k: v for k, v in data.items() if k not in known}
        kind = out.get("type")
        if out.get("purpose") is None and isinstance(kind, str) and kind in registry.MODULES:
            out["purpose"] = registry.spec(kind).purpose
        return out

    _name = field_validator("name")(check_name)

    @field_validator("type")
    @classmethod
    def _type(cls, value: str) -> str:
        return registry.check_type(value)

    _base_url = field_validator("base_url")(check_http_url)

    @model_validator(mode="after")
    def _defaults(self) -> DestinationSettings:
        for key, default in registry.defaults(self.type).items():
            self.settings.setdefault(key, default)
        return self

    @property
    def roles(self) -> Roles:
        """What the type is told and does (its module's ``SPEC``)."""
        return registry.spec(self.type).roles

    @property
    def is_ad_audience(self) -> bool:
        return self.roles.audience

    @property
    def secret_keys(self) -> frozenset[str]:
        return registry.spec(self.type).config.secret_keys()

    @property
    def segment_names(self) -> list[str] | None:
        """The segments this destination follows; None means every segment."""
        return [self.segment] if self.segment is not None else self.segments

    def setting(self, key: str, default: str | None = None) -> str | None:
        """A type-specific key as text (ids written as TOML integers become strings)."""
        value = self.settings.get(key, default)
        return None if value is None else str(value)

    def problems(self) -> list[tuple[str, str]]:
        """Problems as ``(key, message)``: the type's own keys (unknown, missing, invalid),
        the segments it follows and ``identify_by``."""
        keys = {k: v for k, v in self.settings.items() if k != "identify_by"}
        out = registry.key_problems(self.type, keys, self.SHARED)
        if self.is_ad_audience:
            if self.segments is not None:
                out.append(("segments", "an ad audience follows exactly one segment: use segment"))
            elif self.segment is None:
                out.append(("segment", "is required: an ad audience follows exactly one segment"))
        elif self.segment is not None and self.segments is not None:
            out.append(("segments", "give either segment or segments, not both"))
        elif self.segments == []:
            out.append(("segments", "is empty: omit it to receive every segment"))
        out.extend(self._identify_by_problems())
        return out

    def _identify_by_problems(self) -> list[tuple[str, str]]:
        value = self.settings.get("identify_by")
        if value is None:
            return []
        identify = registry.spec(self.type).identify_by
        if identify is None:
            return [("identify_by", f"is not used by type '{self.type}'")]
        allowed = identify.accepted
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
        return as_duration(value)


class ApiSettings(Section):
    token: str | None = None
    dashboard_password: str | None = None  # the dashboard's login (besides the token)
    metrics_auth: bool = False  # /metrics needs the token too
    # Cookies' Secure flag: true always, false never; unset: when the request came over https
    # (directly, or through a proxy uvicorn trusts: --forwarded-allow-ips).
    secure_cookies: bool | None = None
    # The dashboard shows emails and phones masked (a••@example.com, +1•••••••23); only the
    # logins named in ``show_identifiers_to`` ("token": the [api] token, "password": the
    # dashboard password) see them in full. ``mask_identifiers = false``: everyone does.
    mask_identifiers: bool = True
    show_identifiers_to: list[Literal["token", "password"]] = []

    def shows_identifiers(self, role: str) -> bool:
        """Whether a dashboard session logged in as ``role`` sees identifiers in full."""
        return not self.mask_identifiers or role in self.show_identifiers_to

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
        return as_duration(value)


def as_duration(value: Any) -> Any:
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
        return as_duration(value)
