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
from datetime import datetime, timedelta
from typing import Any

from tactful.clock import system_now
from tactful.core import codec
from tactful.core.events import EVENT_KIND, Event, PersonErased
from tactful.core.graph import IdentityPlan, Unresolvable
from tactful.core.reasons import ReasonClassifier
from tactful.core.segments import SegmentDef, SegmentSpec, StateDef, StateSpec
from tactful.engine.batch import Batch, BatchStats
from tactful.engine.messages import Image, image_of
from tactful.engine.replay import (
    COMPARE,
    DONE,
    GONE,
    PERSON_PAGE,
    RECOMPUTE,
    SETTLE,
    ByPerson,
    Count,
    Marker,
    Progress,
    ReplayInProgress,
    ReplayReport,
    compact,
    corrections,
)
from tactful.engine.replay_workers import fold_in_workers
from tactful.reasons import saved as saved_models
from tactful.reasons.documents import without_text
from tactful.store.base import (
    REPLAY_KEY,
    EventRow,
    FoldTx,
    IdentKey,
    OutboxRow,
    Store,
    StoreConflict,
    Tx,
)
from tactful.store.records import to_us
from tactful.store.sqlite import open_store

CLOCK_KEY = "clock"
SALT_KEY = "person_salt"
CONFLICT_RETRIES = 8
FUTURE_REASON = "event time later than the wall clock plus [engine] future_skew"
ERASED_REASON = "about a person erased after this request arrived"


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
    # when the request was acknowledged, if it waited in the inbox: its events about a person
    # erased since are not applied (``Engine.apply_many``)
    received_us: int | None = None


class _DryRun(Exception):
    """Raised inside a dry run's transaction to roll it back, carrying the report."""

    def __init__(self, report: ReplayReport) -> None:
        super().__init__("dry run")
        self.report = report


@dataclass
class ClockRepair:
    clock_before: datetime | None
    clock_after: datetime | None
    removed: list[tuple[str, int]]  # (event key, at µs) taken out of the log
    replay: ReplayReport | None


