"""One batch of engine work inside one store transaction.

Phases: identity → fold → states → segments → membership diffs → outbox rows. A merge of
known persons takes effect at its own moment: ``Batch.fold`` cuts the batch before it (and
after an erasure) and runs the phases part by part.

Time is swept in order: events are applied at their own time (or the engine clock, if they
are older), and every person timer that falls due before an event fires first, at its exact
moment. A tick is a batch with no events. The sweep touches only the persons named by the
batch's events and the persons whose timers are due: its cost follows the work, not the
population.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from tactful.clock import now_us
from tactful.core.events import (
    CONSENT_PURPOSES,
    Event,
    OutcomeRecorded,
    PersonErased,
    RatingGiven,
    TicketStatusChanged,
    TicketText,
    TicketVersion,
    UserDeleted,
    UserMerged,
    UserSeen,
    time_order,
)
from tactful.core.facts import FactRules, fold_fact, is_deletion
from tactful.core.graph import IdentityPlan, IdentKey, Unresolvable
from tactful.core.history import Row, union_history
from tactful.core.messages import (
    HISTORY,
    ConsentChanged,
    Image,
    Message,
    eligibility,
    membership_changed,
    nothing_to_say,
    state_changed,
)
from tactful.core.reasons import ReasonClassifier
from tactful.core.segments import Change, Membership, SegmentSpec, StateSpec, evaluate_person
from tactful.core.state import (
    TICKET_FIELD_NAMES,
    PersonFacts,
    TicketRecord,
    apply_status_change,
    apply_text,
    apply_version,
    fact_fields,
    ticket_fields,
)
from tactful.engine.identity_graph import BatchIdentity
from tactful.engine.messages import erased_row, image_of, net_rows, outbox_row
from tactful.reasons.model import ReasonModel
from tactful.reasons.words import learned
from tactful.store import records
from tactful.store.base import FoldTx, HistoryRow, OutboxRow, PersonRow, StateChangeRow
from tactful.store.records import to_us

UNOWNED = ""
MICROSECOND = timedelta(microseconds=1)  # the store's resolution of time
Plan = tuple[list[IdentKey], list[IdentKey]] | None  # an event's (joining, attached) identifiers


class EngineRules(FactRules, Protocol):
    """What the batch needs of the rules (``tactful.engine.engine.Rules``); read only."""

    @property
    def states(self) -> Sequence[StateSpec]: ...
    @property
    def segments(self) -> Sequence[SegmentSpec]: ...
    @property
    def classifier(self) -> ReasonClassifier: ...
    @property
    def erase_deleted_users(self) -> bool: ...  # [privacy] erase_deleted_users = "immediately"


@dataclass
class BatchStats:
    received: int = 0
    applied: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (event key, reason)
    entered: int = 0
    exited: int = 0
    state_changes: int = 0
    timers_fired: int = 0
    persons_touched: int = 0
    duplicates_by_source: Counter[str] = field(default_factory=Counter)
    # Kept in the inbox while a replay held the store; applied once it ends (``Writer``).
    queued: bool = False


@dataclass(frozen=True)
class Cut:
    """Where ``Batch.resolve`` stopped: before an event at ``at`` that merges known persons,
    or after an erasure (``erased``: what the graph knew of the erased persons is gone)."""

    at: datetime
    persons: frozenset[str] = frozenset()  # the persons it merges (their timers fire first)
    erased: bool = False


def _keys(events: Sequence[Event], plans: Sequence[Plan]) -> list[IdentKey]:
    """The identifiers the events name, merged users' included."""
    keys: list[IdentKey] = []
    for event, plan in zip(events, plans, strict=True):
        if plan is not None:
            keys.extend(plan[0])
            keys.extend(plan[1])
        if isinstance(event, UserMerged):
            keys.append(("zendesk_user_id", str(event.source_user_id)))
            keys.append(("zendesk_user_id", str(event.target_user_id)))
    return keys


