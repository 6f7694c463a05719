"""What the ESP destinations (Customer.io, Klaviyo, Sailthru) share.

- ``MarketingProfile``: the marketing side of a person, as the agent sidebar shows it
  (product.md section 8), read from the ESP with ``read_profile(email)``.
- ``ProfileActions``: the sidebar's actions (read, opt-out, list removal, email change),
  which every ESP destination implements; ``ProfileError`` when one fails.
- ``eligibility_attributes``: the per-segment ``eligible_<segment>`` flags every profile
  carries (false for holdout members), the switch marketers build suppression on.
- Helpers for ``send``: which identifier addresses the person, vendor time formats,
  JSON-safe attribute values, deterministic event ids, and the sequential sending loop that
  keeps per-person order when one item fails.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal, Protocol

import httpx

from tactful.core.messages import eligibility
from tactful.core.segments import Membership
from tactful.destinations.base import Item, ItemKind, Outcome, classify_status, parse_retry_after

# Section 3 / section 9 fields that hold a moment in time.
TIME_FIELDS = frozenset(
    {
        "last_ticket_at",
        "last_activity_at",
        "last_resolved_at",
        "last_refund_at",
        "csat_at",
        "health_at",
        "zendesk_created",
        "occurred_at",
    }
)
TimeFormat = Literal["unix", "iso"]
ESP_KINDS: frozenset[ItemKind] = frozenset({"profile", "event", "erase", "unsubscribe"})


@dataclass
class MarketingProfile:
    """A person's marketing profile at an ESP.

    ``lists`` holds the handles that ``remove_from_list`` accepts (Sailthru list names,
    Klaviyo list ids, Customer.io segment ids); ``raw["list_names"]`` maps them to display
    names where the two differ. ``opted_out`` is None when the ESP did not say."""

    email: str
    lists: list[str]
    opted_out: bool | None
    signup_at: datetime | None = None
    last_open_at: datetime | None = None
    last_click_at: datetime | None = None
    last_pageview_at: datetime | None = None
    raw: dict[str, Any] = field(default_factory=dict)


class ProfileActions(Protocol):
    """What the sidebar can do with an ESP destination (each raises ``ProfileError``)."""

    def read_profile(self, email: str) -> MarketingProfile | None: ...
    def set_optout(self, email: str, opted_out: bool) -> None: ...
    def remove_from_list(self, email: str, list_id: str) -> None: ...
    def change_email(self, old_email: str, new_email: str) -> None: ...


class ProfileError(Exception):
    """A sidebar action failed at the ESP (``status`` None: not sent, e.g. unsupported)."""

    def __init__(
        self, message: str, status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


# -- eligibility --------------------------------------------------------------------------------

ELIGIBLE_PREFIX = "eligible_"


def eligibility_attributes(
    memberships: Mapping[str, Membership], segments: Sequence[str]
) -> dict[str, bool]:
    """``eligible_<segment>`` for every configured segment: true when the person is a member
    and not a holdout. The §3 fields next to them are raw: a holdout member has an open
    ticket too, so rules built on them would suppress holdouts and spoil the measurement."""
    return {ELIGIBLE_PREFIX + s: ok for s, ok in eligibility(memberships, segments).items()}


# -- identifiers ----------------------------------------------------------------------------


def primary_email(item: Item) -> str | None:
    emails = [e.strip() for e in item.identifiers.emails if e and e.strip()]
    return emails[0] if emails else None


def primary_external_id(item: Item) -> str | None:
    ids = [e.strip() for e in item.identifiers.external_ids if e and e.strip()]
    return ids[0] if ids else None


def no_identifier(vendor: str) -> Outcome:
    return Outcome(
        "skip",
        f"no usable identifier for {vendor}: the item has neither an email "
        "nor an external id (or consent withheld them)",
    )


# -- times and values -----------------------------------------------------------------------


def parse_time(value: Any) -> datetime | None:
    """A moment from a datetime, unix seconds, ISO 8601 or RFC 2822 text; None otherwise."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(float(value), UTC) if math.isfinite(value) else None
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text), UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with a ``Z``, to the second."""
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def unix(moment: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON (nested datetimes as ISO text, tuples/sets as lists)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    return str(value)


def attributes(properties: Mapping[str, Any], times: TimeFormat) -> dict[str, Any]:
    """Item properties as vendor attributes: top-level time fields (and datetimes) in the
    vendor's convention, everything else JSON-safe."""
    out: dict[str, Any] = {}
    for key, value in properties.items():
        moment = parse_time(value) if key in TIME_FIELDS or isinstance(value, datetime) else None
        if moment is not None:
            out[key] = unix(moment) if times == "unix" else iso(moment)
        else:
            out[key] = jsonable(value)
    return out


