"""A batch's fold apart from its writes: workers fold, one process writes (SQLite).

SQLite takes one writer at a time, and a ``Batch`` reads and writes its transaction as it
folds. To fold on several cores anyway, a worker process folds a batch against a
``Recorder``: a ``FoldTx`` whose reads go to a read-only snapshot of the store (WAL: readers
never wait for the writer) and whose writes are kept as typed ``WriteOp`` values (method and
arguments, picklable). The one writing process then applies each batch's writes, in the
batches' order, in one transaction a batch (``tactful.engine.grouped``).

The batches of a fold by person share nothing (no identifier, ticket or person), so what a
worker reads of the rows its batch touches is what the writer would have read, with two
exceptions that the recorder answers itself:
- rows the batch itself wrote before reading them (a merge saves the survivor, moves the
  absorbed person's identifiers, tickets and history, then the fold loads them; a batch cut
  at a merge or an erasure (``Batch.fold``) flushes each part, history included, before the
  next part loads its persons and merges their histories): the recorder keeps what it was
  told (``persons``, ``alias``, ``added``, ``deleted_history``, ``appended``, ``tickets``)
  and lays it over the snapshot's answers, as the SQL would have changed them;
- which events are new to the log (``insert_events``): those the snapshot does not hold and
  no earlier batch of the same fold logs (``earlier``).
The writer checks the second when it applies the writes (``InsertEvents``): a key the
worker took for new but the log already holds means something else wrote (``Stale``).
What a worker cannot do without the writer (an erasure, the whole store's timers, moving
the clock, the first salt) raises ``NeedsWriter``: the writer folds that batch itself.
"""

from __future__ import annotations

import dataclasses
import functools
import io
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from tactful.core import events, segments, state
from tactful.core.events import OutcomeRecorded
from tactful.core.segments import Change, Membership
from tactful.core.state import PersonFacts, TicketRecord
from tactful.engine.batch import BatchStats
from tactful.store import base, records
from tactful.store.base import (
    EventRow,
    FoldTx,
    HistoryRow,
    IdentKey,
    OutboxRow,
    PersonRow,
    StateChangeRow,
)
from tactful.store.erasure import ErasureReport
from tactful.store.sqlite import SQLiteStore

Stored = Mapping[str, tuple[PersonFacts, dict[str, Membership]]]


class SnapshotReads(FoldTx, Protocol):
    """A read-only ``FoldTx`` (``tactful.store.sqlite.SQLiteSnapshot``)."""

    def new_event_keys(self, keys: Sequence[str]) -> set[str]: ...


class NeedsWriter(Exception):
    """The batch needs the writer's transaction to fold (see the module's docstring)."""


class Stale(Exception):
    """The store changed under a worker's snapshot: its writes must not be applied."""


# -- the writes, as values -------------------------------------------------------------------
class WriteOp(Protocol):
    def apply(self, tx: FoldTx) -> None: ...


@dataclass(frozen=True, slots=True)
class InsertEvents:
    rows: list[EventRow]
    new: list[bool]  # what the worker folded as new: the writer must find the same

    def apply(self, tx: FoldTx) -> None:
        if tx.insert_events(self.rows) != self.new:
            raise Stale("the event log changed under the worker's snapshot")


@dataclass(frozen=True, slots=True)
class IndexEvents:
    persons: list[tuple[str, str]]
    tickets: list[tuple[int, str]]

    def apply(self, tx: FoldTx) -> None:
        tx.index_events(self.persons, self.tickets)


@dataclass(frozen=True, slots=True)
class AddIdentifiers:
    rows: list[tuple[str, str, str]]

    def apply(self, tx: FoldTx) -> None:
        tx.add_identifiers(self.rows)


@dataclass(frozen=True, slots=True)
class MergePerson:
    absorbed: str
    survivor: str

    def apply(self, tx: FoldTx) -> None:
        tx.merge_person(self.absorbed, self.survivor)


