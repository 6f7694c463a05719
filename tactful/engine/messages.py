"""The engine's messages as outbox rows (``tactful.core.messages`` holds the messages, their
codec and the net change; this module adds the store's row and a person's ``Image``).

A live change, a history catch-up and a replay correction are the same messages;
``net_rows(told, now)`` is ``net_messages`` as rows (product.md section 4).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from tactful.core import messages
from tactful.core.events import CONSENT_PURPOSES
from tactful.core.messages import (
    HISTORY,
    LIVE,
    NOBODY,
    REPLAYED,
    Image,
    Message,
    PersonErased,
    Stamp,
    eligibility,
    net_messages,
    nothing_to_say,
)
from tactful.core.state import BLANK_FIELDS
from tactful.store.base import OutboxRow, PersonRow

# The core's vocabulary of the net change, for the callers that take it from here.
__all__ = [
    "BLANK_FIELDS",
    "HISTORY",
    "LIVE",
    "NOBODY",
    "REPLAYED",
    "Image",
    "Stamp",
    "eligibility",
    "erased_row",
    "image_of",
    "net_rows",
    "nothing_to_say",
    "outbox_row",
]


def outbox_row(message: Message) -> OutboxRow:
    return OutboxRow(message.person_id, message.TOPIC, message.occurred_at, messages.dumps(message))


def image_of(row: PersonRow) -> Image:
    return Image(
        dict(row.state),
        {s: m.holdout for s, m in row.memberships.items() if m.member},
        tuple(row.facts.consent_for(p) for p in CONSENT_PURPOSES),
    )


def erased_row(pid: str, identifiers: Mapping[str, Sequence[str]], at: datetime) -> OutboxRow:
    return outbox_row(PersonErased(pid, {k: tuple(v) for k, v in identifiers.items()}, at))


def net_rows(
    pid: str,
    told: Image,
    now: Image,
    at: datetime,
    rules: Mapping[str, str],
    stamp: Stamp,
) -> list[OutboxRow]:
    """``net_messages`` as outbox rows."""
    return [outbox_row(m) for m in net_messages(pid, told, now, at, rules, stamp)]
