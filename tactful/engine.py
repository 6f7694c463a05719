"""The engine: the only place that reads the wall clock and wires core + store + outbox.

``Engine.apply(events)`` runs one batch in one transaction: dedupe into the event log,
identity, fold, states, segments, membership diffs and outbox rows. ``Engine.tick(now)``
advances the engine clock and fires due timers at their exact moments. ``Engine.replay()``
recomputes everything from the stored log.

The engine clock never goes back: it advances to each event's time, to the wall clock while
``serve`` runs, and to T with ``tick --now T``.
"""

from __future__ import annotations

import gc
import random
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tactful.batch import Batch, BatchStats
from tactful.core import codec
from tactful.core.events import EVENT_KIND, Event
from tactful.core.reasons import ReasonClassifier
from tactful.core.segments import SegmentDef, SegmentSpec, StateDef, StateSpec
from tactful.identity_graph import IdentityPlan
from tactful.store.base import EventRow, Store, StoreConflict, Tx
from tactful.store.records import dump_state, to_us

CLOCK_KEY = "clock"
SALT_KEY = "person_salt"
CONFLICT_RETRIES = 8
FUTURE_REASON = "event time later than the wall clock plus [engine] future_skew"


@dataclass(frozen=True)
class Rules:
    """Everything the batch needs from the settings, resolved once."""

    states: Sequence[StateSpec]
    segments: Sequence[SegmentSpec]
    classifier: ReasonClassifier
    csat_good: int = 5
    csat_bad: int = 1
    consent_fields: dict[str, str] = field(default_factory=dict)
    key_kind: str = "email"
    default_region: str | None = None
    erase_deleted_users: bool = False
    # Events later than the wall clock plus this are refused (None: no guard).
    future_skew: timedelta | None = timedelta(minutes=5)


def rules_from_settings(settings: Any) -> Rules:
    consent_fields = dict(getattr(settings.consent, "fields", {}) or {})
    return Rules(
        states=[StateDef(s.name, s.rule) for s in settings.states],
        segments=[
            SegmentDef(s.name, s.when, s.rule, s.cooldown, s.holdout) for s in settings.segments
        ],
        classifier=settings.reason_classifier(),
        csat_good=settings.csat.good,
        csat_bad=settings.csat.bad,
        consent_fields=consent_fields,
        key_kind=settings.identity.key,
        default_region=settings.identity.default_region,
        erase_deleted_users=settings.privacy.erase_deleted_users == "immediately",
        future_skew=settings.engine.future_skew,
    )


