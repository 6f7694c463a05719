"""Segment membership with cooldowns and holdouts, and ``support_state`` selection.

Pure: the moment of evaluation is a parameter. Phases (as in Dittofeed): state → assignment
→ diff. ``evaluate_person`` computes the support state and every segment's membership at
``now`` from the person's state values and previous memberships, and returns the changes and
the next moment at which anything could change with no new event (the person's timer).

Rules (product.md §5):

| before      | rule at now | cooldown        | after                                          |
|-------------|-------------|-----------------|------------------------------------------------|
| not member  | true        | any             | member since now (``entered`` at now)          |
| not member  | false       | any             | not member                                     |
| member      | true        | any             | member; a pending cooldown is cancelled        |
| member      | false       | none            | not member (``exited`` at now)                 |
| member      | false       | C, false since F| member until F + C; ``exited`` at F + C        |

Holdout membership is a deterministic function of (person id, segment name).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from tactful.core.state import CLEAR


class Evaluable(Protocol):
    def evaluate(
        self, values: Mapping[str, object], now: datetime
    ) -> tuple[bool, datetime | None]: ...


class StateSpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def rule(self) -> Evaluable: ...


class SegmentSpec(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def when(self) -> str: ...
    @property
    def rule(self) -> Evaluable: ...
    @property
    def cooldown(self) -> timedelta | None: ...
    @property
    def holdout(self) -> float: ...


@dataclass(frozen=True, slots=True)
class StateDef:
    """A ``[[states]]`` entry, resolved once (plain attributes on the hot path)."""

    name: str
    rule: Evaluable


@dataclass(frozen=True, slots=True)
class SegmentDef:
    """A ``[[segments]]`` entry, resolved once."""

    name: str
    when: str
    rule: Evaluable
    cooldown: timedelta | None = None
    holdout: float = 0.0


@dataclass(frozen=True, slots=True)
class Membership:
    member: bool
    since: datetime | None = None  # entered at (while member)
    false_since: datetime | None = None  # rule false while member: cooldown running
    holdout: bool = False


NOT_MEMBER = Membership(member=False)


@dataclass(frozen=True, slots=True)
class Change:
    segment: str
    change: Literal["entered", "exited"]
    at: datetime
    rule: str
    holdout: bool
    detail: str = ""


def in_holdout(person_id: str, segment: str, fraction: float) -> bool:
    """Deterministic in (person, segment): the same answer across restarts and replays."""
    if fraction <= 0:
        return False
    digest = hashlib.sha256(f"{segment}\x00{person_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    if a is None:
        return b
    if b is None:
        return a
    return a if a <= b else b


def choose_state(
    states: Sequence[StateSpec], values: Mapping[str, object], now: datetime
) -> tuple[str, datetime | None]:
    """First state whose rule holds, else ``clear``; and when that could change."""
    wake: datetime | None = None
    for spec in states:
        holds, next_change = spec.rule.evaluate(values, now)
        if next_change is not None and (wake is None or next_change < wake):
            wake = next_change  # the earliest (as ``_earliest``)
        if holds:
            return spec.name, wake
    return CLEAR, wake


def step_segment(
    spec: SegmentSpec,
    person_id: str,
    before: Membership,
    holds: bool,
    rule_next: datetime | None,
    now: datetime,
) -> tuple[Membership, Change | None, datetime | None]:
    """One segment's membership at ``now``; returns (after, change, next wake)."""
    if holds:
        if before.member:
            after = replace(before, false_since=None) if before.false_since else before
            return after, None, rule_next
        holdout = in_holdout(person_id, spec.name, spec.holdout)
        change = Change(spec.name, "entered", now, spec.when, holdout)
        return Membership(True, now, None, holdout), change, rule_next
    if not before.member:
        return before, None, rule_next
    cooldown = spec.cooldown
    if not cooldown:
        change = Change(spec.name, "exited", now, spec.when, before.holdout, "rule no longer holds")
        return NOT_MEMBER, change, rule_next
    false_since = before.false_since or now
    ends = false_since + cooldown
    if now >= ends:
        detail = f"rule false since {_iso(false_since)}; cooldown ended"
        change = Change(spec.name, "exited", ends, spec.when, before.holdout, detail)
        return NOT_MEMBER, change, rule_next
    after = replace(before, false_since=false_since)
    return after, None, _earliest(rule_next, ends)


@dataclass(frozen=True, slots=True)
class Evaluation:
    support_state: str
    memberships: dict[str, Membership]
    changes: list[Change]
    wake: datetime | None  # next moment anything could change with no new event


def evaluate_person(
    person_id: str,
    values: dict[str, Any],
    memberships: Mapping[str, Membership],
    states: Sequence[StateSpec],
    segments: Sequence[SegmentSpec],
    now: datetime,
) -> Evaluation:
    """Support state and all segment memberships at ``now``.

    ``values`` holds the derived state fields; ``support_state`` is set in it.
    """
    support_state, wake = choose_state(states, values, now)
    values["support_state"] = support_state
    after: dict[str, Membership] = {}
    changes: list[Change] = []
    for spec in segments:
        name = spec.name
        holds, rule_next = spec.rule.evaluate(values, now)
        before = memberships.get(name, NOT_MEMBER)
        if (before.member and before.false_since is None) if holds else not before.member:
            # Steady: a member whose rule holds (no cooldown running) or a non-member whose
            # rule does not; ``step_segment`` would return ``before`` and ``rule_next``.
            after[name] = before
            seg_wake = rule_next
        else:
            after[name], change, seg_wake = step_segment(
                spec, person_id, before, holds, rule_next, now
            )
            if change is not None:
                changes.append(change)
        if seg_wake is not None and (wake is None or seg_wake < wake):
            wake = seg_wake
    return Evaluation(support_state, after, changes, wake)


def advance_person(
    person_id: str,
    values: dict[str, Any],
    memberships: Mapping[str, Membership],
    states: Sequence[StateSpec],
    segments: Sequence[SegmentSpec],
    wake: datetime | None,
    until: datetime,
) -> tuple[Evaluation | None, list[Change]]:
    """Fire the person's time-based changes at their exact moments up to ``until``.

    Used for previews (``--now T``) and by the engine's timers. Returns the last
    evaluation (None if nothing was due) and every change on the way, in order.
    """
    last: Evaluation | None = None
    changes: list[Change] = []
    current: Mapping[str, Membership] = memberships
    while wake is not None and wake <= until:
        last = evaluate_person(person_id, values, current, states, segments, wake)
        changes.extend(last.changes)
        current = last.memberships
        if last.wake is not None and last.wake <= wake:
            break  # defensive: rules guarantee next change > now
        wake = last.wake
    return last, changes
