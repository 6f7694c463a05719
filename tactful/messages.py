"""The engine's messages to destinations (outbox rows) and the net change between two images.

One builder per topic, so a live change, a history catch-up and a replay correction have the
same shape. ``net_rows(told, now)`` is what a destination must hear to go from what it was
last told of a person to the truth now, and nothing else (product.md section 4: a replay
tells each destination only the net difference):

- one ``support_state_changed`` when a delivered field differs, naming only those fields;
- one ``segment_membership_changed`` per segment whose membership (or holdout mark) differs;
- one ``consent_changed`` per purpose whose consent differs, for a person told anything.

Rows are stamped with what made them (``{"replayed": true}`` after a replay,
``{"history": true}`` for imported history older than the horizon): docs/concepts.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from tactful.core import codec
from tactful.core.segments import Change, Membership
from tactful.core.state import PersonFacts, fact_fields, ticket_fields
from tactful.store.base import OutboxRow, PersonRow

PURPOSES = ("ads", "email", "analytics")
CLEAR = "clear"
Stamp = Mapping[str, bool]
LIVE: Stamp = {}
REPLAYED: Stamp = {"replayed": True}
HISTORY: Stamp = {"history": True}

# The derived fields of a person about whom nothing is known (no ticket, rating or health).
BLANK_FIELDS: dict[str, Any] = {**ticket_fields([]), **fact_fields(PersonFacts())}


@dataclass(frozen=True, slots=True)
class Image:
    """What destinations know of a person: delivered state fields (empty: never told),
    memberships (segment -> holdout) and consent per purpose."""

    state: Mapping[str, Any] = field(default_factory=dict)
    memberships: Mapping[str, bool] = field(default_factory=dict)
    consents: tuple[bool | None, ...] = (None, None, None)


NOBODY = Image()


def image_of(row: PersonRow) -> Image:
    return Image(
        dict(row.state),
        {s: m.holdout for s, m in row.memberships.items() if m.member},
        tuple(row.facts.consent_for(p) for p in PURPOSES),
    )


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


def _row(pid: str, topic: str, at: datetime, payload: dict[str, Any], stamp: Stamp) -> OutboxRow:
    body = {**payload, **stamp}
    return OutboxRow(pid, topic, at, codec.exact(orjson.dumps(body, option=orjson.OPT_UTC_Z)))


def state_row(
    pid: str,
    old_state: str | None,
    values: Mapping[str, Any],
    changed: Sequence[str],
    eligible: Mapping[str, bool],
    at: datetime,
    stamp: Stamp = LIVE,
) -> OutboxRow:
    payload = {
        "person_id": pid,
        "old_state": old_state,
        "new_state": values.get("support_state"),
        "changed": list(changed),
        "values": {k: values.get(k) for k in changed},
        "eligible": dict(eligible),
        "occurred_at": at,
    }
    return _row(pid, "support_state_changed", at, payload, stamp)


def membership_row(
    pid: str, change: Change, eligible: Mapping[str, bool], stamp: Stamp = LIVE
) -> OutboxRow:
    payload = {
        "person_id": pid,
        "segment": change.segment,
        "change": change.change,
        "holdout": change.holdout,
        "rule": change.rule,
        "detail": change.detail,
        "eligible": dict(eligible),
        "occurred_at": codec.format_time(change.at),
    }
    return _row(pid, "segment_membership_changed", change.at, payload, stamp)


def consent_row(
    pid: str, purpose: str, granted: bool, at: datetime, stamp: Stamp = LIVE
) -> OutboxRow:
    payload = {"person_id": pid, "purpose": purpose, "granted": granted, "occurred_at": at}
    return _row(pid, "consent_changed", at, payload, stamp)


def net_rows(
    pid: str,
    told: Image,
    now: Image,
    at: datetime,
    rules: Mapping[str, str],
    stamp: Stamp,
) -> list[OutboxRow]:
    """What a destination told ``told`` must hear to know ``now``. ``rules``: each segment's
    rule text (also the order of the eligibility flags)."""
    eligible = {s: s in now.memberships and not now.memberships[s] for s in rules}
    out: list[OutboxRow] = []
    told_anything = bool(told.state) or bool(told.memberships)
    if told_anything:
        for purpose, before, after in zip(PURPOSES, told.consents, now.consents, strict=True):
            if after is not None and before != after:
                out.append(consent_row(pid, purpose, after, at, stamp))
    keys = [k for k in now.state if told.state.get(k) != now.state[k]]
    keys += [k for k in told.state if k not in now.state]
    if keys and (told_anything or not nothing_to_say(now.state, now.memberships)):
        old = told.state.get("support_state") if told.state else None
        out.append(state_row(pid, old, now.state, keys, eligible, at, stamp))
    detail = "net change: " + ", ".join(f"{k}={v}" for k, v in sorted(stamp.items()))
    for segment in sorted(set(told.memberships) | set(now.memberships)):
        before, after = told.memberships.get(segment), now.memberships.get(segment)
        if before == after:
            continue
        rule = rules.get(segment, "")
        if before is not None:
            change = Change(segment, "exited", at, rule, before, detail)
            out.append(membership_row(pid, change, eligible, stamp))
        if after is not None:
            change = Change(segment, "entered", at, rule, after, detail)
            out.append(membership_row(pid, change, eligible, stamp))
    return out
