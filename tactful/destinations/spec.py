"""What a destination module declares about itself: its ``type``, its consent purpose, a
one-line summary, a typed model of its own keys and its roles.

``tactful.destinations.registry`` reads these declarations to validate ``[[destinations]]``
entries (unknown keys rejected with a did-you-mean), to mask secrets and to render the
destination tables of docs/config.md; the router and the sidebar decide by the roles. A key
is documented by its field's ``description``; a secret is typed :data:`Secret`.
"""

from __future__ import annotations

import builtins
import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Protocol, Self, get_args

import httpx
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.fields import FieldInfo

from tactful.core.events import Purpose
from tactful.destinations.identify import IdentifyBy


class Entry(Protocol):
    """What a type's config model reads from a ``[[destinations]]`` entry
    (``tactful.config.models.DestinationSettings``, which validates entries with these
    specs through the registry: this module does not import it back)."""

    @property
    def name(self) -> str: ...
    @property
    def type(self) -> str: ...
    @property
    def settings(self) -> Mapping[str, Any]: ...


class Probed(Entry, Protocol):
    """The entry as ``tactful doctor``'s probe of its type reads it."""

    @property
    def base_url(self) -> str | None: ...
    def setting(self, key: str, default: str | None = None) -> str | None: ...


Verdict = tuple[bool, str, str]  # ok, detail, fix
# One authenticated, side-effect-free call to the vendor (``tactful.destinations.probe``).
Probe = Callable[[Probed, httpx.Client], Verdict]


def _text(value: Any) -> Any:
    """Ids written as TOML integers become strings; other non-strings are refused."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"must be a string, got {type(value).__name__}")
    return str(value)


def _non_empty(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class SecretMarker:
    """Marks a key whose value is a credential: masked when shown, never echoed in errors."""


Text = Annotated[str, BeforeValidator(_text), AfterValidator(_non_empty)]
Secret = Annotated[str, BeforeValidator(_text), AfterValidator(_non_empty), SecretMarker()]


class DestinationConfig(BaseModel):
    """The type-specific keys of one ``[[destinations]]`` entry (the shared keys, ``name``,
    ``type``, ``segment(s)``, ``base_url``, ``purpose``, ``identify_by``, are not here)."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def secret_keys(cls) -> frozenset[str]:
        return frozenset(name for name, field in cls.model_fields.items() if _is_secret(field))

    @classmethod
    def problems(
        cls, type_name: str, keys: Mapping[str, Any], shared: frozenset[str] = frozenset()
    ) -> list[tuple[str, str]]:
        """``keys`` checked against this model, as ``(key, message)``; ``shared`` are the
        keys every destination has (candidates for a did-you-mean)."""
        try:
            cls.model_validate(keys)
        except ValidationError as exc:
            return _problems(exc, type_name, [*cls.model_fields, *shared])
        return []

    @classmethod
    def of(cls, config: Entry) -> Self:
        """The entry's own keys (``identify_by`` aside), validated and typed: what the
        type's ``create()`` builds from. A ValueError names every problem."""
        keys = {k: v for k, v in config.settings.items() if k != "identify_by"}
        try:
            return cls.model_validate(keys)
        except ValidationError as exc:
            shown = "; ".join(f"{k} {m}" for k, m in _problems(exc, config.type, []))
            raise ValueError(f"destination {config.name!r}: {shown}") from None


def _problems(exc: ValidationError, type_name: str, candidates: list[str]) -> list[tuple[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        key = str(err["loc"][0]) if err["loc"] else "type"
        out.append((key, _message(err, type_name, candidates)))
    return out


def _message(err: Mapping[str, Any], type_name: str, candidates: list[str]) -> str:
    kind, msg = err["type"], str(err["msg"])
    if kind == "missing":
        return f"is required for type '{type_name}'"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(err["loc"][-1]), candidates, 1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return f"unknown key for type '{type_name}'{hint}"
    if kind == "literal_error":
        return f"must be {err['ctx']['expected']}, got {err['input']!r}"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    return msg[:1].lower() + msg[1:]


def _is_secret(field: FieldInfo) -> bool:
    """A ``Secret`` key, ``Secret | None`` included (its marker sits one level down)."""
    inner = (m for arg in get_args(field.annotation) for m in getattr(arg, "__metadata__", ()))
    return any(isinstance(m, SecretMarker) for m in (*field.metadata, *inner))


@dataclass(frozen=True)
class Roles:
    """What a destination is told and does, which routing and the sidebar decide by."""

    audience: bool = False  # an ad audience: follows one ``segment`` (adds and removes)
    profiles: bool = False  # a profile sink: state and ``eligible_<segment>`` flags
    events: bool = False  # an event sink: ``support_state_changed``, membership events
    support_events: bool = False  # named ``zendesk_*`` events and membership events
    unsubscribes: bool = False  # withdrawn consent of its purpose → the vendor's unsubscribe
    profile_reader: bool = False  # the sidebar reads and edits the person's profile there


AUDIENCE = Roles(audience=True)
EVENT_SINK = Roles(events=True)
ESP = Roles(profiles=True, support_events=True, unsubscribes=True, profile_reader=True)


@dataclass(frozen=True)
class DestinationSpec:
    """A destination type as its module describes it."""

    type: str
    purpose: Purpose  # the consent purpose it defaults to
    vendor: str  # the platform's name, as people read it ("Customer.io")
    summary: str  # what it is, one line (docs/config.md)
    config: builtins.type[DestinationConfig]
    roles: Roles
    identify_by: IdentifyBy | None = None  # takes ``identify_by`` (ESPs and analytics)
    probe: Probe | None = None  # what ``tactful doctor`` asks it (None: only its host)

    KEY_COLUMNS: ClassVar[str] = "| type | key | meaning |"

    def key_rows(self) -> list[str]:
        """This type's rows of the docs/config.md key table."""
        rows = []
        secrets = self.config.secret_keys()
        for name, field in self.config.model_fields.items():
            notes = []
            if field.is_required():
                notes.append("required")
            elif field.default not in (None, ""):
                notes.append(f"default `{field.default}`")
            if name in secrets:
                notes.append('secret: `"env:NAME"`')
            suffix = f" ({', '.join(notes)})" if notes else ""
            rows.append(f"| `{self.type}` | `{name}` | {field.description or ''}{suffix} |")
        return rows
