"""The engine's messages to destinations: one typed value per outbox topic, and one codec.

The engine writes these (``tactful.engine.messages`` turns them into outbox rows); the router reads
them back (``loads``, once per row) and decides from each destination's roles. The bytes
are the event bodies of ``docs/schemas/`` (``tactful.destinations.event_schemas``), keys in
the order below; a row is stamped with what made it (``"replayed": true`` after a replay,
``"history": true`` for imported history older than the horizon): docs/concepts.md.

| message             | topic                        | fields                                  |
|---------------------|------------------------------|-----------------------------------------|
| ``StateChanged``    | ``support_state_changed``    | old_state, new_state, changed, values,  |
|                     |                              | eligible                                |
| ``MembershipChanged`` | ``segment_membership_changed`` | segment, change, holdout, rule,      |
|                     |                              | detail, eligible                        |
| ``ConsentChanged``  | ``consent_changed``          | purpose, granted                        |
| ``PersonErased``    | ``person_erased``            | identifiers (kind -> values)            |

Every message starts with ``person_id`` and ends with ``occurred_at`` (then the stamp).

``net_messages(told, now)`` is what a destination must hear to go from what it was last told
of a person to the truth now, and nothing else (product.md section 4: a replay tells each
destination only the net difference):

- one ``StateChanged`` when a delivered field differs, naming only those fields;
- one ``MembershipChanged`` per segment whose membership (or holdout mark) differs;
- one ``ConsentChanged`` per purpose whose consent differs, for a person told anything.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, TypeAlias

import orjson

from tactful.core import codec
from tactful.core.events import CONSENT_PURPOSES
from tactful.core.segments import Change, Membership
from tactful.core.state import BLANK_FIELDS, CLEAR, FIELD_TYPES

# A JSON value; a support-state value is one, or a time (``SupportState``).
Json: TypeAlias = bool | int | float | str | list["Json"] | dict[str, "Json"] | None
StateValue: TypeAlias = datetime | Json
ChangeKind = Literal["entered", "exited"]


@dataclass(frozen=True, slots=True)
class Stamp:
    """What made a message: a replay's correction, or imported history (neither: live)."""

    replayed: bool = False
    history: bool = False

    def wire(self) -> dict[str, Json]:
        out: dict[str, Json] = {}
        if self.replayed:
            out["replayed"] = True
        if self.history:
            out["history"] = True
        return out


LIVE = Stamp()
REPLAYED = Stamp(replayed=True)
HISTORY = Stamp(history=True)


@dataclass(frozen=True, slots=True)
class StateChanged:
    """A person's support state changed: ``values`` holds the new value of each ``changed``
    field; ``eligible``: per segment, member and not a holdout."""

    TOPIC: ClassVar[str] = "support_state_changed"
    person_id: str
    old_state: str | None
    new_state: str | None
    changed: tuple[str, ...]
    values: Mapping[str, StateValue]
    eligible: Mapping[str, bool]
    occurred_at: datetime
    stamp: Stamp = LIVE


@dataclass(frozen=True, slots=True)
class MembershipChanged:
    """A person entered or left a segment (``holdout``: as a holdout member)."""

    TOPIC: ClassVar[str] = "segment_membership_changed"
    person_id: str
    segment: str
    change: ChangeKind
    holdout: bool
    rule: str
    detail: str
    eligible: Mapping[str, bool]
    occurred_at: datetime
    stamp: Stamp = LIVE

    @property
    def entered(self) -> bool:
        return self.change == "entered"


@dataclass(frozen=True, slots=True)
class ConsentChanged:
    """A person's consent for one purpose is now ``granted`` (or withdrawn)."""

    TOPIC: ClassVar[str] = "consent_changed"
    person_id: str
    purpose: str
    granted: bool
    occurred_at: datetime
    stamp: Stamp = LIVE


