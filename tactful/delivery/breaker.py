"""A circuit breaker per destination, as pure transitions (the worker persists the state).

- ``closed``: sending as usual; ``failures`` counts consecutive failed sends (every item
  answered ``retry``: timeout, connection error, 5xx, 429, or the destination's code raised).
- ``open`` after ``threshold`` consecutive failures: nothing is sent until ``until``; the
  rows wait, pending (none is attempted, so none ages into a dead letter faster).
- ``half_open`` once ``until`` has passed: one probe (a batch of one item). Success closes
  the circuit; failure opens it again for twice the last cool-down (up to ``max_cooldown``).

The state lives in the store's meta table (``circuit:<destination>``), so ``tactful
deliveries``, ``/metrics`` and every ``serve``/``worker`` process sharing a database see it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import timedelta
from typing import Literal, Protocol

import orjson

State = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    threshold: int = 5
    cooldown: timedelta = timedelta(seconds=30)
    max_cooldown: timedelta = timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Circuit:
    state: State = "closed"
    failures: int = 0  # consecutive failed sends
    until_us: int = 0  # open: no sends before this time
    cooldown_us: int = 0  # the last cool-down (doubles on each failed probe)
    last_error: str = ""

    def dumps(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @staticmethod
    def loads(text: str | None) -> Circuit:
        if not text:
            return Circuit()
        raw = orjson.loads(text)
        return Circuit(
            raw.get("state", "closed"),
            int(raw.get("failures", 0)),
            int(raw.get("until_us", 0)),
            int(raw.get("cooldown_us", 0)),
            str(raw.get("last_error", "")),
        )


def admit(circuit: Circuit, now_us: int) -> Circuit | None:
    """The circuit to send under now, or None when it is open (send nothing).
    An open circuit whose cool-down has passed becomes ``half_open`` (send one probe)."""
    if circuit.state == "open":
        return replace(circuit, state="half_open") if now_us >= circuit.until_us else None
    return circuit


def record(
    circuit: Circuit, failed: bool, error: str, now_us: int, policy: BreakerPolicy
) -> Circuit:
    """The circuit after a send: ``failed`` when nothing got through."""
    if not failed:
        return Circuit()
    failures = circuit.failures + 1
    if circuit.state == "half_open":
        cooldown = min(2 * circuit.cooldown_us, _us(policy.max_cooldown))
    elif failures >= policy.threshold:
        cooldown = _us(policy.cooldown)
    else:
        return replace(circuit, failures=failures, last_error=error)
    return Circuit("open", failures, now_us + cooldown, cooldown, error)


def _us(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def meta_key(destination: str) -> str:
    return f"circuit:{destination}"


class _Meta(Protocol):
    def get_meta(self, key: str) -> str | None: ...


def circuits(reader: _Meta, names: Iterable[str]) -> dict[str, Circuit]:
    """The stored circuit of each destination (closed when none was stored)."""
    return {name: Circuit.loads(reader.get_meta(meta_key(name))) for name in names}