def json_size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def newest_tickets_within(tickets: Any, limit: int) -> Any:
    """``zendesk_tickets`` trimmed to the most recently updated ones that fit ``limit``
    bytes of JSON (vendors cap attribute sizes); other values unchanged."""
    if not isinstance(tickets, list) or json_size(tickets) <= limit:
        return tickets

    def recency(ticket: Any) -> str:
        if not isinstance(ticket, Mapping):
            return ""
        return str(ticket.get("updated_at") or ticket.get("created_at") or "")

    kept: list[Any] = []
    for ticket in sorted(tickets, key=recency, reverse=True):
        if json_size([*kept, ticket]) > limit:
            break
        kept.append(ticket)
    return kept


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid_for(key: str, at: datetime) -> str:
    """A valid ULID that is a pure function of (``key``, ``at``): the 48-bit time part is
    ``at`` in milliseconds, the 80 random bits come from SHA-256 of ``key``. Retries of an
    item therefore carry the same id, which is what vendors deduplicate on."""
    millis = max(0, int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000))
    rand = int.from_bytes(hashlib.sha256(key.encode()).digest()[:10], "big")
    number = ((millis & (2**48 - 1)) << 80) | rand
    return "".join(_CROCKFORD[(number >> (5 * i)) & 31] for i in reversed(range(26)))


# -- HTTP outcomes ----------------------------------------------------------------------------


def retry_after_of(response: httpx.Response) -> float | None:
    return parse_retry_after(response.headers.get("Retry-After"))


def outcome_of(response: httpx.Response, error: str = "") -> Outcome:
    """The shared status policy with the vendor's ``Retry-After`` and error text."""
    if 200 <= response.status_code < 300:
        return Outcome.ok()
    detail = error or f"HTTP {response.status_code}: {response.text[:300]}"
    return classify_status(response.status_code, retry_after_of(response), detail)


def transport_failure(exc: httpx.HTTPError) -> Outcome:
    """Timeouts and connection failures are transient."""
    return Outcome("retry", f"{type(exc).__name__}: {exc}")


class OrderGuard:
    """Who must wait in the rest of a batch: after a 429 everyone (the vendor asked us to
    slow down); after another transient failure that person, so that their later items
    never overtake the failed one (per-person order)."""

    def __init__(self) -> None:
        self._held: dict[str, Outcome] = {}
        self._throttled: Outcome | None = None

    def blocked(self, item: Item) -> Outcome | None:
        if self._throttled is not None:
            return self._throttled
        earlier = self._held.get(item.person_id)
        if earlier is None:
            return None
        return Outcome("retry", "held behind an earlier failed item", earlier.retry_after)

    def record(self, item: Item, outcome: Outcome) -> Outcome:
        if outcome.kind == "retry":
            self._held[item.person_id] = outcome
            if outcome.status == 429:
                self._throttled = outcome
        return outcome


def send_in_order(items: Sequence[Item], send_one: Callable[[Item], Outcome]) -> list[Outcome]:
    """One request per item, in order, under an ``OrderGuard``."""
    guard = OrderGuard()
    return [guard.blocked(item) or guard.record(item, send_one(item)) for item in items]


def json_body(response: httpx.Response) -> dict[str, Any]:
    """The response's JSON object ({} when it is not one)."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
