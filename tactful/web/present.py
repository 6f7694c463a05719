"""How values read on the pages: times as "2 h ago" with the exact time beside them, and
plain words for booleans, lists and unset values (never a Python repr)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

_UNITS = (("d", 86400), ("h", 3600), ("min", 60))
_LONG = {"d": "day", "h": "hour", "min": "minute", "s": "second"}


@dataclass(frozen=True)
class Moment:
    """A time as the templates show it: ``<time datetime=iso title=exact>relative</time>``;
    the page's script rewrites ``exact`` into the agent's time zone."""

    iso: str  # RFC 3339, UTC, whole seconds
    exact: str  # "Dec 5, 10:05 UTC" (with the year when it is not the current one)
    relative: str  # "2 h ago", "in 3 d", "just now"


def exact(at: datetime, now: datetime | None = None) -> str:
    at = at.astimezone(UTC)
    year = "" if now is not None and now.astimezone(UTC).year == at.year else f" {at.year}"
    return f"{at:%b} {at.day}{year}, {at:%H:%M} UTC"


def span(seconds: float, *, long: bool = False) -> str:
    """A length of time in its largest whole unit: "7 d", "2 h", "5 min", "30 s" (long:
    "7 days", "1 hour")."""
    seconds = abs(seconds)
    n, unit = int(seconds), "s"
    for name, size in _UNITS:
        if seconds >= size:
            n, unit = int(seconds // size), name
            break
    if not long:
        return f"{n} {unit}"
    word = _LONG[unit]
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def relative(at: datetime, now: datetime) -> str:
    delta = (now - at).total_seconds()
    if abs(delta) < 60:
        return "just now"
    return f"{span(delta)} ago" if delta > 0 else f"in {span(delta)}"


def moment(at: datetime, now: datetime) -> Moment:
    iso = at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    return Moment(iso, exact(at, now), relative(at, now))


@dataclass(frozen=True)
class At:
    """A time inside a sentence: shown ``exact`` ("Dec 5, 10:05") or ``relative`` ("2 h
    ago"), the other way on hover."""

    at: datetime
    style: str = "relative"  # or "exact"


Phrase = tuple[str | At, ...]


def text(phrase: Phrase, now: datetime) -> str:
    """A phrase as plain text (UTC)."""
    return "".join(
        p if isinstance(p, str) else exact(p.at, now) if p.style == "exact" else relative(p.at, now)
        for p in phrase
    )


def words(value: object) -> str:
    """A stored value in words: yes/no, comma lists, "—" for unset."""
    if value is None or value == "" or value == [] or value == ():
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return exact(value)
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(str(v) for v in value)
    return str(value)