@dataclass(frozen=True, slots=True)
class DeleteHistory:
    row_ids: list[int]  # stored rows
    # rows the batch appended itself, which have ids only once written: (person, the row's
    # place among ``history_rows([person])``, its change), as the worker read them
    appended: list[tuple[str, int, Change]] = field(default_factory=list)

    def apply(self, tx: FoldTx) -> None:
        ids = list(self.row_ids)
        listings: dict[str, list[tuple[int, str, Change]]] = {}
        for person, place, change in self.appended:
            if person not in listings:
                listings[person] = tx.history_rows([person])
            listing = listings[person]
            if place >= len(listing) or listing[place][2] != change:
                raise Stale("the history is not as the worker read it")
            ids.append(listing[place][0])
        tx.delete_history(ids)


@dataclass(frozen=True, slots=True)
class SaveTickets:
    rows: list[tuple[int, str, TicketRecord]]

    def apply(self, tx: FoldTx) -> None:
        tx.save_tickets(self.rows)


@dataclass(frozen=True, slots=True)
class SavePersons:
    rows: list[PersonRow]
    new: set[str]
    stored: dict[str, tuple[PersonFacts, dict[str, Membership]]] | None

    def apply(self, tx: FoldTx) -> None:
        tx.save_persons(self.rows, new=self.new, stored=self.stored)


@dataclass(frozen=True, slots=True)
class AppendHistory:
    rows: list[HistoryRow]

    def apply(self, tx: FoldTx) -> None:
        tx.append_history(self.rows)


@dataclass(frozen=True, slots=True)
class AppendStateChanges:
    rows: list[StateChangeRow]

    def apply(self, tx: FoldTx) -> None:
        tx.append_state_changes(self.rows)


@dataclass(frozen=True, slots=True)
class AppendOutbox:
    rows: list[OutboxRow]

    def apply(self, tx: FoldTx) -> None:
        tx.append_outbox(self.rows)


@dataclass(frozen=True, slots=True)
class AppendOutcomes:
    rows: list[tuple[str, OutcomeRecorded]]

    def apply(self, tx: FoldTx) -> None:
        tx.append_outcomes(self.rows)


@dataclass(frozen=True, slots=True)
class SaveUserNames:
    rows: list[tuple[int, str, int]]

    def apply(self, tx: FoldTx) -> None:
        tx.save_user_names(self.rows)


def write(tx: FoldTx, ops: Iterable[WriteOp]) -> None:
    """Apply a worker's writes, in the order the fold made them."""
    for op in ops:
        op.apply(tx)


def pack(ops: list[WriteOp]) -> bytes:
    """A worker's writes as bytes for the writer (``unpack``). A frozen dataclass with
    slots (events, rows, facts, tickets) goes as its class and field values: Python's own
    way calls ``dataclasses.fields`` for every object on both sides, and unpickling a
    batch's writes that way took the writer longer than writing them."""
    out = io.BytesIO()
    pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _reducers()
    pickler.dump(ops)
    return out.getvalue()


def unpack(data: bytes) -> list[WriteOp]:
    ops: list[WriteOp] = pickle.loads(data)
    return ops


Reduced = tuple[Callable[..., object], tuple[object, ...]]


@functools.cache
def _reducers() -> dict[type, Callable[[object], Reduced]]:
    """A reducer for every frozen dataclass with slots that writes carry."""
    table: dict[type, Callable[[object], Reduced]] = {}
    for module in (base, events, segments, state):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and dataclasses.is_dataclass(value)
                and "__slots__" in value.__dict__
            ):
                names = tuple(f.name for f in dataclasses.fields(value))
                table[value] = functools.partial(_reduce, value, names)
    return table


def _reduce(cls: type, names: tuple[str, ...], obj: object) -> Reduced:
    return _rebuild, (cls, tuple([getattr(obj, name) for name in names]), names)


