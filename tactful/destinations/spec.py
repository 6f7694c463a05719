"""What a destination module declares about itself: its ``type``, its consent purpose, a
one-line summary, a typed model of its own keys and its roles.

``tactful.destinations.registry`` reads these declarations to validate ``[[destinations]]``
entries (unknown keys rejected with a did-you-mean), to mask secrets and to render the
destination tables of docs/config.md; the router and the sidebar decide by the roles. A key
is documented by its field's ``description``; a secret is typed :data:`Secret`.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, get_args

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict
from pydantic.fields import FieldInfo

from tactful.config_models import Purpose
from tactful.destinations.identify import IdentifyBy


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
    summary: str  # what it is, one line (docs/config.md)
    config: builtins.type[DestinationConfig]
    roles: Roles
    identify_by: IdentifyBy | None = None  # takes ``identify_by`` (ESPs and analytics)

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
