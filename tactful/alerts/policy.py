"""What to tell whom (pure): de-duplication, ``for``, ``repeat`` and resolved notices.

The state of one alert (a rule on a destination) is kept between checks (store ``meta``,
``alert:<rule>:<destination>``), so a restart, or another process taking over the checks,
neither repeats a notice nor forgets one owed:

- the condition starts holding: ``since`` is noted; nothing is told before it has held for
  the rule's ``for``;
- it has held long enough: each channel of ``notify`` is told **firing** once; again
  (**repeat**) every ``repeat`` while it still holds, if the rule sets one;
- it stops holding: each channel that was told it fired is told **resolved**, once; an
  alert that stopped before anyone was told is dropped silently;
- a notice that could not be delivered stays owed and is tried at the next check (the
  channels are independent: one failing never makes another hear a notice twice).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Literal

import orjson

from tactful.alerts.rules import Finding, window_us

NoticeKind = Literal["firing", "repeat", "resolved"]


@dataclass(frozen=True)
class AlertState:
    since_us: int  # when the condition was first seen holding
    told: dict[str, int] = field(default_factory=dict)  # channel -> last firing notice (µs)
    value: float = 0.0
    summary: str = ""
    holds: bool = True  # False: resolved, a channel still to be told so

    def dumps(self) -> str:
        data = {"since_us": self.since_us, "told": self.told, "value": self.value}
        return orjson.dumps({**data, "summary": self.summary, "holds": self.holds}).decode()

    @staticmethod
    def loads(text: str | None) -> AlertState | None:
        if not text:
            return None
        raw = orjson.loads(text)
        told = {str(k): int(v) for k, v in dict(raw.get("told", {})).items()}
        return AlertState(
            int(raw["since_us"]),
            told,
            float(raw.get("value", 0)),
            str(raw.get("summary", "")),
            bool(raw.get("holds", True)),
        )

    def firing(self, hold: timedelta, now_us: int) -> bool:
        """Holding for at least ``hold`` (the rule's ``for``)."""
        return self.holds and now_us - self.since_us >= window_us(hold)


@dataclass(frozen=True)
class Notice:
    channel: str
    kind: NoticeKind
    rule: str
    destination: str
    severity: str
    since_us: int
    summary: str
    value: float
    after_us: int = 0  # repeat: when the channel was last told (tells repeats apart)

    @property
    def key(self) -> str:
        """Stable for one notice across retries (a receiver's idempotency key)."""
        return f"{self.rule}:{self.destination}:{self.since_us}:{self.kind}:{self.after_us}"


def meta_key(rule: str, destination: str) -> str:
    return f"alert:{rule}:{destination}"


def due(
    state: AlertState | None,
    finding: Finding,
    *,
    notify: Sequence[str],
    hold: timedelta,
    repeat: timedelta | None,
    severity: str,
    now_us: int,
) -> tuple[AlertState | None, list[Notice]]:
    """The alert's state after this check (before any notice is delivered) and the notices
    owed now. Deliver them, then record each delivered one with ``delivered``."""

    def notice(channel: str, kind: NoticeKind, s: AlertState, after_us: int = 0) -> Notice:
        return Notice(
            channel, kind, finding.rule, finding.destination, severity, s.since_us,
            finding.summary, finding.value, after_us,
        )  # fmt: skip

    if not finding.holds:
        if state is None:
            return None, []
        resolved = replace(state, value=finding.value, summary=finding.summary, holds=False)
        return resolved, [notice(ch, "resolved", resolved) for ch in sorted(state.told)]
    if state is None or not state.holds:  # a new incident (channels not yet told it ended
        # keep their firing notice: they are not told it again)
        state = AlertState(now_us, state.told if state is not None else {})
    current = replace(state, value=finding.value, summary=finding.summary)
    if not current.firing(hold, now_us):
        return current, []
    owed: list[Notice] = []
    for channel in notify:
        last = current.told.get(channel)
        if last is None:
            owed.append(notice(channel, "firing", current))
        elif repeat is not None and now_us - last >= window_us(repeat):
            owed.append(notice(channel, "repeat", current, last))
    return current, owed


def delivered(state: AlertState | None, notice: Notice, now_us: int) -> AlertState | None:
    """The state once ``notice`` reached its channel (None: nothing left to remember)."""
    if state is None:
        return None
    told = dict(state.told)
    if notice.kind == "resolved":
        told.pop(notice.channel, None)
        return replace(state, told=told) if told else None
    told[notice.channel] = now_us
    return replace(state, told=told)


def settled(state: AlertState | None, finding: Finding) -> AlertState | None:
    """After the notices of a check: an alert that no longer holds and that no channel
    still has to hear about is forgotten."""
    if state is None or (not finding.holds and not state.told):
        return None
    return state