@dataclass(frozen=True, slots=True)
class PersonErased:
    """Tactful erased a person: every destination forgets them (by these identifiers)."""

    TOPIC: ClassVar[str] = "person_erased"
    person_id: str
    identifiers: Mapping[str, tuple[str, ...]]
    occurred_at: datetime
    stamp: Stamp = field(default=LIVE, init=False)


Message = StateChanged | MembershipChanged | ConsentChanged | PersonErased
MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.TOPIC: cls for cls in (StateChanged, MembershipChanged, ConsentChanged, PersonErased)
}
TOPICS = tuple(MESSAGE_TYPES)


# -- the codec ----------------------------------------------------------------------------
def _fields(message: Message) -> dict[str, object]:
    """The message's body with its times as they are (orjson writes them)."""
    out: dict[str, object] = {"person_id": message.person_id}
    if isinstance(message, StateChanged):
        out["old_state"] = message.old_state
        out["new_state"] = message.new_state
        out["changed"] = message.changed  # orjson writes tuples and dicts as they are
        out["values"] = _dict(message.values)
        out["eligible"] = _dict(message.eligible)
    elif isinstance(message, MembershipChanged):
        out["segment"] = message.segment
        out["change"] = message.change
        out["holdout"] = message.holdout
        out["rule"] = message.rule
        out["detail"] = message.detail
        out["eligible"] = _dict(message.eligible)
    elif isinstance(message, ConsentChanged):
        out["purpose"] = message.purpose
        out["granted"] = message.granted
    else:
        out["identifiers"] = {k: list(v) for k, v in message.identifiers.items()}
    out["occurred_at"] = message.occurred_at
    out.update(message.stamp.wire())
    return out


def _dict(mapping: Mapping[str, object]) -> Mapping[str, object]:
    return mapping if type(mapping) is dict else dict(mapping)


def dumps(message: Message) -> bytes:
    """The outbox payload of ``message`` (times as RFC 3339 UTC with ``Z``)."""
    return codec.exact(orjson.dumps(_fields(message), option=orjson.OPT_UTC_Z))


def body(message: Message) -> dict[str, Json]:
    """The message as its JSON object (the outbox payload, decoded)."""
    decoded: dict[str, Json] = orjson.loads(dumps(message))
    return decoded


def loads(topic: str, raw: bytes) -> Message:
    """The message of an outbox row (``KeyError``: an unknown topic)."""
    return from_body(topic, orjson.loads(raw))


def _state_value(name: str, value: Any) -> StateValue:
    if value is not None and FIELD_TYPES.get(name) == "time":
        return codec.parse_time(value)
    result: Json = value
    return result


def from_body(topic: str, data: dict[str, Any]) -> Message:
    cls = MESSAGE_TYPES[topic]
    pid = str(data["person_id"])
    at = codec.parse_time(data["occurred_at"])
    stamp = Stamp(bool(data.get("replayed")), bool(data.get("history")))
    if cls is StateChanged:
        return StateChanged(
            pid,
            data.get("old_state"),
            data.get("new_state"),
            tuple(data.get("changed", ())),
            {k: _state_value(k, v) for k, v in data.get("values", {}).items()},
            dict(data.get("eligible", {})),
            at,
            stamp,
        )
    if cls is MembershipChanged:
        change: ChangeKind = "entered" if data["change"] == "entered" else "exited"
        return MembershipChanged(
            pid,
            data["segment"],
            change,
            bool(data.get("holdout")),
            data.get("rule", ""),
            data.get("detail", ""),
            dict(data.get("eligible", {})),
            at,
            stamp,
        )
    if cls is ConsentChanged:
        return ConsentChanged(pid, data["purpose"], bool(data["granted"]), at, stamp)
    identifiers = {str(k): tuple(v) for k, v in data.get("identifiers", {}).items()}
    return PersonErased(pid, identifiers, at)


