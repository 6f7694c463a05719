"""Read models: the JSON shapes of product.md §7 (person, segments), shared by CLI and API.

``--now T`` previews run the same pure segment machine forward from the stored state,
changing nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tactful.core import codec
from tactful.core.events import CONSENT_PURPOSES, IDENTIFIER_KINDS
from tactful.core.segments import Membership, advance_person, evaluate_person
from tactful.core.state import STATE_FIELD_NAMES
from tactful.engine.engine import CLOCK_KEY, Rules
from tactful.store.base import PersonRow, Reader


def fmt(value: datetime | None) -> str | None:
    return None if value is None else codec.format_time(value)


def clock_of(reader: Reader) -> datetime | None:
    text = reader.get_meta(CLOCK_KEY)
    return None if text is None else codec.parse_time(text)


@dataclass
class Preview:
    state: dict[str, Any]
    memberships: dict[str, Membership]
    history_extra: list[dict[str, Any]]


def preview(rules: Rules, row: PersonRow, clock: datetime | None, now: datetime) -> Preview:
    """The person as of ``now`` without changing anything."""
    values = {k: v for k, v in row.state.items() if k != "support_state"}
    if clock is not None and now < clock:
        ev = evaluate_person(
            row.person_id, dict(values), row.memberships, rules.states, rules.segments, now
        )
        state = dict(values, support_state=ev.support_state)
        return Preview(state, ev.memberships, [])
    last, changes = advance_person(
        row.person_id, values, row.memberships, rules.states, rules.segments, row.wake, now
    )
    if last is None:
        return Preview(dict(row.state), row.memberships, [])
    extra = [change_json(c.segment, c.change, c.at, c.rule, c.detail) for c in changes]
    return Preview(dict(values, support_state=last.support_state), last.memberships, extra)


def change_json(segment: str, change: str, at: datetime, rule: str, detail: str) -> dict[str, Any]:
    out: dict[str, Any] = {"segment": segment, "change": change, "at": fmt(at), "rule": rule}
    if detail:
        out["detail"] = detail
    return out


def state_json(state: dict[str, Any]) -> dict[str, Any]:
    return {
        name: (fmt(state.get(name)) if isinstance(state.get(name), datetime) else state.get(name))
        for name in STATE_FIELD_NAMES
    }


def person_json(
    reader: Reader,
    rules: Rules,
    consent_defaults: dict[str, bool],
    person_id: str,
    *,
    now: datetime | None = None,
    with_history: bool = True,
) -> dict[str, Any] | None:
    rows = reader.load_persons([person_id])
    row = rows.get(person_id)
    if row is None:
        return None
    idents = reader.identifiers_of([person_id])[person_id]
    identifiers: dict[str, list[str]] = {kind: [] for kind in IDENTIFIER_KINDS}
    for kind, value in idents:
        identifiers.setdefault(kind, []).append(value)
    state, memberships, extra = row.state, row.memberships, []
    if now is not None:
        p = preview(rules, row, clock_of(reader), now)
        state, memberships, extra = p.state, p.memberships, p.history_extra
    segments = {}
    for spec in rules.segments:
        m = memberships.get(spec.name)
        member = m is not None and m.member
        segments[spec.name] = {
            "member": member,
            "since": fmt(m.since) if member and m is not None else None,
            "holdout": bool(m.holdout) if member and m is not None else False,
        }
    consent = {}
    for purpose in CONSENT_PURPOSES:
        known = row.facts.consent_for(purpose)
        consent[purpose] = consent_defaults.get(purpose, True) if known is None else known
    out: dict[str, Any] = {
        "person_id": person_id,
        "identifiers": identifiers,
        "state": state_json(state),
        "segments": segments,
    }
    if with_history:
        history = [
            change_json(c.segment, c.change, c.at, c.rule, c.detail)
            for c in reader.history_of(person_id)
        ]
        out["history"] = history + extra
    out["consent"] = consent
    return out


def resolve_key(reader: Reader, key: str, default_region: str | None) -> list[str]:
    """Person ids matching KEY: a person id, email, phone, external id or Zendesk user id."""
    from tactful.core.identity import normalize_email, normalize_phone

    key = key.strip()
    if key.startswith("p_"):
        found = reader.resolve_person_id(key)
        if found is not None:
            return [found]
    candidates: list[str] = []
    email = normalize_email(key)
    if email is not None:
        candidates += reader.find_persons("email", email)
    if key.isascii() and key.isdigit():  # "³".isdigit() is true, int("³") fails
        candidates += reader.find_persons("zendesk_user_id", str(int(key)))
    phone = normalize_phone(key, default_region) if any(ch.isdigit() for ch in key) else None
    if phone is not None:
        candidates += reader.find_persons("phone", phone)
    candidates += reader.find_persons("external_id", key)
    seen: list[str] = []
    for pid in candidates:
        found = reader.resolve_person_id(pid)
        if found is not None and found not in seen:
            seen.append(found)
    return seen


def iter_person_ids(reader: Reader, page: int = 1000) -> Iterator[str]:
    after: str | None = None
    while True:
        ids = reader.person_ids(after, page)
        if not ids:
            return
        yield from ids
        after = ids[-1]


@dataclass
class RulePreview:
    """What a segment would hold with rule ``when`` at the engine clock: who matches, and
    who would enter or exit compared with the segment's members now (exits ignore the
    cooldown: they are people the rule no longer matches)."""

    segment: str
    when: str
    as_of: datetime
    matching: list[str]
    entering: list[str]
    exiting: list[str]


def rule_preview(reader: Reader, rules: Rules, segment: str, when: str, rule: Any) -> RulePreview:
    """Evaluate ``rule`` (a parsed rule with ``evaluate(values, now)``) on every person as of
    the engine clock. Reads every person: seconds on a large store. Changes nothing."""
    clock = clock_of(reader)
    if clock is None:
        raise ValueError("the store is empty: import data first")
    out = RulePreview(segment, when, clock, [], [], [])
    for pid in iter_person_ids(reader):
        row = reader.load_persons([pid]).get(pid)
        if row is None:
            continue
        state = preview(rules, row, clock, clock).state
        holds, _ = rule.evaluate(state, clock)
        member = segment in row.memberships and row.memberships[segment].member
        if holds:
            out.matching.append(pid)
            if not member:
                out.entering.append(pid)
        elif member:
            out.exiting.append(pid)
    return out
