"""``[[alerts]]`` (rules over delivery health) and ``[[alert_channels]]`` (where they go).

Like ``[[destinations]]``: the keys every entry has are fields here, and the keys of its
kind (``when`` for a rule, ``type`` for a channel) are checked by that kind's own model
(unknown keys refused, each value typed), through ``problems()``, which ``tactful.config``
calls with the cross-entry checks (channel and destination names exist).
"""

from __future__ import annotations

import difflib
import re
from datetime import timedelta
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tactful.config.models import Section, as_duration, check_http_url, check_name

When = Literal[
    "dead_letters",
    "circuit_open",
    "lag",
    "reject_rate",
    "no_success",
    "match_rate",
    "segment_size",
    "zendesk_silence",
    "signature_failures",
]
ChannelType = Literal["slack", "email", "webhook"]
Severity = Literal["warning", "critical"]

_EMAIL = re.compile(r"[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+")


class _Kind(BaseModel):
    """The keys of one ``when``: ``for`` (how long the condition must hold before the alert
    fires) and, for most, ``above`` (the threshold)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    hold: timedelta = Field(default=timedelta(0), alias="for")

    @field_validator("hold", mode="before")
    @classmethod
    def _hold(cls, value: Any) -> Any:
        return as_duration(value)


class DeadLetters(_Kind):
    """More than ``above`` dead letters (rows that will not be retried) are waiting."""

    above: int = Field(default=0, ge=0)


class CircuitOpen(_Kind):
    """The destination's circuit breaker is not closed (nothing, or only probes, sent)."""

    hold: timedelta = Field(default=timedelta(minutes=5), alias="for")


class Lag(_Kind):
    """The oldest pending row has waited longer than ``above`` (freshness)."""

    above: timedelta = timedelta(minutes=15)

    _above = field_validator("above", mode="before")(as_duration)


class RejectRate(_Kind):
    """More than ``above`` (a fraction) of the rows the destination answered in the last
    ``window`` were rejected; judged once at least ``min_rows`` were answered."""

    above: float = Field(default=0.05, gt=0, lt=1)
    window: timedelta = timedelta(hours=1)
    min_rows: int = Field(default=20, ge=1)

    _window = field_validator("window", mode="before")(as_duration)


class NoSuccess(_Kind):
    """Nothing was delivered for longer than ``above`` while rows waited."""

    above: timedelta = timedelta(hours=1)

    _above = field_validator("above", mode="before")(as_duration)


class MatchRate(_Kind):
    """The match rate an ad platform reports (with the sync runs' platform readings) is
    below ``below`` percent, or fell by more than ``drop`` points from the highest reading
    of the last ``window``; at least one of the two is required. A range (Google's
    ``61-70%``) counts as its middle."""

    below: float | None = Field(default=None, gt=0, le=100)
    drop: float | None = Field(default=None, gt=0, le=100)
    window: timedelta = timedelta(days=1)

    _window = field_validator("window", mode="before")(as_duration)

    @model_validator(mode="after")
    def _one(self) -> MatchRate:
        if self.below is None and self.drop is None:
            raise ValueError("set 'below' (percent) and/or 'drop' (points)")
        return self


class SegmentSize(_Kind):
    """A segment's member count changed by more than ``above`` percent (up or down) in the
    last ``window``, judged once it had, or has, at least ``min_members``. ``segments``
    (default: every one) are watched instead of destinations."""

    above: float = Field(default=20.0, gt=0)
    window: timedelta = timedelta(hours=1)
    min_members: int = Field(default=50, ge=1)
    segments: list[str] | None = None

    _window = field_validator("window", mode="before")(as_duration)


class ZendeskSilence(_Kind):
    """No event arrived from Zendesk (webhooks, API fetches, backfill, imports) for longer
    than ``above``."""

    above: timedelta = timedelta(hours=6)

    _above = field_validator("above", mode="before")(as_duration)


class SignatureFailures(_Kind):
    """More than ``above`` Zendesk webhooks were refused for a bad signature in the last
    ``window`` (someone forging them, or a rotated secret)."""

    above: int = Field(default=10, ge=0)
    window: timedelta = timedelta(minutes=10)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> Any:
        window = as_duration(value)
        if not timedelta(minutes=1) <= window <= timedelta(days=1):
            raise ValueError("from 1m to 1d (refusals are counted per minute for a day)")
        return window


KINDS: dict[str, type[_Kind]] = {
    "dead_letters": DeadLetters,
    "circuit_open": CircuitOpen,
    "lag": Lag,
    "reject_rate": RejectRate,
    "no_success": NoSuccess,
    "match_rate": MatchRate,
    "segment_size": SegmentSize,
    "zendesk_silence": ZendeskSilence,
    "signature_failures": SignatureFailures,
}
# Kinds that watch something other than destinations (``destinations`` is refused there).
NOT_DESTINATIONS = frozenset({"segment_size", "zendesk_silence", "signature_failures"})


class SlackChannel(BaseModel):
    """A Slack (or Slack-compatible) incoming webhook: its URL holds the secret."""

    model_config = ConfigDict(extra="forbid")
    url: str

    _url = field_validator("url")(check_http_url)