# -- what each message says ---------------------------------------------------------------
def state_changed(
    pid: str,
    old_state: str | None,
    values: Mapping[str, object],
    changed: Sequence[str],
    eligible: Mapping[str, bool],
    at: datetime,
    stamp: Stamp = LIVE,
) -> StateChanged:
    """``values``: the person's whole state now (only the ``changed`` fields are told)."""
    told: dict[str, Any] = {k: values.get(k) for k in changed}
    return StateChanged(
        pid,
        old_state,
        _text(values.get("support_state")),
        tuple(changed),
        told,
        dict(eligible),
        at,
        stamp,
    )


def membership_changed(
    pid: str, change: Change, eligible: Mapping[str, bool], stamp: Stamp = LIVE
) -> MembershipChanged:
    kind: ChangeKind = "entered" if change.change == "entered" else "exited"
    return MembershipChanged(
        pid,
        change.segment,
        kind,
        change.holdout,
        change.rule,
        change.detail,
        dict(eligible),
        change.at,
        stamp,
    )


def _text(value: object) -> str | None:
    return None if value is None else str(value)


# -- the net change -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Image:
    """What destinations know of a person: delivered state fields (empty: never told),
    memberships (segment -> holdout) and consent per purpose (``CONSENT_PURPOSES``)."""

    state: Mapping[str, Any] = field(default_factory=dict)
    memberships: Mapping[str, bool] = field(default_factory=dict)
    consents: tuple[bool | None, ...] = (None, None, None)


NOBODY = Image()


def nothing_to_say(state: Mapping[str, Any], memberships: Mapping[str, Any]) -> bool:
    """A person with state ``clear``, no segment and no ticket, rating or agent input: not
    an event for anyone (importing ticketless users sends nothing)."""
    if memberships or state.get("support_state", CLEAR) != CLEAR:
        return False
    return all(state.get(k) == v for k, v in BLANK_FIELDS.items())


def eligibility(memberships: Mapping[str, Membership], segments: Sequence[str]) -> dict[str, bool]:
    """Per configured segment: the person is a member and not a holdout. The switch to build
    suppression and targeting on in every channel (holdouts stay clean)."""
    out = {}
    for name in segments:
        m = memberships.get(name)
        out[name] = m is not None and m.member and not m.holdout
    return out


def net_messages(
    pid: str,
    told: Image,
    now: Image,
    at: datetime,
    rules: Mapping[str, str],
    stamp: Stamp,
) -> list[Message]:
    """What a destination told ``told`` must hear to know ``now``. ``rules``: each segment's
    rule text (also the order of the eligibility flags)."""
    eligible = {s: s in now.memberships and not now.memberships[s] for s in rules}
    out: list[Message] = []
    told_anything = bool(told.state) or bool(told.memberships)
    if told_anything:
        for purpose, before, after in zip(
            CONSENT_PURPOSES, told.consents, now.consents, strict=True
        ):
            if after is not None and before != after:
                out.append(ConsentChanged(pid, purpose, after, at, stamp))
    keys = [k for k in now.state if told.state.get(k) != now.state[k]]
    keys += [k for k in told.state if k not in now.state]
    if keys and (told_anything or not nothing_to_say(now.state, now.memberships)):
        old = told.state.get("support_state") if told.state else None
        out.append(state_changed(pid, old, now.state, keys, eligible, at, stamp))
    flags = ", ".join(f"{k}={v}" for k, v in sorted(stamp.wire().items()))
    detail = "net change: " + flags
    for segment in sorted(set(told.memberships) | set(now.memberships)):
        before, after = told.memberships.get(segment), now.memberships.get(segment)
        if before == after:
            continue
        rule = rules.get(segment, "")
        if before is not None:
            change = Change(segment, "exited", at, rule, before, detail)
            out.append(membership_changed(pid, change, eligible, stamp))
        if after is not None:
            change = Change(segment, "entered", at, rule, after, detail)
            out.append(membership_changed(pid, change, eligible, stamp))
    return out