def _rebuild(cls: type, values: tuple[object, ...], names: tuple[str, ...]) -> object:
    obj: object = object.__new__(cls)
    for name, value in zip(names, values, strict=True):
        object.__setattr__(obj, name, value)
    return obj


# -- a batch folded on a snapshot, and written by the writer -------------------------------
@dataclass(frozen=True)
class Folded:
    """A batch a worker folded: its stats and its writes (``pack``); stats None: the batch
    needs the writer (``NeedsWriter``), which folds it itself."""

    stats: BatchStats | None
    writes: bytes


def fold_on_snapshot(
    store: SQLiteStore, fold: Callable[[FoldTx], BatchStats], earlier: frozenset[str] = frozenset()
) -> Folded:
    """In a worker: ``fold`` a batch against a ``Recorder`` over a snapshot of ``store``."""
    with store.snapshot() as snapshot:
        recorder = Recorder(snapshot, earlier)
        try:
            stats = fold(recorder)
        except NeedsWriter:
            return Folded(None, b"")
    return Folded(stats, pack(recorder.ops))


def write_folded(store: SQLiteStore, tx: FoldTx, version: int, folded: Folded) -> BatchStats:
    """In the writer, in ``tx`` (a transaction of ``store``): apply a worker's writes;
    ``Stale`` (roll ``tx`` back) if another connection wrote since ``version`` (the
    ``data_version`` the workers' snapshots were taken at) or the log is not as the worker
    saw it."""
    assert folded.stats is not None
    if store.data_version() != version:
        raise Stale("another connection wrote to the store")
    write(tx, unpack(folded.writes))
    return folded.stats