class Engine:
    def __init__(
        self, rules: Rules, store: Store, *, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.rules = rules
        self.store = store
        self.wall_clock = clock or system_now
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
    def _clock(tx: FoldTx) -> datetime | None:
        text = tx.get_meta(CLOCK_KEY)
        return None if text is None else codec.parse_time(text)

    @staticmethod
    def _salt(tx: FoldTx) -> str:
        salt = tx.get_meta(SALT_KEY)
        if salt is None:  # first batch ever; with several processes, the first writer wins
            salt = tx.setdefault_meta(SALT_KEY, secrets.token_hex(16))
        return salt

    def on_own_store(self) -> Engine:
        """The same engine (rules, wall clock) on a store connection of its own: what each
        forked worker of an import or a replay by person folds with."""
        return type(self)(self.rules, open_store(self.store.url), clock=self.wall_clock)

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
        return max(system_now(), self.wall_clock()) + skew

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
            erased: list[Event] = []
            incoming = [self._honour_erasures(tx, item, erased) for item in incoming]
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
            stats.rejected.extend((e.key, ERASED_REASON) for e in erased)
            stats.received += len(erased)
            stats.duplicates = len(events) - len(fresh)
            for row, ok in zip(rows, inserted, strict=True):
                if not ok:
                    stats.duplicates_by_source[row.source] += 1
            return stats

    def _honour_erasures(self, tx: Tx, item: Incoming, dropped: list[Event]) -> Incoming:
        """A request that waited in the inbox, without its events about a person erased
        after it arrived (and without its raw body, which names them): applied as it is,
        it would bring the person back. Erasure requests themselves are kept."""
        if item.received_us is None:
            return item
        keys = {e.key: self._erasable_keys(e) for e in item.events}
        erased = tx.erased_after({k for ks in keys.values() for k in ks}, item.received_us)
        if not erased:
            return item
        kept = [e for e in item.events if isinstance(e, PersonErased) or not keys[e.key] & erased]
        dropped.extend(e for e in item.events if e not in kept)
        return Incoming(kept, None, item.source)

    def _erasable_keys(self, event: Event) -> set[IdentKey]:
        """The identifiers (and ticket) an event names, as an erasure records them."""
        try:
            plan = self.plan.identifiers(event)
        except Unresolvable:
            plan = None
        keys = set() if plan is None else {*plan[0], *plan[1]}
        ticket_id = getattr(event, "ticket_id", None)
        if ticket_id is not None:
            keys.add(("ticket", str(ticket_id)))
        return keys

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

        try:
            return self._retrying(work)
        except ReplayInProgress:  # the first tick after the replay does this one's work
            return BatchStats()

    def _run(
        self,
        tx: FoldTx,
        events: Sequence[Event],
        target: datetime | None,
        *,
        history_before: datetime | None = None,
        replaying: bool = False,
        own_timers: bool = False,
    ) -> BatchStats:
        """Fold ``events`` and sweep the clock to ``target`` (or the latest event).
        ``own_timers`` (a batch of a fold by person, ``tactful.engine.grouped``): fire only
        the timers of the batch's own persons and leave the clock where it is, so every
        batch sweeps from the same moment."""
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
            own_timers=own_timers,
        )

        def unfinished_replay() -> None:  # (PostgreSQL: asked after the whole-store lock)
            if not replaying and tx.get_meta(REPLAY_KEY) is not None:
                raise ReplayInProgress(
                    "a replay is unfinished (the store is being rebuilt): wait for it, or run "
                    "`tactful replay` to finish it, then try again"
                )

        stats = batch.fold(events, clock, until, resolved=unfinished_replay)
        if not own_timers:
            tx.advance_clock(until)
        stats.applied = len(events) - len({k for k, _ in stats.rejected})
        return stats

    # -- clock repair -----------------------------------------------------------------------
    def repair_clock(self, *, dry_run: bool = False) -> ClockRepair:
        """Undo a clock pushed into the future (a store poisoned before the time guard):
        take the events later than ``latest_allowed()`` out of the log (their raw documents
        stay), set the clock back to the wall clock, and recompute everything (``replay``).
        ``dry_run``: report what would change, change nothing."""
        limit = self.latest_allowed() or max(system_now(), self.wall_clock())
        now = min(max(system_now(), self.wall_clock()), limit)
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
        self,
        batch_size: int = 1000,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
        count: Count | None = None,
        by_person: bool = False,
        workers: int = 1,
    ) -> ReplayReport:
        """Recompute every person from the stored event log and tell destinations only the
        net change: per person, what differs between what they were told before and the
        truth after (``messages.net_rows``, stamped ``replayed``). History (membership and
        state changes) is rebuilt in full; the outbox keeps what it had and gets only the
        corrections. ``count``: the router's preview, summed into ``report.destinations``.

        A replay commits a chunk at a time (``tactful.engine.replay``): first the snapshot of the
        persons as destinations were told them (the ``replay_before_*`` tables) and the
        marker (meta ``replay``), then each chunk of the log, then each page of persons
        compared, its corrections written to the outbox. No transaction holds the store for
        the whole replay and memory stays flat in the number of persons. A replay stopped
        half way resumes where it stood the next time ``replay`` runs. ``dry_run``: the same
        work in one transaction, rolled back (refused while a replay is unfinished).
        ``by_person``: fold the log component by component (``replay.ByPerson``), as
        ``import --by-person`` folds an export, instead of a chunk of the log at a time in
        its order; a resumed replay goes on the way it began. ``workers``: by person,
        processes folding its batches at once (``tactful.engine.replay_workers``); a dry run
        folds in one.

        Person ids are stable (same salt, same log order); the clock returns to where it was.
        The replay holds ``Store.replay_lock`` while it runs; the marker outlives it until the
        last commit. Writers that find either (``Writer``) keep what they acknowledge in the
        store's inbox and apply it once the replay ends.
        """
        if dry_run and workers > 1:
            raise ValueError(
                "a dry run folds in one process: its work is rolled back, in a transaction "
                "no worker can see"
            )
        with self.store.replay_lock():
            if dry_run:
                return self._dry_run(batch_size, progress, count, by_person)
            return self._replay(batch_size, progress, count, by_person, workers)

    def _dry_run(
        self, batch_size: int, progress: Progress | None, count: Count | None, by_person: bool
    ) -> ReplayReport:
        try:
            with self.store.transaction() as tx:
                if tx.get_meta(REPLAY_KEY) is not None:
                    raise ReplayInProgress(
                        "a replay is unfinished: run `tactful replay` to finish it first"
                    )
                marker = self._begin(tx, batch_size if by_person else 0)
                marker.report.dry_run = True
                with self._planned(marker) as log:
                    while marker.phase != DONE:
                        with gc_paused():
                            self._step(tx, marker, batch_size, count, write=False, log=log)
                        if progress is not None and marker.phase == RECOMPUTE:
                            progress(marker.report.events, marker.total)
                raise _DryRun(marker.report)
        except _DryRun as done:
            return done.report

    def _replay(
        self,
        batch_size: int,
        progress: Progress | None,
        count: Count | None,
        by_person: bool,
        workers: int,
    ) -> ReplayReport:
        with self.store.transaction() as tx:
            text = tx.get_meta(REPLAY_KEY)
            if text is None:
                marker = self._begin(tx, batch_size if by_person else 0)
                tx.set_meta(REPLAY_KEY, marker.dumps())
            else:  # a replay stopped half way: go on from where it stood
                marker = Marker.loads(text)
                marker.report.resumed = True
        with self._planned(marker) as log:
            while marker.phase != DONE:
                if log is not None and marker.phase == RECOMPUTE and workers > 1:
                    fold_in_workers(self, marker, log, workers, progress)
                    workers = 1  # the steps fold what is left, if anything
                # Not durable: the work and the marker commit together, so a power cut loses
                # both and the replay resumes from the marker before them.
                with gc_paused(), self.store.transaction(durable=False) as tx:
                    self._step(tx, marker, batch_size, count, write=True, log=log)
                    tx.set_meta(REPLAY_KEY, marker.dumps())
                if progress is not None and marker.phase == RECOMPUTE:
                    progress(marker.report.events, marker.total)
        with self.store.transaction() as tx:
            tx.hold_store()
            tx.drop_snapshot()
            tx.delete_meta(REPLAY_KEY)
        return marker.report

    @contextmanager
    def _planned(self, marker: Marker) -> Iterator[ByPerson | None]:
        """The log planned by person, for a replay that folds so (planned at its first
        step, removed at the end)."""
        if not marker.by_person:
            yield None
            return
        log = ByPerson(self.plan, marker.batch_size)
        try:
            yield log
        finally:
            log.close()

    def _begin(self, tx: Tx, by_person: int = 0) -> Marker:
        """Snapshot what destinations were told, forget what the replay rebuilds.
        ``by_person``: the events per batch of a replay by person (0: in log order)."""
        tx.hold_store()
        old_clock = self._clock(tx)
        tx.snapshot_persons()
        at = old_clock or self.wall_clock()
        marker = Marker(
            phase=RECOMPUTE,
            seq=0,
            after=None,
            clock=None if old_clock is None else codec.format_time(old_clock),
            at=codec.format_time(at),
            total=tx.event_count(),
            report=ReplayReport(0, tx.snapshot_count(), 0, []),
            by_person=by_person > 0,
            batch_size=by_person,
        )
        tx.reset_derived()
        return marker

    def _step(
        self,
        tx: Tx,
        marker: Marker,
        batch_size: int,
        count: Count | None,
        *,
        write: bool,
        log: ByPerson | None = None,
    ) -> None:
        """One chunk of the replay's work, in ``tx``; moves ``marker`` on."""
        if marker.phase == RECOMPUTE and log is not None:
            self._fold_part(tx, marker, log)
        elif marker.phase == RECOMPUTE:
            chunk = tx.event_chunk(marker.seq, batch_size)
            if not chunk:
                marker.phase = SETTLE
                return
            self._run(tx, [codec.loads(k, blob) for _, k, blob in chunk], None, replaying=True)
            marker.seq = chunk[-1][0]
            marker.report.events += len(chunk)
        elif marker.phase == SETTLE:
            if marker.clock is not None:
                self._run(tx, [], codec.parse_time(marker.clock), replaying=True)
            marker.phase = COMPARE
        else:
            gone = marker.phase == GONE
            ids = (tx.snapshot_gone if gone else tx.person_ids)(marker.after, PERSON_PAGE)
            if not ids:
                marker.phase, marker.after = (DONE if gone else GONE), None
                return
            rows = self._compare(tx, marker, ids, gone)
            marker.report.count(rows, count)
            if write:
                tx.append_outbox(row for row, _ in rows)
            marker.after = ids[-1]

    def _fold_part(self, tx: Tx, marker: Marker, log: ByPerson) -> None:
        """The next batch of the log's components, each folded whole from the clock the
        replay started from (none) to the latest event; after the last, the timers of the
        persons no event names, and the clock to the latest event."""
        parts = log.planned(tx, self._salt(tx))
        todo = marker.todo(len(parts))
        if todo:
            events = [p.event for p in parts[todo[0]]]
            self._run(tx, events, log.until, replaying=True, own_timers=True)
            marker.folded(todo[0], len(events))
            return
        if log.until is not None:
            self._run(tx, [], log.until, replaying=True)
        marker.phase = SETTLE

    def _compare(
        self, tx: Tx, marker: Marker, ids: list[str], gone: bool
    ) -> list[tuple[OutboxRow, frozenset[str]]]:
        """The corrections of a page of persons: what they were told against the truth now
        (``gone``: persons no longer there, merged differently, leave their segments)."""
        at, report = marker.corrected_at, marker.report
        rules = {s.name: s.when for s in self.rules.segments}
        before = tx.snapshot_persons_of(ids)
        after = {} if gone else tx.load_persons(ids)
        rows: list[tuple[OutboxRow, frozenset[str]]] = []
        for pid in ids:
            was: Image | None
            if gone:
                told = image_of(before[pid])
                was, now = told, replace(told, memberships={})
            else:
                report.persons_after += 1
                now = image_of(after[pid])
                row = before.get(pid)
                was = None if row is None else image_of(row)
                if was is not None and compact(was) == compact(now):
                    continue
            rows += corrections(pid, was, now, at, rules)
            report.correct(pid, was, now)
        return rows
