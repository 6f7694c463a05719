"""The shape every destination has: config → client → capabilities, and one ``send``.

The delivery worker (``tactful.delivery``) routes outbox rows to destinations, batches them
within each destination's limits, and calls ``send`` with items that already passed the
consent and holdout filters. A destination translates items into its vendor's documented
API and reports, per item, what happened. It never decides about retries itself: it
classifies failures (``Outcome``) and the pure retry policy decides.

Items carry everything a destination may send, already filtered by consent:
identifiers only when the person consented to the destination's purpose. The one exception
is ``unsubscribe``: sent when a person withdraws consent, so that the vendor stops
marketing to an address it already holds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from tactful.core.events import Purpose as Purpose
from tactful.http.retry import parse_retry_after as parse_retry_after
from tactful.http.retry import retryable

ItemKind = Literal[
    "audience_add",  # person entered the destination's segment (ad audiences)
    "audience_remove",  # person left it, lost consent, or was erased
    "profile",  # current state + zendesk vars of a person (ESPs, warehouse current table)
    "event",  # a named event (state change, segment change, ticket created/resolved, csat)
    "erase",  # delete the person at the destination
    "unsubscribe",  # the person withdrew consent for the destination's purpose (ESPs)
]


@dataclass(frozen=True, slots=True)
class Identifiers:
    """Normalized (not hashed) identifiers; destinations hash per their own rules."""

    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()  # E.164
    external_ids: tuple[str, ...] = ()
    zendesk_user_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Item:
    """One thing to deliver. ``key`` is stable across retries (idempotency key)."""

    key: str
    kind: ItemKind
    person_id: str
    at: datetime
    identifiers: Identifiers
    name: str = ""  # event name (kind == "event"), e.g. "support_state_changed"
    segment: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)  # event properties / state
    # The person's own stated consent per purpose; a purpose never stated is absent (the
    # item passed the configured default). Ad platforms send it as per-person signals.
    consent: Mapping[str, bool] = field(default_factory=dict)


OutcomeKind = Literal["ok", "retry", "reject", "skip"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one item.

    - ``ok``: delivered (or already there: idempotent).
    - ``retry``: transient (429, 5xx, timeout, connection); ``retry_after`` seconds if the
      vendor said so.
    - ``reject``: permanent for this item (4xx other than 408/409/429): it will be
      dead-lettered with ``error``; the rest of the batch is unaffected.
    - ``skip``: nothing this destination can act on (the person has no identifier the
      platform can match): counted as skipped, never retried nor dead-lettered.
    """

    kind: OutcomeKind
    error: str = ""
    retry_after: float | None = None
    status: int | None = None

    @staticmethod
    def ok() -> Outcome:
        return Outcome("ok")


@dataclass(frozen=True, slots=True)
class PlatformReport:
    """What the platform itself said about a send, as a whole (kept with the sync run):
    the rows it says it received and found invalid, its own status for the request or job,
    and its diagnostics (reasons only: never the identifiers it quotes); and, read from an
    ad audience (``audience_report``), the audience's size as the platform reports it (a
    range, bounds as given) and the match rate of the uploads it reported on."""

    received: int | None = None
    invalid: int | None = None
    status: str = ""
    diagnostics: tuple[str, ...] = ()
    audience_lower: int | None = None
    audience_upper: int | None = None
    match_rate: str = ""  # as the platform words it, e.g. "61-70%"

    def merge(self, other: PlatformReport) -> PlatformReport:
        def total(a: int | None, b: int | None) -> int | None:
            return b if a is None else a if b is None else a + b

        def latest(a: int | None, b: int | None) -> int | None:
            return a if b is None else b

        return PlatformReport(
            total(self.received, other.received),
            total(self.invalid, other.invalid),
            other.status or self.status,
            tuple(dict.fromkeys(self.diagnostics + other.diagnostics))[:MAX_DIAGNOSTICS],
            latest(self.audience_lower, other.audience_lower),
            latest(self.audience_upper, other.audience_upper),
            other.match_rate or self.match_rate,
        )

    @property
    def audience_size(self) -> str:
        """The audience size for people: ``1,000–1,200``, ``1,000``, or ""."""
        lo, hi = self.audience_lower, self.audience_upper
        if lo is None and hi is None:
            return ""
        if lo is None or hi is None or lo == hi:
            return f"{lo if hi is None else hi:,}"
        return f"{lo:,}–{hi:,}"


MAX_DIAGNOSTICS = 20  # distinct platform diagnostics kept per run


class PlatformUnreadable(Exception):
    """An ad audience's ``audience_report`` could not be read (the message says why)."""


class AudienceReader(Protocol):
    """An ad audience destination that can read what the platform reports about it now
    (its size, the match rate of recent uploads): ``audience_report``, called by the worker
    at most every ``tactful.delivery.platform.READ_EVERY`` and kept with the sync run."""

    def audience_report(self) -> PlatformReport | None: ...


class Sent(list[Outcome]):
    """The outcomes of a ``send`` (one per item, in order) and the platform's own ``report``
    about the request, where the platform gives one (None, as for a plain
    ``list[Outcome]``, when it does not)."""

    def __init__(self, outcomes: Sequence[Outcome], report: PlatformReport | None = None) -> None:
        super().__init__(outcomes)
        self.report = report


def report_of(outcomes: Sequence[Outcome]) -> PlatformReport | None:
    return outcomes.report if isinstance(outcomes, Sent) else None


@dataclass(frozen=True, slots=True)
class Capabilities:
    max_batch: int  # items per send() call (vendor request limit)
    kinds: frozenset[ItemKind]  # what the destination consumes
    max_bytes: int | None = None  # request body limit, if the vendor documents one
    # requests a send() may have in flight at once for different people (1: one at a time);
    # > 1 only for destinations that send each item on its own and keep no state between
    parallel: int = 1


class Destination(Protocol):
    """One configured destination (``[[destinations]]`` entry)."""

    name: str
    type: str
    purpose: Purpose
    segments: Sequence[str] | None  # None: every segment / every person
    capabilities: Capabilities

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        """Deliver ``items`` (≤ ``capabilities.max_batch``, all of kinds it consumes), in
        order; return one ``Outcome`` per item, in the same order. Must not raise for vendor
        errors: classify them. May raise only for programming errors. A ``Sent`` carries
        the platform's own answer about the request (``PlatformReport``) to the sync run."""
        ...

    def close(self) -> None: ...


def classify_status(status: int, retry_after: float | None = None, error: str = "") -> Outcome:
    """The shared HTTP status policy: 2xx ok; what ``tactful.http.retry.retryable`` names
    (408/409/425/429/5xx) retry; other 4xx reject."""
    if 200 <= status < 300:
        return Outcome.ok()
    if retryable(status):
        return Outcome("retry", error or f"HTTP {status}", retry_after, status)
    return Outcome("reject", error or f"HTTP {status}", None, status)