# -- the recorder ----------------------------------------------------------------------------
@dataclass
class Recorder:
    """A ``FoldTx`` for a worker: reads from ``reads`` (a snapshot) with this batch's own
    writes laid over them, writes kept in ``ops``. ``earlier``: event keys an earlier batch
    of the same fold logs (the writer applies those first)."""

    reads: SnapshotReads
    earlier: frozenset[str] = frozenset()
    ops: list[WriteOp] = field(default_factory=list)
    persons: dict[str, PersonRow | None] = field(default_factory=dict)  # saved; None: gone
    alias: dict[str, str] = field(default_factory=dict)  # merged away -> survivor
    added: dict[str, set[IdentKey]] = field(default_factory=dict)  # person -> added
    deleted_history: set[int] = field(default_factory=set)
    # history rows this batch appended (and did not delete), under ids of the recorder's
    # own (below 0: no stored row's), in the order appended
    appended: dict[int, HistoryRow] = field(default_factory=dict)
    appended_count: int = 0
    tickets: dict[int, tuple[str, TicketRecord]] = field(default_factory=dict)  # saved
    locking = False  # one writer: nothing to lock

    # -- what the batch's own writes changed -----------------------------------------------
    def _final(self, person_id: str) -> str:
        while person_id in self.alias:
            person_id = self.alias[person_id]
        return person_id

    def _sources(self, person_ids: Sequence[str]) -> dict[str, str]:
        """The ids whose stored rows now belong to ``person_ids`` (those persons, unless
        merged away, and every person merged into them), each with its owner now."""
        wanted = set(person_ids)
        owners = {pid: self._final(pid) for pid in wanted | self.alias.keys()}
        return {pid: owner for pid, owner in owners.items() if owner in wanted}

    # -- reads -------------------------------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        return self.reads.get_meta(key)

    def setdefault_meta(self, key: str, value: str) -> str:
        found = self.reads.get_meta(key)
        if found is None:
            raise NeedsWriter(f"meta {key} is not set yet")
        return found

    def lock(self, keys: Iterable[str]) -> None:
        """Nothing to lock: one process writes."""

    def lookup_identifiers(self, keys: Iterable[IdentKey]) -> dict[IdentKey, set[str]]:
        keys = set(keys)
        found = {
            key: {self._final(pid) for pid in pids}
            for key, pids in self.reads.lookup_identifiers(keys).items()
        }
        for pid, added in self.added.items():
            for key in added & keys:
                found.setdefault(key, set()).add(self._final(pid))
        return found

    def identifiers_of(self, person_ids: Sequence[str]) -> dict[str, list[IdentKey]]:
        sources = self._sources(person_ids)
        out: dict[str, set[IdentKey]] = {pid: set() for pid in person_ids}
        if sources:
            for pid, keys in self.reads.identifiers_of(sorted(sources)).items():
                out[sources[pid]].update(keys)
        for pid, owner in sources.items():
            out[owner].update(self.added.get(pid, ()))
        return {pid: sorted(keys) for pid, keys in out.items()}

    def resolve_person_id(self, person_id: str) -> str | None:
        current: str | None = person_id
        if person_id not in self.alias and person_id not in self.persons:
            current = self.reads.resolve_person_id(person_id)
        if current is None:
            return None
        current = self._final(current)
        if current in self.persons:
            return None if self.persons[current] is None else current
        return current if self.reads.resolve_person_id(current) == current else None

    def load_persons(self, person_ids: Sequence[str]) -> dict[str, PersonRow]:
        out = self.reads.load_persons([p for p in person_ids if p not in self.persons])
        for pid in person_ids:
            row = self.persons.get(pid)
            if row is not None:
                out[pid] = _as_stored(row)
        return out

    def history_rows(self, person_ids: Sequence[str]) -> list[tuple[int, str, Change]]:
        """The stored rows, then this batch's own in the order it appended them: the
        order of the ids the store gives them."""
        sources = self._sources(person_ids)
        if not sources:
            return []
        stored = [
            (row_id, sources[pid], change)
            for row_id, pid, change in self.reads.history_rows(sorted(sources))
            if row_id not in self.deleted_history
        ]
        return stored + [
            (row_id, sources[row.person_id], row.change)
            for row_id, row in self.appended.items()
            if row.person_id in sources
        ]

    def load_tickets(self, ticket_ids: Iterable[int]) -> dict[int, tuple[str, TicketRecord]]:
        ids = set(ticket_ids)
        out = {
            tid: (self._final(owner), record)
            for tid, (owner, record) in self.reads.load_tickets(ids - self.tickets.keys()).items()
        }
        for tid in ids & self.tickets.keys():
            owner, record = self.tickets[tid]
            out[tid] = (self._final(owner), record)
        return out

    def tickets_of(self, person_ids: Sequence[str]) -> dict[str, list[TicketRecord]]:
        sources = self._sources(person_ids)
        found: dict[str, dict[int, TicketRecord]] = {pid: {} for pid in person_ids}
        if sources:
            for pid, ticket_records in self.reads.tickets_of(sorted(sources)).items():
                for record in ticket_records:
                    if record.ticket_id not in self.tickets:
                        found[sources[pid]][record.ticket_id] = record
        for tid, (owner, record) in self.tickets.items():
            if (owner := self._final(owner)) in found:
                found[owner][tid] = record
        return {pid: [by_id[t] for t in sorted(by_id)] for pid, by_id in found.items()}

    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]:
        raise NeedsWriter("the whole store's timers")

    # -- writes ------------------------------------------------------------------------------
    def insert_events(self, rows: Sequence[EventRow]) -> list[bool]:
        rows = list(rows)
        new = self.reads.new_event_keys([r.key for r in rows]) - self.earlier
        inserted: list[bool] = []
        for row in rows:  # the first of several rows with one key is the new one
            inserted.append(row.key in new)
            new.discard(row.key)
        self.ops.append(InsertEvents(rows, inserted))
        return inserted

    def index_events(
        self, persons: Iterable[tuple[str, str]], tickets: Iterable[tuple[int, str]]
    ) -> None:
        self.ops.append(IndexEvents(list(persons), list(tickets)))

    def add_identifiers(self, rows: Iterable[tuple[str, str, str]]) -> None:
        rows = list(rows)
        for kind, value, pid in rows:
            self.added.setdefault(pid, set()).add((kind, value))
        self.ops.append(AddIdentifiers(rows))

    def merge_person(self, absorbed: str, survivor: str) -> None:
        self.alias[absorbed] = survivor
        self.persons[absorbed] = None
        self.ops.append(MergePerson(absorbed, survivor))

    def delete_history(self, row_ids: Sequence[int]) -> None:
        """A row of this batch's own goes by its place among its person's rows, which the
        writer finds the same (``DeleteHistory``), with the id the store gave it."""
        stored = [row_id for row_id in row_ids if row_id not in self.appended]
        listings: dict[str, list[int]] = {}
        appended: list[tuple[str, int, Change]] = []
        for row_id in row_ids:
            if row_id in self.appended:
                row = self.appended[row_id]
                owner = self._final(row.person_id)
                if owner not in listings:
                    listings[owner] = [i for i, _, _ in self.history_rows([owner])]
                appended.append((owner, listings[owner].index(row_id), row.change))
        for row_id in row_ids:
            self.appended.pop(row_id, None)
        self.deleted_history.update(stored)
        self.ops.append(DeleteHistory(stored, appended))

    def save_tickets(self, rows: Iterable[tuple[int, str, TicketRecord]]) -> None:
        rows = list(rows)
        self.tickets.update((tid, (owner, record)) for tid, owner, record in rows)
        self.ops.append(SaveTickets(rows))

    def save_persons(
        self, rows: Iterable[PersonRow], *, new: set[str], stored: Stored | None = None
    ) -> None:
        # Copies: the batch goes on changing its rows after it saved them.
        copies = [
            PersonRow(
                r.person_id, r.facts, dict(r.state), dict(r.memberships), r.wake, r.created_us
            )
            for r in rows
        ]
        for row in copies:
            self.persons[row.person_id] = row
        kept = None if stored is None else {p: (f, dict(m)) for p, (f, m) in stored.items()}
        self.ops.append(SavePersons(copies, set(new), kept))

    def append_history(self, rows: Iterable[HistoryRow]) -> None:
        rows = list(rows)
        for row in rows:
            self.appended_count += 1
            self.appended[-self.appended_count] = row
        self.ops.append(AppendHistory(rows))

    def append_state_changes(self, rows: Iterable[StateChangeRow]) -> None:
        self.ops.append(AppendStateChanges(list(rows)))

    def append_outbox(self, rows: Iterable[OutboxRow]) -> None:
        self.ops.append(AppendOutbox(list(rows)))

    def append_outcomes(self, rows: Iterable[tuple[str, OutcomeRecorded]]) -> None:
        self.ops.append(AppendOutcomes(list(rows)))

    def save_user_names(self, rows: Iterable[tuple[int, str, int]]) -> None:
        self.ops.append(SaveUserNames(list(rows)))

    def erase_person(
        self, person_id: str, at_us: int, requested_by: str, ticket_ids: Iterable[int] = ()
    ) -> ErasureReport:
        raise NeedsWriter("an erasure")

    def advance_clock(self, until: datetime) -> None:
        raise NeedsWriter("moving the clock")


def _as_stored(row: PersonRow) -> PersonRow:
    """``row`` as the store gives it back once saved (``SqlTx.save_persons``): its facts,
    state and time through their stored forms, only the memberships that are members."""
    wake = None if row.wake is None else records.from_us(records.to_us(row.wake))
    memberships = {
        segment: records.membership_from_row(since, false_since, holdout)
        for segment, membership in row.memberships.items()
        if membership.member
        for _, _, since, false_since, holdout in (
            records.membership_row(segment, row.person_id, membership),
        )
    }
    return PersonRow(
        row.person_id,
        records.load_facts(records.dump_facts(row.facts)),
        records.load_state(records.dump_state(row.state)),
        memberships,
        wake,
        row.created_us,
    )
