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
from tactful.core.platform import PlatformReport
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
