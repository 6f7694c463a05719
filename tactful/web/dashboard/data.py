"""What the dashboard pages show, read from the store in one reader each."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tactful.clock import now_us as system_us
from tactful.delivery.store import DeliveryStore
from tactful.readmodels.views import clock_of
from tactful.store.base import Reader
from tactful.store.records import to_us
from tactful.web.context import WebContext
from tactful.web.dashboard.charts import Delta, Point, Window, choose_window, size_series

RECENT_CHANGES = 50


@dataclass
class SegmentRow:
    name: str
    when: str
    members: int
    holdout: int
    entered_1h: int = 0
    exited_1h: int = 0
    entered_24h: int = 0
    exited_24h: int = 0
    series: list[Point] = field(default_factory=list)


@dataclass
class DestinationRow:
    name: str
    type: str
    pending: int
    dead: int
    done: int
    lag_seconds: float | None
    last_success_us: int | None
    last_error: str | None
    last_error_us: int | None


@dataclass
class Overview:
    now_us: int
    engine_clock: datetime | None
    window: Window
    segments: list[SegmentRow]
    states: list[tuple[str, int]]
    destinations: list[DestinationRow]
    changes: list[tuple[str, int, str | None, str, str]]  # person, at_us, old, new, changed
    wall_us: int = field(default_factory=system_us)


def now_us(clock: datetime | None) -> int:
    """The engine clock (simulations run ahead of the wall clock), else the wall clock."""
    return to_us(clock) if clock is not None else system_us()


def bucket_deltas(reader: Reader, bucket_us: int) -> dict[str, dict[int, Delta]]:
    """Entries and exits per segment per bucket (``at_us // bucket_us``)."""
    acc: dict[str, dict[int, list[int]]] = {}
    for row in reader.read_models.change_buckets(bucket_us):
        slot = acc.setdefault(row.segment, {}).setdefault(row.bucket, [0, 0, 0, 0])
        index = 0 if row.change == "entered" else 1 if row.change == "exited" else None
        if index is None:
            continue
        slot[index] += row.count
        if row.holdout:
            slot[index + 2] += row.count
    return {s: {b: Delta(*v) for b, v in per.items()} for s, per in acc.items()}


def overview(ctx: WebContext) -> Overview:
    settings = ctx.settings
    with ctx.engine.store.reader() as reader:
        clock = clock_of(reader)
        now = now_us(clock)
        counts = reader.segment_counts()
        states = reader.state_counts()
        window = choose_window(reader.read_models.first_change_us(), now)
        deltas = bucket_deltas(reader, window.bucket_us)
        hour = reader.read_models.changes_since(now - 3600 * 1_000_000)
        day = reader.read_models.changes_since(now - 24 * 3600 * 1_000_000)
        changes = reader.read_models.state_changes(RECENT_CHANGES)
    segments = []
    for spec in settings.segments:
        members, holdout = counts.get(spec.name, (0, 0))
        segments.append(
            SegmentRow(
                spec.name,
                spec.when,
                members,
                holdout,
                hour.get((spec.name, "entered"), 0),
                hour.get((spec.name, "exited"), 0),
                day.get((spec.name, "entered"), 0),
                day.get((spec.name, "exited"), 0),
                size_series(deltas.get(spec.name, {}), window, now),
            )
        )
    return Overview(
        now,
        clock,
        window,
        segments,
        sorted(states.items(), key=lambda kv: (-kv[1], kv[0])),
        destinations(ctx),
        [(c.person_id, c.at_us, c.old_state, c.new_state, c.changed) for c in changes],
    )


def destinations(ctx: WebContext) -> list[DestinationRow]:
    """Delivery health per configured destination; lag is on the wall clock (deliveries are
    stamped with it)."""
    health = DeliveryStore(ctx.engine.store).health()
    wall = system_us()
    out = []
    for dest in ctx.settings.destinations:
        h = health.get(dest.name, {})
        oldest = h.get("oldest_pending_us")
        out.append(
            DestinationRow(
                dest.name,
                dest.type,
                int(h.get("pending", 0)),
                int(h.get("dead", 0)),
                int(h.get("done", 0)),
                None if oldest is None else max(0.0, (wall - int(oldest)) / 1e6),
                h.get("last_success_us"),
                h.get("last_error"),
                h.get("last_error_us"),
            )
        )
    configured = {dest.name for dest in ctx.settings.destinations}
    for name in sorted(set(health) - configured):  # removed from the config, rows remain
        h = health[name]
        out.append(
            DestinationRow(
                name,
                "(not configured)",
                int(h.get("pending", 0)),
                int(h.get("dead", 0)),
                int(h.get("done", 0)),
                None,
                h.get("last_success_us"),
                h.get("last_error"),
                h.get("last_error_us"),
            )
        )
    return out


def retry_dead(ctx: WebContext, destination: str | None) -> int:
    """Dead letters of one destination (all when None) back to pending."""
    store = DeliveryStore(ctx.engine.store)
    if destination is None:
        return store.retry(None)
    ids = store.dead_ids(destination)
    return store.retry(ids) if ids else 0