class EmailChannel(BaseModel):
    """SMTP: ``security`` ``starttls`` (port 587), ``tls`` (465) or ``none`` (a relay on
    this machine or network only)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = None
    password: str | None = None
    sender: str = Field(alias="from")
    to: list[str] = Field(min_length=1)

    @field_validator("sender")
    @classmethod
    def _sender(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value.strip()):
            raise ValueError(f"not an email address: {value!r}")
        return value.strip()

    @field_validator("to")
    @classmethod
    def _to(cls, value: list[str]) -> list[str]:
        bad = [v for v in value if not _EMAIL.fullmatch(v.strip())]
        if bad:
            raise ValueError(f"not email addresses: {', '.join(map(repr, bad))}")
        return [v.strip() for v in value]

    @property
    def smtp_port(self) -> int:
        return self.port or {"starttls": 587, "tls": 465, "none": 25}[self.security]


class WebhookChannel(BaseModel):
    """Any HTTPS endpoint, signed like the ``webhook`` destination (Standard Webhooks)."""

    model_config = ConfigDict(extra="forbid")
    url: str
    secret: str

    _url = field_validator("url")(check_http_url)

    @field_validator("secret")
    @classmethod
    def _secret(cls, value: str) -> str:
        from tactful.destinations.standard_webhooks import check_sending_secret

        check_sending_secret(value)
        return value


CHANNELS: dict[str, type[BaseModel]] = {
    "slack": SlackChannel,
    "email": EmailChannel,
    "webhook": WebhookChannel,
}


def _problems(model: type[BaseModel], data: dict[str, Any], what: str) -> list[tuple[str, str]]:
    try:
        model.model_validate(data)
    except ValidationError as exc:
        out: list[tuple[str, str]] = []
        for err in exc.errors(include_url=False):
            key = ".".join(str(p) for p in err["loc"]) or "<entry>"
            if err["type"] == "extra_forbidden":
                known = sorted(
                    f.alias or name for name, f in model.model_fields.items() if name != "hold"
                )
                known = ["for", *known] if "hold" in model.model_fields else known
                close = difflib.get_close_matches(key, known, 1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                out.append((key, f"unknown key for {what} ({hint}its keys: {', '.join(known)})"))
            elif err["type"] == "missing":
                out.append((key, f"is required for {what}"))
            else:
                out.append((key, str(err["msg"]).removeprefix("Value error, ")))
        return out
    return []


def _collect(cls: type[BaseModel], data: Any) -> Any:
    if not isinstance(data, dict):
        return data
    known = set(cls.model_fields) - {"params"}
    out = {k: v for k, v in data.items() if k in known}
    out["params"] = {k: v for k, v in data.items() if k not in known}
    return out


class _Named(Section):
    """A named ``[[…]]`` entry whose other keys are its kind's (collected into ``params``)."""

    name: str

    @model_validator(mode="before")
    @classmethod
    def _params(cls, data: Any) -> Any:
        return _collect(cls, data)

    _name = field_validator("name")(check_name)


class AlertSettings(_Named):
    """One ``[[alerts]]`` rule: ``when`` (its kind), the ``destinations`` it watches
    (default: every one), the ``notify`` channels, ``repeat`` (re-notify while it still
    fires; default never), ``severity``, and its kind's keys (``above``, ``for``, …)."""

    name: str
    when: When
    notify: list[str] = Field(min_length=1)
    destinations: list[str] | None = None
    repeat: timedelta | None = None
    severity: Severity = "warning"
    params: dict[str, Any] = Field(default_factory=dict)

    @field_validator("repeat", mode="before")
    @classmethod
    def _repeat(cls, value: Any) -> Any:
        return None if value is None else as_duration(value)

    def problems(self) -> list[tuple[str, str]]:
        found = _problems(KINDS[self.when], self.params, f"when = '{self.when}'")
        if self.when in NOT_DESTINATIONS and self.destinations is not None:
            what = "segments (its 'segments' key)" if self.when == "segment_size" else "Zendesk"
            found.append(("destinations", f"not for when = '{self.when}': it watches {what}"))
        return found

    @cached_property
    def kind(self) -> _Kind:
        """The typed keys of its ``when`` (valid once ``problems()`` is empty)."""
        return KINDS[self.when].model_validate(self.params)


class AlertChannelSettings(_Named):
    """One ``[[alert_channels]]`` entry: ``name``, ``type`` and the type's keys."""

    SECRET_KEYS: ClassVar[frozenset[str]] = frozenset({"password", "secret"})

    name: str
    type: ChannelType
    params: dict[str, Any] = Field(default_factory=dict)

    def problems(self) -> list[tuple[str, str]]:
        return _problems(CHANNELS[self.type], self.params, f"type = '{self.type}'")

    @property
    def config(self) -> BaseModel:
        """The typed keys of its ``type`` (valid once ``problems()`` is empty)."""
        return CHANNELS[self.type].model_validate(self.params)

    def masked(self) -> dict[str, Any]:
        """Its keys for display: secrets masked, and the Slack URL (which is one) too."""
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        for key, value in self.params.items():
            secret = key in self.SECRET_KEYS or (self.type == "slack" and key == "url")
            out[key] = "********" if secret and value else value
        return out
