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
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from tactful.batch import Batch, BatchStats
from tactful.core import codec
from tactful.core.events import EVENT_KIND, Event
from tactful.core.reasons import ReasonClassifier
from tactful.core.segments import SegmentDef, SegmentSpec, StateDef, StateSpec
from tactful.identity_graph import IdentityPlan
from tactful.messages import NOBODY, REPLAYED, Image, image_of, net_rows
from tactful.reasons import saved as saved_models
from tactful.reasons.documents import without_text
from tactful.store.base import EventRow, OutboxRow, Store, StoreConflict, Tx
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
    # ``[delivery] history``: "current" tells event destinations only the changes of an
    # import newer than ``history_horizon`` (older ones reach profiles and audiences as the
    # net change); "all" tells every historical change.
    history: str = "current"
    history_horizon: timedelta = timedelta(days=7)
    erase_deleted_users: bool = False
    # Events later than the wall clock plus this are refused (None: no guard).
    future_skew: timedelta | None = timedelta(minutes=5)
    # ``[reason_model]``: apply the store's active learned model (docs/reasons.md) to tickets
    # no rule matched; a prediction less sure than ``reason_threshold`` stays ``other``.
    learn_reasons: bool = True
    reason_threshold: float = 0.6


def rules_from_settings(settings: Any) -> Rules:
    consent_fields = dict(getattr(settings.consent, "fields", {}) or {})
    delivery = settings.delivery
    return Rules(
        history=delivery.history,
        history_horizon=delivery.history_horizon,
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
        learn_reasons=settings.reason_model.enabled,
        reason_threshold=settings.reason_model.threshold,
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
    """What a replay changed (or, with ``dry_run``, would change; nothing was written).

    ``segments``: per segment, how many persons enter and exit (``enter``, ``exit``) and the
    first ``SAMPLE`` of them (``entering``, ``exiting``). ``corrections``: the outbox rows of
    the net change, each with the person's non-holdout segments after the replay (what the
    router needs to preview deliveries)."""

    events: int
    persons_before: int
    persons_after: int
    changed: list[dict[str, Any]]  # person_id, before, after
    dry_run: bool = False
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    corrections: list[tuple[OutboxRow, frozenset[str]]] = field(default_factory=list)


SAMPLE = 50
Progress = Callable[[int, int], None]  # (events replayed, events in the log)


class _DryRun(Exception):
    """Raised inside the replay's transaction to roll it back, carrying the report."""

    def __init__(self, report: ReplayReport) -> None:
        super().__init__("dry run")
        self.report = report


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
        history: bool = False,
    ) -> BatchStats:
        """Store raw documents and their events, then apply them, in one transaction.

        ``history=True`` (imports, backfills): with ``[delivery] history = "current"``,
        changes older than the horizon (before the wall clock) are told to destinations as
        one net change per person, stamped ``history``, which event destinations skip.
        ``durable=False`` (bulk imports, which are re-runnable) skips the fsync at commit and
        runs as a bulk transaction (SQLite: with the large page cache).
        ``meta`` entries (e.g. a backfill cursor checkpoint) commit in the same transaction.
        """
        before = self._history_before() if history else None
        return self._retrying(lambda: self._apply_many(incoming, durable, meta, before))

    def _history_before(self) -> datetime | None:
        if self.rules.history == "all":
            return None
        return self.wall_clock() - self.rules.history_horizon

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
        self,
        incoming: Sequence[Incoming],
        durable: bool,
        meta: dict[str, str] | None,
        history_before: datetime | None,
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
                    # read into events: the customers' text is no longer needed
                    body = without_text(item.document) if item.events else item.document
                    doc_id = tx.insert_document(item.source, body)
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
            stats = self._run(tx, fresh, None, history_before=history_before)
            stats.received = len(events) + len(future)
            stats.rejected.extend((e.key, FUTURE_REASON) for e in future)
            stats.duplicates = len(events) - len(fresh)
            for row, ok in zip(rows, inserted, strict=True):
                if not ok:
                    stats.duplicates_by_source[row.source] += 1
            return stats

    def tick(self, now: datetime | None = None) -> BatchStats:
        """Advance the clock to ``now`` (default: the wall clock) and fire due timers. Changes
        due before the history horizon are told as history (see ``apply_many``)."""
        target = now or self.wall_clock()

        # A tick acknowledges nothing to anyone and is recomputed from the log and the clock
        # if lost, so it does not wait for the disk flush (WAL ``synchronous=NORMAL``,
        # ``synchronous_commit = off``): only a power failure before the next durable commit
        # (which flushes everything before it) can undo it, and the next tick redoes it.
        # Timers that fall due long ago (the clock catching up after an import of old data)
        # are history like the import's own changes: told as the net change.
        before = self._history_before()

        def work() -> BatchStats:
            with self.store.transaction(durable=False) as tx:
                return self._run(tx, [], target, history_before=before)

        return self._retrying(work)

    def _run(
        self,
        tx: Tx,
        events: Sequence[Event],
        target: datetime | None,
        *,
        history_before: datetime | None = None,
        replaying: bool = False,
    ) -> BatchStats:
        clock = self._clock(tx)
        candidates = [e.at for e in events]
        if target is not None:
            candidates.append(target)
        if clock is not None:
            candidates.append(clock)
        if not candidates:
            return BatchStats()
        until = max(candidates)
        batch = Batch(
            tx,
            self.rules,
            self.plan,
            self._salt(tx),
            history_before=history_before,
            replaying=replaying,
            model=saved_models.active(tx) if self.rules.learn_reasons else None,
            threshold=self.rules.reason_threshold,
        )
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
    def replay(
        self, batch_size: int = 1000, *, dry_run: bool = False, progress: Progress | None = None
    ) -> ReplayReport:
        """Recompute every person from the stored event log, in one transaction, and tell
        destinations only the net change: per person, what differs between what they were
        told before and the truth after (``messages.net_rows``, stamped ``replayed``).
        History (membership and state changes) is rebuilt in full; the outbox keeps what it
        had and gets only the corrections. ``dry_run``: the same work, rolled back.
        The persons before it are kept in temporary tables (``Tx.snapshot_persons``) and
        compared a page at a time: memory stays flat in the number of persons.

        Person ids are stable (same salt, same log order); the clock returns to where it was.

        The replay holds ``Store.replay_lock`` while it runs: writers that find it held
        (``Writer``) do not wait for the store; they keep what they acknowledge in the
        store's inbox and apply it once the replay ends.
        """
        try:
            with gc_paused(), self.store.replay_lock(), self.store.transaction() as tx:
                report = self._replay(tx, batch_size, progress)
                report.dry_run = dry_run
                if dry_run:
                    raise _DryRun(report)
                tx.append_outbox(row for row, _ in report.corrections)
        except _DryRun as done:
            return done.report
        return report

    def _replay(self, tx: Tx, batch_size: int, progress: Progress | None) -> ReplayReport:
        tx.snapshot_persons()  # what destinations were told: in the store, not in memory
        old_clock = self._clock(tx)
        total = tx.event_count()
        tx.reset_derived()
        count = 0
        for chunk in tx.event_batches(batch_size):
            events = [codec.loads(kind, blob) for _, kind, blob in chunk]
            count += len(events)
            self._run(tx, events, None, replaying=True)
            if progress is not None:
                progress(count, total)
        if old_clock is not None:
            self._run(tx, [], old_clock, replaying=True)
        at = old_clock or self.wall_clock()
        rules = {s.name: s.when for s in self.rules.segments}
        report = ReplayReport(count, tx.snapshot_count(), 0, [])
        for ids in _pages(tx.person_ids):
            before, after = tx.snapshot_persons_of(ids), tx.load_persons(ids)
            for pid in ids:
                report.persons_after += 1
                now = image_of(after[pid])
                told = before.get(pid)
                was = None if told is None else image_of(told)
                if was is None or _compact(was) != _compact(now):
                    _correct(report, pid, was, now, at, rules)
        for ids in _pages(tx.snapshot_gone):  # gone (merged differently): leave segments
            before = tx.snapshot_persons_of(ids)
            for pid in ids:
                image = image_of(before[pid])
                _correct(report, pid, image, replace(image, memberships={}), at, rules)
        tx.drop_snapshot()
        return report


