"""The sidebar's words: the plain leading sentence, each segment's reason, and when the
person leaves it.

Everything here is derived from the configuration and the person's state, never from a
segment's name: the reason names the state fields the segment's rule reads (that are set),
and "ends N days after the ticket is solved" comes from evaluating the rule on the same
state with the open tickets solved now.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from tactful.core.segments import Membership
from tactful.core.state import STATE_FIELD_NAMES
from tactful.web.present import At, Phrase, span, words

_FIELD = re.compile(r"[a-z_][a-z0-9_]*")


class Evaluable(Protocol):
    def evaluate(
        self, values: Mapping[str, object], now: datetime
    ) -> tuple[bool, datetime | None]: ...


class SegmentLike(Protocol):
    @property
    def name(self) -> str: ...
    @property
    def when(self) -> str: ...
    @property
    def description(self) -> str: ...
    @property
    def cooldown(self) -> timedelta | None: ...
    @property
    def rule(self) -> Evaluable: ...


@dataclass(frozen=True)
class SegmentWords:
    name: str
    label: str  # the description, else the name in words
    rule: str
    member: bool
    holdout: bool
    since: datetime | None
    reason: Phrase  # why, in words (empty when not a member)
    ends: Phrase  # when they leave, in words (empty when not a member)


def label_of(spec: SegmentLike) -> str:
    return spec.description.strip() or spec.name.replace("_", " ").capitalize()


def fields_of(rule: str) -> list[str]:
    """State fields a rule reads, in order of first mention (strings in quotes skipped)."""
    bare = re.sub(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'", " ", rule)
    known = set(STATE_FIELD_NAMES)
    out: list[str] = []
    for name in _FIELD.findall(bare):
        if name in known and name not in out:
            out.append(name)
    return out


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def tickets_phrase(values: Mapping[str, Any]) -> str:
    count = int(values.get("open_ticket_count") or 0)
    if not values.get("has_open_ticket") or count == 0:
        return "no open ticket"
    reasons = [r for r in values.get("open_reasons") or () if r != "other"]
    if count == 1:
        return f"open {reasons[0]} ticket" if reasons else "open ticket"
    about = f" ({', '.join(reasons)})" if reasons else ""
    return f"{count} open tickets{about}"


def sentiment_words(score: float) -> str:
    """A sentiment score (VADER's compound, -1 to 1) in words an agent reads at a glance."""
    if score <= -0.5:
        return "very upset"
    if score <= -0.05:
        return "unhappy"
    if score < 0.05:
        return "neutral"
    return "happy" if score < 0.5 else "very happy"


def mood(values: Mapping[str, Any]) -> Phrase:
    """How the customer sounded in their latest words, and when (empty: nothing read)."""
    score, at = values.get("last_sentiment"), values.get("sentiment_at")
    if not isinstance(score, int | float) or isinstance(score, bool):
        return ()
    said = f"sounded {sentiment_words(float(score))}"
    return (said, " ", At(at)) if isinstance(at, datetime) else (said,)


def _phrase(field: str, values: Mapping[str, Any], now: datetime) -> tuple[str, Phrase] | None:
    """(topic, words) for one field, or None when it is unset; fields of one topic (an open
    ticket's count, reasons, ...) give one phrase."""
    value = values.get(field)
    if field in ("has_open_ticket", "open_ticket_count", "open_reasons"):
        return "tickets", (tickets_phrase(values),)
    if value is None or value == [] or value == "":
        return None
    if isinstance(value, datetime):
        timed: dict[str, tuple[str, str]] = {
            "last_activity_at": ("activity", "ticket activity "),
            "last_ticket_at": ("last_ticket", "last ticket "),
            "last_resolved_at": ("resolved", "ticket solved "),
            "last_refund_at": ("refund_at", "refund ticket "),
            "health_at": ("health", "health set "),
        }
        if field in timed:
            topic, words_before = timed[field]
            return topic, (words_before, At(value))
        if field == "promo_override_until":
            if value <= now:
                return None
            return "override", ("an agent paused promos until ", At(value, "exact"))
    simple: dict[str, tuple[str, Callable[[], str]]] = {
        "refund_risk": ("refund", lambda: "refund risk" if value else ""),
        "priority": ("priority", lambda: f"{value} priority"),
        "health": ("health", lambda: f"agent marked them {value}"),
        "ticket_tags": ("tags", lambda: f"ticket tags {words(value)}"),
        "ticket_reason": ("reason", lambda: f"latest ticket about {value}"),
        "last_ticket_status": ("status", lambda: f"latest ticket {value}"),
        "ticket_count": ("count", lambda: _plural(int(str(value)), "ticket")),
        "support_state": ("state", lambda: f"support state {value}"),
    }
    if field in simple:
        topic, make = simple[field]
        made = make()
        return (topic, (made,)) if made else None
    if field in ("last_sentiment", "sentiment_at"):
        said = mood(values)
        return ("mood", said) if said else None
    if field == "negative_ticket":
        return ("negative", ("upset in an open ticket",)) if value else None
    if field in ("reason_source", "reason_confidence"):
        source, sure = values.get("reason_source"), values.get("reason_confidence")
        if source != "model":
            return ("reason_source", (f"reason from a {source}",)) if source else None
        percent = f" ({round(float(sure) * 100)}% sure)" if isinstance(sure, float) else ""
        return "reason_source", (f"reason learned from their words{percent}",)
    if field in ("csat_score", "csat_at"):
        score, at = values.get("csat_score"), values.get("csat_at")
        rated = f"rated support {score}/5" if score is not None else "rated support"
        return "csat", (rated, " ", At(at)) if isinstance(at, datetime) else (rated,)
    return field, (f"{field.replace('_', ' ')} {words(value)}",)


def reason(rule: str, values: Mapping[str, Any], now: datetime) -> Phrase:
    topics: dict[str, Phrase] = {}
    for field in fields_of(rule):
        found = _phrase(field, values, now)
        if found is not None and found[0] not in topics:
            topics[found[0]] = found[1]
    out: list[str | At] = []
    for i, phrase in enumerate(topics.values()):
        out.extend(((", ",) if i else ()) + phrase)
    return tuple(out)


def _solved_now(values: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The same person as if every open ticket were solved at ``now``."""
    return {
        **values,
        "has_open_ticket": False,
        "open_ticket_count": 0,
        "open_reasons": [],
        "refund_risk": False,
        "priority": None,
        "ticket_tags": [],
        "last_ticket_status": "solved",
        "last_activity_at": now,
        "last_resolved_at": now,
    }


def _flips_at(rule: Evaluable, values: Mapping[str, Any], now: datetime) -> datetime | None:
    """The first moment (time passing alone) at which the rule stops holding; None: never."""
    holds, nxt = rule.evaluate(values, now)
    steps = 0
    while holds and nxt is not None and steps < 50:
        holds, later = rule.evaluate(values, nxt)
        if not holds:
            return nxt
        nxt, steps = later, steps + 1
    return now if not holds else None


def ends(spec: SegmentLike, m: Membership, values: Mapping[str, Any], now: datetime) -> Phrase:
    cooldown = spec.cooldown or timedelta(0)
    if m.false_since is not None:
        at = m.false_since + cooldown
        return ("Ends ", At(at), " (", At(at, "exact"), "), when its cooldown is over.")
    flip = _flips_at(spec.rule, values, now)
    if flip is not None:
        at = flip + cooldown
        return ("Ends ", At(at), " (", At(at, "exact"), ") unless something changes.")
    if values.get("has_open_ticket"):
        after = _flips_at(spec.rule, _solved_now(values, now), now)
        count = int(values.get("open_ticket_count") or 0)
        what = "the ticket is solved" if count <= 1 else "the open tickets are solved"
        if after is not None:
            wait = (after - now) + cooldown
            lead = f"{span(wait.total_seconds(), long=True)} after" if wait else "when"
            return (f"Ends {lead} {what}.",)
    return ("Stays until that changes.",)


def segment_words(
    specs: Sequence[SegmentLike],
    memberships: Mapping[str, Membership],
    values: Mapping[str, Any],
    now: datetime,
) -> list[SegmentWords]:
    out = []
    for spec in specs:
        m = memberships.get(spec.name)
        member = m is not None and m.member
        out.append(
            SegmentWords(
                spec.name,
                label_of(spec),
                spec.when,
                member,
                bool(m.holdout) if m is not None and member else False,
                m.since if m is not None and member else None,
                reason(spec.when, values, now) if member else (),
                ends(spec, m, values, now) if m is not None and member else (),
            )
        )
    return out


def lead(segments: Sequence[SegmentWords]) -> Phrase:
    """One sentence an agent can act on: the first segment the person is in (holdouts
    aside), since when and why, when it ends, and the others."""
    shown = [s for s in segments if s.member and not s.holdout]
    if not shown:
        held = [s.label for s in segments if s.member]
        if held:
            return (
                f"Held out for measurement in {', '.join(held)}: marketing treats them as usual.",
            )
        return ("In no segment: marketing treats them as usual.",)
    first = shown[0]
    out: list[str | At] = [first.label]
    if first.since is not None:
        out += [" since ", At(first.since, "exact")]
    if first.reason:
        out += [" — ", *first.reason]
    out += [". ", *first.ends]
    others = [s.label for s in shown[1:]]
    if others:
        out.append(f" Also in: {', '.join(others)}.")
    return tuple(out)