def _ticket_ids(events: Iterable[Event]) -> list[int]:
    return sorted(
        {
            e.ticket_id
            for e in events
            if isinstance(e, TicketVersion | TicketStatusChanged | TicketText)
        }
    )


@dataclass
class _Person:
    row: PersonRow
    ticket_ids: set[int] | None  # None: tickets not loaded (nothing about them changed)
    ticket_values: dict[str, Any] | None = None  # ticket-derived fields (None: recompute)
    values: dict[str, Any] | None = None  # all derived fields (None: recompute)
    unsaved: bool = False  # the row differs from the stored one (facts, state, segments, wake)
    # (facts, memberships) as loaded from the store: only what differs is rewritten
    stored: tuple[PersonFacts, dict[str, Membership]] | None = None


class Batch:
    """``history_before``: changes before this moment are history (an import of old data):
    the outbox gets, per person, only the net change since what destinations were last told,
    stamped ``history``. ``replaying``: nothing goes to the outbox (the replay tells the net
    change of the whole recomputation itself). ``own_timers``: fire only the due timers of
    the persons the batch's events lead to (``tactful.engine.grouped``, where every other person
    is folded in a batch of its own). ``fold`` runs the phases; a batch split at a merge goes
    on in a batch of its own that shares the ``identity`` graph and the ``stats``."""

    def __init__(
        self,
        tx: FoldTx,
        rules: EngineRules,
        plan: IdentityPlan,
        salt: str,
        *,
        history_before: datetime | None = None,
        replaying: bool = False,
        model: ReasonModel | None = None,
        threshold: float = 1.0,
        own_timers: bool = False,
        identity: BatchIdentity | None = None,
        stats: BatchStats | None = None,
    ) -> None:
        self.tx = tx
        self.own_timers = own_timers
        self.rules = rules
        self.model = model  # the learned reason model active for this batch (None: rules only)
        self.threshold = threshold
        self.history_before = history_before
        self.replaying = replaying
        self.segment_names = [s.name for s in rules.segments]
        self.segment_rules = {s.name: s.when for s in rules.segments}
        # persons with history changes in this batch: what they were last told, and when
        self.told: dict[str, tuple[Image, datetime]] = {}
        self.current: datetime | None = None  # the sweep's moment
        merges: list[tuple[str, str, datetime]] = []

        # The callback holds the list, not the batch: no reference cycle, so a batch is
        # freed as soon as it ends, without waiting for the garbage collector.
        def merged(absorbed: str, survivor: str, at: datetime) -> None:
            merges.append((absorbed, survivor, at))

        if identity is None:
            identity = BatchIdentity(tx, salt, plan, merged)
        else:  # what the graph knows holds on; the persons made before are stored now
            identity.on_merge = merged
            identity.new_persons = {}
        self.identity = identity
        self.plan = plan
        self.persons: dict[str, _Person] = {}
        self.tickets: dict[int, tuple[str, TicketRecord]] = {}
        self.dirty_tickets: set[int] = set()
        self.history: list[HistoryRow] = []
        self.state_rows: list[StateChangeRow] = []
        self.outbox: list[OutboxRow] = []
        self.stats = BatchStats() if stats is None else stats
        self.pending_merges = merges
        self.timer_heap: list[tuple[datetime, str]] = []
        self.horizon: datetime | None = None
        self.merged_facts: dict[str, PersonFacts] = {}
        self.merge_survivors: set[str] = set()
        self.erasures: dict[str, tuple[datetime, str]] = {}
        self.outcome_rows: list[tuple[str, OutcomeRecorded]] = []
        self.user_names: dict[int, tuple[str, int]] = {}  # Zendesk user -> (name, at_us)
        self.touched: set[str] = set()

    # -- the phases, part by part -------------------------------------------------------------
    def fold(
        self,
        events: Sequence[Event],
        clock: datetime | None,
        until: datetime,
        *,
        resolved: Callable[[], None] | None = None,
    ) -> BatchStats:
        """Resolve, load, sweep (from ``clock`` to ``until``) and flush ``events``; return
        the stats. ``resolved``: called once their identifiers are looked up (and locked).

        A merge is folded at its own moment. The events are cut, in their order, before each
        event that merges persons already known (``PersonGraph.merging``); each part is
        folded and flushed, in this transaction, before the next one resolves its merge. A
        part before a merge sweeps only to the moment before it, and loads the persons the
        merge joins, so their timers due before it fire first. The events before a merge are
        so folded against the persons as they were then. A part also ends with an erasure:
        what follows is looked up again, without the erased person's identifiers. Every
        table gets the same rows whatever batches the events come in (one, one per event, or
        person by person)."""
        plans = self._plans(events)
        self._lock_and_preload(_keys(events, plans), events)
        if resolved is not None:
            resolved()
        batch, start, ready = self, 0, False
        while True:
            part, owners, cut = batch.resolve(events[start:], plans[start:], ready=ready)
            if cut is None:
                part_until = until
            else:
                part_until = min(until, max([cut.at - MICROSECOND, *(e.at for e in part)]))
            batch.load(part, owners, part_until, also=() if cut is None else cut.persons)
            batch.sweep(part, owners, clock, part_until)
            batch.flush()
            if cut is None:
                return self.stats
            start, ready = start + len(part), not cut.erased
            batch = batch._next(same_graph=not cut.erased)
            if cut.erased:  # the rest looked up again, without the erased identifiers
                batch.identity.preload(_keys(events[start:], plans[start:]))

    def _next(self, *, same_graph: bool) -> Batch:
        """The batch that folds the part after a cut."""
        return Batch(
            self.tx,
            self.rules,
            self.plan,
            self.identity.salt,
            history_before=self.history_before,
            replaying=self.replaying,
            model=self.model,
            threshold=self.threshold,
            own_timers=self.own_timers,
            identity=self.identity if same_graph else None,
            stats=self.stats,
        )

    # -- identity phase -------------------------------------------------------------------
    def _plans(self, events: Sequence[Event]) -> list[Plan]:
        """Each event's identifiers (None: rejected, reported in ``stats.rejected``, or not
        about one person)."""
        plans: list[Plan] = []
        for event in events:
            try:
                plans.append(self.plan.identifiers(event))
            except Unresolvable as exc:
                plans.append(None)
                self.stats.rejected.append((event.key, str(exc)))
        return plans

    def resolve(
        self, events: Sequence[Event], plans: Sequence[Plan], *, ready: bool
    ) -> tuple[Sequence[Event], list[str | None], Cut | None]:
        """The first part of ``events`` and the person of each of its events (None: not
        about one person, or rejected): up to the first event that merges known persons
        (the very first one too, unless ``ready``: the timers before it have fired) or up to
        an erasure, where it is ``Cut``; None: the part is every event."""
        identity = self.identity
        owners: list[str | None] = []
        cut = None
        erasing = False
        for event, plan in zip(events, plans, strict=True):
            if erasing:
                cut = Cut(event.at, erased=True)
                break
            merging = (
                identity.merging_users(event)
                if isinstance(event, UserMerged)
                else None
                if plan is None
                else identity.merging(plan[0])
            )
            if merging is not None and (owners or not ready):
                cut = Cut(event.at, merging)
                break
            if isinstance(event, UserMerged):
                owners.append(identity.merge_users(event))
            elif plan is None:
                owners.append(None)
            else:
                try:
                    owners.append(identity.resolve(plan[0], plan[1], event.at))
                except Unresolvable as exc:
                    self.stats.rejected.append((event.key, str(exc)))
                    owners.append(None)
            erasing = owners[-1] is not None and self._erases(event)
        part = events[: len(owners)]
        wanted = [t for t in _ticket_ids(part) if t not in self.tickets]
        self.tickets.update(self.tx.load_tickets(wanted))
        self._apply_merges()
        identity.flush()
        find = identity.find
        # Tickets were looked up before the merges: an absorbed person's tickets now belong
        # to the survivor (the store moved them), so a later fold must not write them back
        # to the absorbed person (which would bring its row back, without identifiers).
        self.tickets = {
            tid: (owner if owner == UNOWNED else find(owner), record)
            for tid, (owner, record) in self.tickets.items()
        }
        final = [None if o is None else find(o) for o in owners]
        self.tx.index_events(
            [(pid, e.key) for e, pid in zip(part, final, strict=True) if pid is not None],
            [
                (e.ticket_id, e.key)
                for e in part
                if isinstance(e, TicketVersion | TicketStatusChanged | TicketText | RatingGiven)
                and e.ticket_id is not None
            ],
        )
        return part, final, cut

    def _lock_and_preload(self, keys: list[IdentKey], events: Sequence[Event]) -> None:
        """Look up the batch's identifiers (its tickets: part by part, in ``resolve``).
        Where several processes write (``tx.locking``), first lock the identifiers and
        tickets the events name, then every person they lead to, so no other transaction
        folds these persons until this one ends. A lookup made before a person was locked
        may be stale (another process merged it meanwhile), so lookups repeat until they
        find no person not yet locked."""
        tx = self.tx
        if not tx.locking:
            self.identity.preload(keys)
            return
        ticket_ids = _ticket_ids(events)
        tx.lock([f"i:{k}:{v}" for k, v in keys] + [f"t:{t}" for t in ticket_ids])
        locked: set[str] = set()
        while True:
            self.identity.idmap.clear()
            self.identity.preload(keys)
            self.tickets = dict(tx.load_tickets(ticket_ids))
            persons = {p for owners in self.identity.idmap.values() for p in owners}
            persons.update(owner for owner, _ in self.tickets.values() if owner != UNOWNED)
            for kind, value in keys:
                if kind == "person_id":
                    found = tx.resolve_person_id(value)
                    if found is not None:
                        persons.add(found)
            fresh = persons - locked
            if not fresh:
                return
            tx.lock(f"p:{p}" for p in fresh)
            locked |= fresh

    def _apply_merges(self) -> None:
        for absorbed, survivor, at in self.pending_merges:
            rows = self.tx.load_persons([absorbed, survivor])
            gone = rows.get(absorbed)
            exits: list[Change] = []
            if gone is not None:  # by segment: the store keeps a person's rows in no order
                for segment, membership in sorted(gone.memberships.items()):
                    if membership.member:
                        change = Change(
                            segment, "exited", at, "", membership.holdout, f"merged into {survivor}"
                        )
                        exits.append(change)
                        self._announce(absorbed, change)
                kept = rows.get(survivor)
                if kept is not None:
                    kept.facts = kept.facts.combine(gone.facts)
                    self.tx.save_persons([kept], new=set())
                else:
                    previous = self.merged_facts.get(survivor, PersonFacts())
                    self.merged_facts[survivor] = previous.combine(gone.facts)
            self._merge_history(absorbed, survivor, exits)
            self.identity.new_persons.pop(absorbed, None)
            self.tx.merge_person(absorbed, survivor)
            self.merge_survivors.add(survivor)
        self.pending_merges.clear()

    def _merge_history(self, absorbed: str, survivor: str, exits: list[Change]) -> None:
        """The survivor's history becomes the union of both (``union_history``): the stored
        rows and this batch's of both persons, and the absorbed person's exits at the merge
        (whose outbox rows still tell destinations that the absorbed id left)."""
        pair = (absorbed, survivor)
        stored = self.tx.history_rows(pair)
        pending = [i for i, h in enumerate(self.history) if h.person_id in pair]
        rows = [Row(("db", i), pid, c.segment, c.change, c.at) for i, pid, c in stored]
        rows += [
            Row(("mem", i), h.person_id, h.change.segment, h.change.change, h.change.at)
            for i in pending
            for h in (self.history[i],)
        ]
        rows += [Row(("exit", n), absorbed, c.segment, c.change, c.at) for n, c in enumerate(exits)]
        kept = union_history(rows)
        self.tx.delete_history([r.ref[1] for r in rows if r.ref[0] == "db" and r.ref not in kept])
        moved = set(pending)
        self.history = [
            HistoryRow(survivor, h.change) if i in moved else h
            for i, h in enumerate(self.history)
            if i not in moved or ("mem", i) in kept
        ]
        self.history += [
            HistoryRow(survivor, c) for n, c in enumerate(exits) if ("exit", n) in kept
        ]

    # -- loading ----------------------------------------------------------------------------
    def load(
        self,
        events: Sequence[Event],
        owners: Sequence[str | None],
        until: datetime,
        *,
        also: Iterable[str] = (),
    ) -> None:
        """Load the persons of ``events`` and ``also`` (stored persons whose timers are
        due), and the timers due until ``until``."""
        self.horizon = until
        # A grouped fold (``own_timers``) fires only the timers of the persons it loads: the
        # others' come in their own batch, at their own moments.
        due = [] if self.own_timers else self.tx.due_timers(until)
        # Tickets are loaded only for persons whose tickets this batch can change.
        with_tickets = {
            o
            for e, o in zip(events, owners, strict=True)
            if o is not None and isinstance(e, TicketVersion)
        }
        with_tickets.update(owner for owner, _ in self.tickets.values() if owner != UNOWNED)
        self.merge_survivors = {self.identity.find(pid) for pid in self.merge_survivors}
        with_tickets.update(self.merge_survivors)
        wanted = {o for o in owners if o is not None} | with_tickets
        self._load_persons(wanted, with_tickets)
        self._load_persons(set(also), create=False)
        if self.own_timers:
            due = [
                (wake, pid)
                for pid, person in self.persons.items()
                if (wake := person.row.wake) is not None and wake <= until
            ]
        else:  # a timer's person whose row is gone (erased or merged away) stays gone
            self._load_persons({pid for _, pid in due}, create=False)
        self.timer_heap = list(due)
        heapq.heapify(self.timer_heap)

    def _load_persons(
        self, wanted: set[str], with_tickets: set[str] | None = None, *, create: bool = True
    ) -> None:
        missing = sorted(p for p in wanted if p not in self.persons)
        if not missing:
            return
        rows = self.tx.load_persons(missing)
        with_tickets = with_tickets or set()
        tickets = self.tx.tickets_of([p for p in missing if p in with_tickets])
        merged_facts = self.merged_facts
        for pid in missing:
            row = rows.get(pid)
            if row is None and not create:
                continue
            if row is None:
                at = self.identity.new_persons.get(pid)
                created = to_us(at) if at is not None else now_us()
                row = PersonRow(pid, merged_facts.get(pid, PersonFacts()), {}, {}, None, created)
            ids: set[int] | None = None
            if pid in with_tickets or not row.state:
                ids = set()
                for record in tickets.get(pid, []):
                    ids.add(record.ticket_id)
                    if record.ticket_id not in self.tickets:
                        self.tickets[record.ticket_id] = (pid, record)
            stored = (row.facts, dict(row.memberships)) if pid in rows else None
            self.persons[pid] = _Person(row, ids, stored=stored)

    # -- fold -------------------------------------------------------------------------------
    def apply(self, event: Event, owner: str | None) -> set[str]:
        """Fold one event; return the persons whose facts changed."""
        if isinstance(event, TicketVersion):
            return self._apply_version(event, owner)
        if isinstance(event, TicketStatusChanged):
            return self._apply_status(event)
        if isinstance(event, TicketText):
            return self._apply_text(event)
        if owner is None:
            return set()
        if isinstance(event, UserSeen) and event.name:
            at_us = to_us(event.at)
            known = self.user_names.get(event.zendesk_user_id)
            if known is None or at_us >= known[1]:
                self.user_names[event.zendesk_user_id] = (event.name, at_us)
        if self._erases(event):
            by = event.requested_by if isinstance(event, PersonErased) else "zendesk"
            self.erasures.setdefault(owner, (event.at, by))
            return set()
        if isinstance(event, OutcomeRecorded):
            self.outcome_rows.append((owner, event))
            return set()
        person = self.persons[owner]
        user_ids: frozenset[str] = frozenset()
        if is_deletion(event) and person.row.facts.deleted is None:
            user_ids = self._zendesk_user_ids(owner)
        facts = fold_fact(person.row.facts, event, self.rules, user_ids)
        if facts == person.row.facts:
            return set()  # nothing changed
        moment = event.at if self.current is None else self.current
        if self._quiet(moment):
            self._remember(owner, moment)
        elif person.row.state:  # a person never told anything has no consent to revoke
            for purpose in CONSENT_PURPOSES:
                before, after = person.row.facts.consent_for(purpose), facts.consent_for(purpose)
                if after is not None and before != after:
                    # Destinations of this purpose must forget (or may learn) this person.
                    self._tell(ConsentChanged(owner, purpose, after, event.at))
        person.row.facts = facts
        person.values = None
        person.unsaved = True
        return {owner}

    def _erases(self, event: Event) -> bool:
        """Whether the event erases its person (``erase``)."""
        return isinstance(event, PersonErased) or (
            is_deletion(event)
            and (
                self.rules.erase_deleted_users
                or (isinstance(event, UserDeleted) and event.permanent)
            )
        )

    def _zendesk_user_ids(self, owner: str) -> frozenset[str]:
        found = self.tx.identifiers_of([owner]).get(owner, [])
        return frozenset(v for k, v in found if k == "zendesk_user_id")

    def _apply_version(self, event: TicketVersion, owner: str | None) -> set[str]:
        if owner is None:
            return set()
        classifier = self.rules.classifier
        reason, risk, source = classifier.classify_source(
            event.tags, event.subject, event.custom_fields
        )
        old_owner, old = self.tickets.get(event.ticket_id, (UNOWNED, None))
        record = apply_version(old, event, reason, risk, source, 1.0 if source else None)
        record = learned(record, classifier, self.model, self.threshold)
        new_owner = owner if record.version is event or old_owner == UNOWNED else old_owner
        return self._store_ticket(record, old_owner, new_owner)

    def _apply_status(self, event: TicketStatusChanged) -> set[str]:
        owner, old = self.tickets.get(event.ticket_id, (UNOWNED, None))
        record = apply_status_change(old, event)
        if record is old:
            return set()
        return self._store_ticket(record, owner, owner)

    def _apply_text(self, event: TicketText) -> set[str]:
        owner, old = self.tickets.get(event.ticket_id, (UNOWNED, None))
        record = apply_text(old, event)
        if record is old:
            return set()
        record = learned(record, self.rules.classifier, self.model, self.threshold)
        return self._store_ticket(record, owner, owner)

    def _store_ticket(self, record: TicketRecord, old_owner: str, new_owner: str) -> set[str]:
        tid = record.ticket_id
        self.tickets[tid] = (new_owner, record)
        self.dirty_tickets.add(tid)
        touched = set()
        for pid in {old_owner, new_owner} - {UNOWNED}:
            person = self.persons[pid]
            assert person.ticket_ids is not None, "tickets of a ticket's owner are loaded"
            if pid == new_owner:
                person.ticket_ids.add(tid)
            else:
                person.ticket_ids.discard(tid)
            person.ticket_values = None
            person.values = None
            touched.add(pid)
        return touched

    # -- evaluate ---------------------------------------------------------------------------
    def evaluate(self, pid: str, now: datetime) -> None:
        person = self.persons[pid]
        row = person.row
        if person.values is None:
            tv = person.ticket_values
            if tv is None:
                if person.ticket_ids is not None:
                    tv = ticket_fields(self.tickets[t][1] for t in person.ticket_ids)
                else:  # unchanged tickets: their fields as last derived
                    tv = {k: row.state.get(k) for k in TICKET_FIELD_NAMES}
                person.ticket_values = tv
            person.values = {**tv, **fact_fields(row.facts)}
        values = dict(person.values)
        result = evaluate_person(
            pid, values, row.memberships, self.rules.states, self.rules.segments, now
        )
        old = row.state
        quiet = self._quiet(now)
        if quiet:
            self._remember(pid, now)
        changed = () if values == old else tuple([k for k, v in values.items() if old.get(k) != v])
        memberships = {k: m for k, m in result.memberships.items() if m.member}
        # What destinations are told with each message (none while quiet: history or replay).
        eligible = {} if quiet else eligibility(result.memberships, self.segment_names)
        if changed:
            self.stats.state_changes += 1
            old_state = old.get("support_state")
            self.state_rows.append(
                StateChangeRow(pid, now, old_state, result.support_state, changed)
            )
            if not quiet and (old or not nothing_to_say(values, memberships)):
                self._tell(state_changed(pid, old_state, values, changed, eligible, now))
            row.state = values
        for change in result.changes:
            self._record_change(pid, change, eligible, tell=not quiet)
        if changed or result.wake != row.wake or memberships != row.memberships:
            person.unsaved = True
        row.memberships = memberships
        row.wake = result.wake
        if result.wake is not None and self.horizon is not None and result.wake <= self.horizon:
            heapq.heappush(self.timer_heap, (result.wake, pid))
        self.touched.add(pid)

    def _record_change(
        self,
        pid: str,
        change: Change,
        eligible: dict[str, bool] | None = None,
        *,
        tell: bool = True,
    ) -> None:
        self.history.append(HistoryRow(pid, change))
        self._announce(pid, change, eligible, tell=tell)

    def _announce(
        self,
        pid: str,
        change: Change,
        eligible: dict[str, bool] | None = None,
        *,
        tell: bool = True,
    ) -> None:
        """Count a change of membership and tell destinations (an outbox row)."""
        if change.change == "entered":
            self.stats.entered += 1
        else:
            self.stats.exited += 1
        if tell:
            self._tell(membership_changed(pid, change, eligible or {}))

    # -- telling destinations -----------------------------------------------------------------
    def _quiet(self, moment: datetime) -> bool:
        """Changes at ``moment`` are not told one by one (replay, or old history)."""
        return self.replaying or (self.history_before is not None and moment < self.history_before)

    def _remember(self, pid: str, moment: datetime) -> None:
        """Before a person's first history change in this batch, what they were told."""
        if self.replaying:
            return
        told = self.told.get(pid)
        image = told[0] if told is not None else image_of(self.persons[pid].row)
        self.told[pid] = (image, moment)

    def _tell(self, message: Message) -> None:
        if self.replaying:
            return
        if message.person_id in self.told:  # history first: destinations hear it in order
            self._tell_history(message.person_id)
        self.outbox.append(outbox_row(message))

    def _tell_history(self, pid: str) -> None:
        told, moment = self.told.pop(pid)
        person = self.persons.get(pid)
        if person is None:
            return
        now = image_of(person.row)
        self.outbox.extend(net_rows(pid, told, now, moment, self.segment_rules, HISTORY))

    def fire_timers(self, before: datetime, *, inclusive: bool) -> None:
        """Fire every due timer earlier than ``before`` (or at it, if inclusive), in order."""
        heap = self.timer_heap
        while heap and (heap[0][0] < before or (inclusive and heap[0][0] == before)):
            due, pid = heapq.heappop(heap)
            person = self.persons.get(pid)  # None: gone from the store (``load``)
            if person is None or person.row.wake != due:
                continue  # or a stale entry: the person was re-evaluated since
            self.stats.timers_fired += 1
            self.evaluate(pid, due)

    # -- sweep ------------------------------------------------------------------------------
    def sweep(
        self,
        events: Sequence[Event],
        owners: Sequence[str | None],
        clock: datetime | None,
        until: datetime,
    ) -> None:
        order = sorted(range(len(events)), key=lambda i: time_order(events[i]))
        dirty: set[str] = set()
        current: datetime | None = None
        for i in order:
            event = events[i]
            t = event.at if clock is None or event.at > clock else clock
            if current is not None and t != current:
                for pid in sorted(dirty):
                    self.evaluate(pid, current)
                dirty.clear()
            if current != t:
                self.fire_timers(t, inclusive=False)
                current = t
            self.current = t
            dirty |= self.apply(event, owners[i])
            owner = owners[i]
            if owner is not None and (
                owner in self.identity.new_persons or owner in self.merge_survivors
            ):
                dirty.add(owner)  # new or merged persons are evaluated even if nothing changed
        if current is not None:
            for pid in sorted(dirty):
                self.evaluate(pid, current)
        self.fire_timers(until, inclusive=True)

    def erase(self) -> None:
        """Erase persons asked for in this batch: nothing of them is written, their stored
        data goes, and one outbox row tells every destination to forget them."""
        if self.erasures:
            records.forget_decoded()  # nothing decoded of them stays in memory
        for pid, (at, requested_by) in sorted(self.erasures.items()):
            pid = self.identity.find(pid)
            self.history = [h for h in self.history if h.person_id != pid]
            self.state_rows = [r for r in self.state_rows if r.person_id != pid]
            self.outbox = [o for o in self.outbox if o.person_id != pid]
            self.touched.discard(pid)
            person = self.persons.pop(pid, None)
            find = self.identity.find
            tickets = {t for t, (owner, _) in self.tickets.items() if find(owner) == pid}
            if person is not None and person.ticket_ids:
                tickets |= person.ticket_ids
            self.dirty_tickets -= tickets
            report = self.tx.erase_person(pid, to_us(at), requested_by, tickets)
            identifiers: dict[str, list[str]] = {}
            for kind, value in report.identifiers:
                identifiers.setdefault(kind, []).append(value)
            self.outbox.append(erased_row(pid, identifiers, at))

    def flush(self) -> None:
        tx = self.tx
        # Names first: an erasure in this batch then takes them too.
        tx.save_user_names((u, name, at_us) for u, (name, at_us) in sorted(self.user_names.items()))
        for pid in sorted(self.told):
            self._tell_history(pid)
        self.erase()
        erased = {self.identity.find(p) for p in self.erasures}
        tx.append_outcomes(
            (self.identity.find(pid), e)
            for pid, e in self.outcome_rows
            if self.identity.find(pid) not in erased
        )
        tx.save_tickets((tid, *self.tickets[tid]) for tid in sorted(self.dirty_tickets))
        # A person evaluated with nothing to show for it is stored as it is: not rewritten.
        new, survivors = self.identity.new_persons, self.merge_survivors
        saving = [
            person
            for pid in sorted(self.touched)
            if (person := self.persons[pid]).unsaved or pid in new or pid in survivors
        ]
        tx.save_persons(
            [person.row for person in saving],
            new=set(new),
            stored={p.row.person_id: p.stored for p in saving if p.stored is not None},
        )
        tx.append_history(self.history)
        tx.append_state_changes(self.state_rows)
        if not self.replaying:  # a replay tells the net change of the whole recomputation
            tx.append_outbox(self.outbox)
        self.stats.persons_touched += len(self.touched)