def _correct(
    report: ReplayReport,
    pid: str,
    told: Image | None,
    now: Image,
    at: datetime,
    rules: dict[str, str],
) -> None:
    """Record one person's net change in the report."""
    rows = net_rows(pid, told or NOBODY, now, at, rules, REPLAYED)
    members = frozenset(s for s, holdout in now.memberships.items() if not holdout)
    report.corrections.extend((row, members) for row in rows)
    told = told or NOBODY
    if told.state != now.state or told.memberships != now.memberships:
        report.changed.append(
            {"person_id": pid, "before": _describe(told), "after": _describe(now)}
        )
    for segment in sorted(set(told.memberships) | set(now.memberships)):
        was, will = segment in told.memberships, segment in now.memberships
        if was == will:
            continue
        entry = report.segments.setdefault(
            segment, {"enter": 0, "exit": 0, "entering": [], "exiting": []}
        )
        entry["enter" if will else "exit"] += 1
        sample = entry["entering" if will else "exiting"]
        if len(sample) < SAMPLE:
            sample.append(pid)


PERSON_PAGE = 2000  # persons compared at a time after a replay


def _pages(fetch: Callable[[str | None, int], list[str]]) -> Iterator[list[str]]:
    """Person ids, a page at a time, from ``fetch(after, limit)``."""
    after: str | None = None
    while ids := fetch(after, PERSON_PAGE):
        yield ids
        after = ids[-1]


# A person's image in a form that compares as stored: the state as stored (bytes),
# memberships and consents.
Compact = tuple[bytes, tuple[tuple[str, bool], ...], tuple[bool | None, ...]]


def _compact(image: Image) -> Compact:
    return (dump_state(dict(image.state)), tuple(sorted(image.memberships.items())), image.consents)


def _describe(value: Image | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "support_state": value.state.get("support_state", "clear"),
        "segments": sorted(value.memberships),
        "state": orjson.loads(dump_state(dict(value.state))),
    }
