"""``tactful sync --dry-run``: what a sync would send now, per destination, sending nothing
and writing nothing.

It reads the deliveries already due, plus the outbox rows not routed yet (routed in memory
with the same plan as the worker), and applies the send-time filters (consent, holdouts,
ledger, identifiers) through the worker's own ``_items``: what is listed is what ``sync``
would send, by kind, with a few samples."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tactful.delivery.store import DeliveryRow, NewDelivery
from tactful.delivery.worker import DeliveryWorker
from tactful.destinations.base import Item
from tactful.store.records import to_us

KINDS = ("audience_add", "audience_remove", "profile", "event", "erase")
OUTBOX_LIMIT = 100_000  # unrouted outbox rows read (a preview, not a migration)
ROW_LIMIT = 100_000  # pending deliveries read per destination


@dataclass
class Preview:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    skipped: int = 0  # no consent, left the segment, no identifier, person gone
    waiting: int = 0  # pending, not due yet (a retry later), or behind such a row
    samples: list[dict[str, Any]] = field(default_factory=list)
    error: str = ""


def _mask(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}" if domain else "***"


def _sample(item: Item) -> dict[str, Any]:
    ids = item.identifiers
    return {
        "kind": item.kind,
        "person_id": item.person_id,
        "name": item.name or None,
        "segment": item.segment,
        "email": _mask(ids.emails[0]) if ids.emails else None,
        "identifiers": len(ids.emails) + len(ids.phones) + len(ids.external_ids),
    }


def _as_row(new: NewDelivery, now_us: int) -> DeliveryRow:
    return DeliveryRow(
        0,
        new.destination,
        new.person_id,
        new.kind,
        new.name,
        new.segment,
        new.key,
        new.at_us,
        new.payload,
        "pending",
        0,
        now_us,
        now_us,
        "",
    )


def preview(
    worker: DeliveryWorker, samples: int = 3, only: str | None = None
) -> dict[str, Preview]:
    """Per destination (``only``: that one), what a sync would send now."""
    now_us = to_us(worker.clock())
    routed: dict[str, list[DeliveryRow]] = {}
    unrouted = worker.rows.unrouted(OUTBOX_LIMIT, worker.plan_rows) if worker.routes else []
    for new in unrouted:
        routed.setdefault(new.destination, []).append(_as_row(new, now_us))
    out: dict[str, Preview] = {}
    for config in worker.settings.destinations:
        if only is not None and config.name != only:
            continue
        p = out[config.name] = Preview()
        if worker.destination(config.name) is None:
            p.error = worker.broken[config.name]
            continue
        due: list[DeliveryRow] = []
        blocked: set[str] = set()
        pending = worker.rows.candidates(config.name, ROW_LIMIT)
        for row in pending + routed.get(config.name, []):
            if row.person_id in blocked or row.next_us > now_us:
                blocked.add(row.person_id)  # per-person order: waits behind a retry
                p.waiting += 1
            else:
                due.append(row)
        items, _, skipped = worker.items_for(config, due)
        p.skipped = len(skipped)
        kinds = Counter(str(item.kind) for item in items)
        p.counts.update({k: kinds[k] for k in KINDS})
        p.samples = [_sample(item) for item in items[:samples]]
    return out
