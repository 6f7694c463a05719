"""Small HTTP helpers shared by the analytics destinations (``segment``, ``amplitude``,
``mixpanel``) and the webhook: JSON encoding, timestamps, dedupe ids, request packing, POST,
basic auth, error text."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from tactful.destinations.base import Capabilities, Item, Outcome, Purpose
from tactful.destinations.identify import pick

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
Part = tuple[int, bytes]  # (item index, encoded JSON)


def rfc3339(at: datetime) -> str:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_default(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    raise TypeError(f"cannot serialize {type(value).__name__}")


def dumps(value: Any) -> bytes:
    """Minified JSON; datetimes as RFC 3339 (naive ones taken as UTC)."""
    return orjson.dumps(
        value, default=_json_default, option=orjson.OPT_UTC_Z | orjson.OPT_NAIVE_UTC
    )


_DEDUPE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://tactful.dev/destinations/dedupe")


def dedupe_id(key: str) -> str:
    """A vendor dedupe id from ``item.key``: a UUID (36 characters of ``[0-9a-f-]``), which
    fits Segment's ``messageId`` (< 100), Amplitude's ``insert_id`` and Mixpanel's
    ``$insert_id`` (≤ 36 alphanumerics or ``-``)."""
    return str(uuid.uuid5(_DEDUPE_NAMESPACE, key))


def epoch_ms(at: datetime) -> int:
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    return (aware - _EPOCH) // timedelta(milliseconds=1)


def user_id_for(item: Item, identify_by: Sequence[str]) -> str:
    """The first identifier in ``identify_by`` the item has ("" when none: see
    ``tactful.destinations.identify``)."""
    picked = pick(item, identify_by)
    return picked[1] if picked else ""


def pack(parts: Sequence[Part], max_count: int, max_bytes: int, overhead: int) -> list[list[Part]]:
    """Split encoded ``(index, json)`` parts, in order, into request bodies of at most
    ``max_count`` parts and ``max_bytes`` (``overhead`` + parts + ``,`` separators)."""
    out: list[list[Part]] = []
    current: list[Part] = []
    size = overhead
    for part in parts:
        grown = size + len(part[1]) + (1 if current else 0)
        if current and (len(current) >= max_count or grown > max_bytes):
            out.append(current)
            current, grown = [], overhead + len(part[1])
        current.append(part)
        size = grown
    if current:
        out.append(current)
    return out


def send_chunks(
    chunks: list[list[Part]],
    send_chunk: Callable[[list[Part]], dict[int, Outcome]],
    outcomes: list[Outcome | None],
) -> list[Outcome]:
    """Send request bodies in order and fill in ``outcomes``. After a transient failure the
    later chunks are held (``retry`` without a request), so that no person's later event
    overtakes an earlier one (per-person order)."""
    held: Outcome | None = None
    for chunk in chunks:
        if held is not None:
            for i, _ in chunk:
                outcomes[i] = Outcome("retry", f"held: {held.error}", held.retry_after)
            continue
        results = send_chunk(chunk)
        for i, outcome in results.items():
            outcomes[i] = outcome
        held = next((o for o in results.values() if o.kind == "retry"), None)
    return [o if o is not None else Outcome("retry", "not sent") for o in outcomes]


def post(
    client: httpx.Client, url: str, body: bytes, headers: dict[str, str]
) -> httpx.Response | Outcome:
    """POST, or a ``retry`` outcome when the request did not complete."""
    try:
        return client.post(url, content=body, headers=headers)
    except httpx.TransportError as e:
        where = url.split("?", 1)[0]  # the query may hold tokens
        return Outcome("retry", f"request to {where} failed: {type(e).__name__}: {e}")


def error_text(response: httpx.Response) -> str:
    if response.is_success:
        return ""
    snippet = response.text[:300].strip()
    return f"HTTP {response.status_code}" + (f": {snippet}" if snippet else "")


def unsupported(item: Item, what: str) -> Outcome | None:
    """A reject for items this destination cannot send (not a named event)."""
    if item.kind != "event":
        return Outcome("reject", f"{what} takes event items, not {item.kind!r}")
    if not item.name:
        return Outcome("reject", "event item without a name")
    return None


TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class EventHttpDestination:
    """What the event-only HTTP destinations (Segment, Amplitude, Mixpanel) share: identity,
    purpose, capabilities, which identifier they send as the user id, and one HTTP client."""

    type = ""

    def __init__(
        self,
        *,
        name: str,
        url: str,
        max_batch: int,
        max_bytes: int,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
        identify_by: Sequence[str] = ("person_id",),
        headers: dict[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.name = name
        self.purpose: Purpose = purpose
        self.segments = segments
        self.capabilities = Capabilities(
            max_batch=max_batch, kinds=frozenset({"event"}), max_bytes=max_bytes
        )
        self.url = url
        self._identify_by = tuple(identify_by)
        self._headers = {"content-type": "application/json", **(headers or {})}
        self._client = httpx.Client(transport=transport, timeout=TIMEOUT)

    def close(self) -> None:
        self._client.close()