_gc_lock = threading.Lock()
_gc_pauses = 0
_gc_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a batch runs. A batch allocates
    hundreds of thousands of short-lived objects (records, events, rows) and nearly none in
    cycles; with the collector on, its passes over the young objects and, now and then, the
    whole heap took about a third of an import's time. Reference counting still frees
    everything at once; cycles wait for the collector to run again after the batch. Counted,
    so batches in several threads pause it once."""
    global _gc_pauses, _gc_was_enabled
    with _gc_lock:
        _gc_pauses += 1
        if _gc_pauses == 1:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
    try:
        yield
    finally:
        with _gc_lock:
            _gc_pauses -= 1
            if _gc_pauses == 0 and _gc_was_enabled:
                gc.enable()


@dataclass
class Incoming:
    """Events from one raw document (an export page, a webhook body, a file line)."""

    events: list[Event]
    document: bytes | None = None
    source: str = "api"


@dataclass
class ReplayReport:
    events: int
    persons_before: int
    persons_after: int
    changed: list[dict[str, Any]]  # person_id, before, after


@dataclass
class ClockRepair:
    clock_before: datetime | None
    clock_after: datetime | None
    removed: list[tuple[str, int]]  # (event key, at µs) taken out of the log
    replay: ReplayReport | None


def _wall_clock() -> datetime:
    return datetime.now(UTC)


class Engine:
    def __init__(
        self, rules: Rules, store: Store, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.rules = rules
        self.store = store
        self.wall_clock = clock or _wall_clock
        self.plan = IdentityPlan(rules.key_kind, rules.default_region)

    # -- clock ------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        with self.store.reader() as reader:
            return reader.get_meta(key)

    def clock(self) -> datetime | None:
        with self.store.reader() as reader:
            text = reader.get_meta(CLOCK_KEY)
        return None if text is None else codec.parse_time(text)

    @staticmethod
    def _clock(tx: Tx) -> datetime | None:
        text = tx.get_meta(CLOCK_KEY)
        return None if text is None else codec.parse_time(text)

    @staticmethod
    def _salt(tx: Tx) -> str:
        salt = tx.get_meta(SALT_KEY)
        if salt is None:  # first batch ever; with several processes, the first writer wins
            salt = tx.setdefault_meta(SALT_KEY, secrets.token_hex(16))
        return salt

    def _retrying(self, work: Callable[[], BatchStats]) -> BatchStats:
        """Run a batch; when another process's transaction conflicted with it (nothing was
        written), run it again."""
        for attempt in range(CONFLICT_RETRIES):
            try:
                with gc_paused():
                    return work()
            except StoreConflict:
                if attempt == CONFLICT_RETRIES - 1:
                    raise
                time.sleep(random.uniform(0.005, 0.05) * (attempt + 1))
        raise AssertionError("unreachable")

    # -- apply ------------------------------------------------------------------------------
    def apply(
        self, events: Sequence[Event], *, document: bytes | None = None, source: str = "api"
    ) -> BatchStats:
        """Store and apply one batch atomically. Duplicates (same key) are skipped."""
        return self.apply_many([Incoming(list(events), document, source)])

    def apply_many(
        self,
        incoming: Sequence[Incoming],
        *,
        durable: bool = True,
        meta: dict[str, str] | None = None,
    ) -> BatchStats:
        """Store raw documents and their events, then apply them, in one transaction.

        ``durable=False`` (bulk imports, which are re-runnable) skips the fsync at commit and
        runs as a bulk transaction (SQLite: with the large page cache).
        ``meta`` entries (e.g. a backfill cursor checkpoint) commit in the same transaction.
        """
        return self._retrying(lambda: self._apply_many(incoming, durable, meta))

    def latest_allowed(self) -> datetime | None:
        """The latest event time accepted now: the wall clock plus ``future_skew``. An
        engine on a simulated clock (tests, previews) that runs ahead of the wall clock
        accepts events up to its own time plus the skew."""
        skew = self.rules.future_skew
        if skew is None:
            return None
        return max(_wall_clock(), self.wall_clock()) + skew

    def future_events(self, events: Sequence[Event]) -> list[dict[str, str]]:
        """The events later than ``latest_allowed()``, each as {id, at, reason} for an
        edge's error answer (empty: none)."""
        limit = self.latest_allowed()
        if limit is None:
            return []
        return [
            {
                "id": e.key,
                "at": codec.format_time(e.at),
                "reason": f"{FUTURE_REASON} (latest accepted now: {codec.format_time(limit)})",
            }
            for e in events
            if e.at > limit
        ]

    def _apply_many(
        self, incoming: Sequence[Incoming], durable: bool, meta: dict[str, str] | None
    ) -> BatchStats:
        limit = self.latest_allowed()
        future: list[Event] = []
        if limit is not None and any(e.at > limit for item in incoming for e in item.events):
            # Refused, not stored: one event from the future would move the engine clock
            # there for good and empty every time window.
            future = [e for item in incoming for e in item.events if e.at > limit]
            incoming = [
                Incoming([e for e in item.events if e.at <= limit], item.document, item.source)
                for item in incoming
            ]
        with self.store.transaction(durable=durable, bulk=not durable) as tx:
            for key, value in (meta or {}).items():
                tx.set_meta(key, value)
            events: list[Event] = []
            rows: list[EventRow] = []
            for item in incoming:
                doc_id = None
                if item.document is not None:
                    doc_id = tx.insert_document(item.source, item.document)
                for e in item.events:
                    events.append(e)
                    rows.append(
                        EventRow(
                            key=e.key,
                            kind=EVENT_KIND[type(e)],
                            at_us=to_us(e.at),
                            source=item.source,
                            document_id=doc_id,
                            canonical=codec.dumps(e),
                        )
                    )
            inserted = tx.insert_events(rows)
            fresh = [e for e, ok in zip(events, inserted, strict=True) if ok]
            stats = self._run(tx, fresh, None)
            stats.received = len(events) + len(future)
            stats.rejected.extend((e.key, FUTURE_REASON) for e in future)
            stats.duplicates = len(events) - len(fresh)
            for row, ok in zip(rows, inserted, strict=True):
                if not ok:
                    stats.duplicates_by_source[row.source] += 1
            return stats

    def tick(self, now: datetime | None = None) -> BatchStats:
        """Advance the clock to ``now`` (default: the wall clock) and fire due timers."""
        target = now or self.wall_clock()

        # A tick acknowledges nothing to anyone and is recomputed from the log and the clock
        # if lost, so it does not wait for the disk flush (WAL ``synchronous=NORMAL``,
        # ``synchronous_commit = off``): only a power failure before the next durable commit
        # (which flushes everything before it) can undo it, and the next tick redoes it.
        def work() -> BatchStats:
            with self.store.transaction(durable=False) as tx:
                return self._run(tx, [], target)

        return self._retrying(work)

    def _run(self, tx: Tx, events: Sequence[Event], target: datetime | None) -> BatchStats:
        clock = self._clock(tx)
        candidates = [e.at for e in events]
        if target is not None:
            candidates.append(target)
        if clock is not None:
            candidates.append(clock)
        if not candidates:
            return BatchStats()
        until = max(candidates)
        batch = Batch(tx, self.rules, self.plan, self._salt(tx))  # type: ignore[arg-type]
        owners = batch.resolve(events)
        batch.load(events, owners, until)
        batch.sweep(events, owners, clock, until)
        batch.flush()
        tx.advance_clock(until)
        stats = batch.stats
        stats.applied = len(events) - len({k for k, _ in stats.rejected})
        return stats

    # -- clock repair -----------------------------------------------------------------------
    def repair_clock(self, *, dry_run: bool = False) -> ClockRepair:
        """Undo a clock pushed into the future (a store poisoned before the time guard):
        take the events later than ``latest_allowed()`` out of the log (their raw documents
        stay), set the clock back to the wall clock, and recompute everything (``replay``).
        ``dry_run``: report what would change, change nothing."""
        limit = self.latest_allowed() or max(_wall_clock(), self.wall_clock())
        now = min(max(_wall_clock(), self.wall_clock()), limit)
        with self.store.transaction() as tx:
            clock = self._clock(tx)
            removed = tx.events_after(to_us(limit), delete=not dry_run)
            ahead = clock is not None and clock > limit
            if not dry_run and ahead:
                tx.set_meta(CLOCK_KEY, codec.format_time(now))
        report = ClockRepair(clock, now if ahead else clock, removed, None)
        if not dry_run and (ahead or removed):
            report.replay = self.replay()
        return report

    # -- replay -----------------------------------------------------------------------------
    def replay(self, batch_size: int = 1000) -> ReplayReport:
        """Recompute every person from the stored event log, in one transaction.

        Person ids are stable (same salt, same log order); the clock returns to where it was.
        """
        with gc_paused(), self.store.transaction() as tx:
            before = self._snapshot(tx)
            old_clock = self._clock(tx)
            tx.reset_derived()
            count = 0
            for chunk in tx.event_batches(batch_size):
                events = [codec.loads(kind, blob) for _, kind, blob in chunk]
                count += len(events)
                self._run(tx, events, None)
            if old_clock is not None:
                self._run(tx, [], old_clock)
            after = self._snapshot(tx)
        changed = []
        for pid in sorted(set(before) | set(after)):
            if before.get(pid) != after.get(pid):
                changed.append(
                    {
                        "person_id": pid,
                        "before": _describe(before.get(pid)),
                        "after": _describe(after.get(pid)),
                    }
                )
        return ReplayReport(count, len(before), len(after), changed)

    @staticmethod
    def _snapshot(tx: Tx) -> dict[str, tuple[str, tuple[str, ...], bytes]]:
        out: dict[str, tuple[str, tuple[str, ...], bytes]] = {}
        reader: Any = tx
        after: str | None = None
        while True:
            ids = reader.person_ids(after, 5000)
            if not ids:
                return out
            rows = tx.load_persons(ids)
            for pid, row in rows.items():
                out[pid] = (
                    str(row.state.get("support_state", "clear")),
                    tuple(sorted(s for s, m in row.memberships.items() if m.member)),
                    dump_state(row.state),
                )
            after = ids[-1]


def _describe(value: tuple[str, tuple[str, ...], bytes] | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"support_state": value[0], "segments": list(value[1]), "state": orjson.loads(value[2])}
