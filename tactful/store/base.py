"""The store interface, implemented by SQLite (embedded) and PostgreSQL (several processes).

Everything the engine writes for one batch happens inside one ``transaction()``: a crash at
any point leaves the store as it was before the batch or after it, never in between.
Times are stored as integer microseconds since the epoch (exact, sortable).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tactful.core.events import OutcomeRecorded
from tactful.core.segments import Change, Membership
from tactful.core.state import PersonFacts, TicketRecord
from tactful.exceptions import NeedsOperator, TryAgain
from tactful.store.dialect import Dialect
from tactful.store.erasure import ErasureReport
from tactful.store.pages import PagesReads, PagesWrites
from tactful.store.ports import (
    DeliveryReads,
    DeliveryWrites,
    ReadModels,
    RunReads,
    RunWrites,
    WatchReads,
)

IdentKey = tuple[str, str]  # (kind, normalized value)

# meta: an unfinished replay's progress (``Engine.replay``). While it is there, writers keep
# what they acknowledge in the inbox, even when no process holds the replay lock.
REPLAY_KEY = "replay"


class StoreError(NeedsOperator):
    """A store failure the operator must act on (disk full, read-only, bad URL, schema)."""


class StoreConflict(StoreError, TryAgain):
    """Another process's transaction conflicted with this one (deadlock, serialization):
    nothing was written; running the same work again is safe."""


@dataclass(frozen=True, slots=True)
class EventRow:
    key: str
    kind: str
    at_us: int
    source: str
    document_id: int | None  # the raw document (page, webhook body) it came from
    canonical: bytes  # codec.dumps(event)


@dataclass(slots=True)
class PersonRow:
    person_id: str
    facts: PersonFacts
    state: dict[str, Any]  # derived §3 fields incl. support_state, as of the engine clock
    memberships: dict[str, Membership]
    wake: datetime | None
    created_us: int


@dataclass(frozen=True, slots=True)
class HistoryRow:
    person_id: str
    change: Change


@dataclass(frozen=True, slots=True)
class StateChangeRow:
    person_id: str
    at: datetime
    old_state: str | None
    new_state: str
    changed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class OutboxRow:
    person_id: str
    topic: str  # support_state_changed | segment_membership_changed
    at: datetime
    payload: bytes


class FoldTx(Protocol):
    """What a batch's fold reads and writes through its transaction (``Batch``,
    ``BatchIdentity``, ``tactful.engine.grouped``): the part of ``Tx`` a worker's
    ``tactful.engine.split.Recorder`` stands in for."""

    # concurrency between processes (no-ops where one process writes at a time)
    locking: bool

    def lock(self, keys: Iterable[str]) -> None: ...

    # meta and clock
    def get_meta(self, key: str) -> str | None: ...
    def setdefault_meta(self, key: str, value: str) -> str: ...
    def advance_clock(self, until: datetime) -> None: ...

    # event log
    def insert_events(self, rows: Sequence[EventRow]) -> list[bool]: ...
    def index_events(
        self, persons: Iterable[tuple[str, str]], tickets: Iterable[tuple[int, str]]
    ) -> None: ...

    # identity
    def lookup_identifiers(self, keys: Iterable[IdentKey]) -> dict[IdentKey, set[str]]: ...
    def add_identifiers(self, rows: Iterable[tuple[str, str, str]]) -> None: ...
    def identifiers_of(self, person_ids: Sequence[str]) -> dict[str, list[IdentKey]]: ...
    def merge_person(self, absorbed: str, survivor: str) -> None: ...
    def history_rows(self, person_ids: Sequence[str]) -> list[tuple[int, str, Change]]: ...
    def delete_history(self, row_ids: Sequence[int]) -> None: ...
    def resolve_person_id(self, person_id: str) -> str | None: ...

    # tickets
    def load_tickets(self, ticket_ids: Iterable[int]) -> dict[int, tuple[str, TicketRecord]]: ...
    def tickets_of(self, person_ids: Sequence[str]) -> dict[str, list[TicketRecord]]: ...
    def save_tickets(self, rows: Iterable[tuple[int, str, TicketRecord]]) -> None: ...
    def save_user_names(self, rows: Iterable[tuple[int, str, int]]) -> None: ...

    # persons, memberships, timers, what they tell
    def load_persons(self, person_ids: Sequence[str]) -> dict[str, PersonRow]: ...
    def save_persons(
        self,
        rows: Iterable[PersonRow],
        *,
        new: set[str],
        stored: Mapping[str, tuple[PersonFacts, dict[str, Membership]]] | None = None,
    ) -> None: ...
    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]: ...
    def append_history(self, rows: Iterable[HistoryRow]) -> None: ...
    def append_state_changes(self, rows: Iterable[StateChangeRow]) -> None: ...
    def append_outbox(self, rows: Iterable[OutboxRow]) -> None: ...
    def append_outcomes(self, rows: Iterable[tuple[str, OutcomeRecorded]]) -> None: ...
    def erase_person(
        self, person_id: str, at_us: int, requested_by: str, ticket_ids: Iterable[int] = ()
    ) -> ErasureReport: ...


class Tx(FoldTx, PagesWrites, Protocol):
    """One unit of work; all writes commit together or not at all."""

    # meta
    def set_meta(self, key: str, value: str) -> None: ...
    def delete_meta(self, key: str) -> None: ...
    def prune_meta(self, prefix: str, below: str) -> int: ...

    # event log
    def insert_document(self, source: str, body: bytes) -> int: ...
    def event_chunk(self, after_seq: int, batch_size: int) -> list[tuple[int, str, bytes]]: ...
    def event_count(self) -> int: ...

    # persons
    def delete_person(self, person_id: str) -> None: ...
    def erased_after(self, keys: Iterable[IdentKey], after_us: int) -> set[IdentKey]: ...

    # derived data reset (replay); events from the future (clock repair)
    def reset_derived(self) -> None: ...
    def hold_store(self) -> None: ...
    def lock_row(self, key: str) -> None: ...
    def person_ids(self, after: str | None, limit: int) -> list[str]: ...
    def snapshot_persons(self) -> None: ...
    def snapshot_persons_of(self, person_ids: Sequence[str]) -> dict[str, PersonRow]: ...
    def snapshot_count(self) -> int: ...
    def snapshot_gone(self, after: str | None, limit: int) -> list[str]: ...
    def drop_snapshot(self) -> None: ...
    def events_after(self, at_us: int, *, delete: bool = False) -> list[tuple[str, int]]: ...

    # personal data was erased or forgotten here: the store wipes its traces after commit
    erased: bool

    # the ports of other aggregates, inside this transaction (``tactful.store.ports``)
    @property
    def deliveries(self) -> DeliveryWrites: ...
    @property
    def runs(self) -> RunWrites: ...


@dataclass(frozen=True)
class InboxRow:
    """One webhook request acknowledged while a replay held the store: its documents and
    events (``writer`` encodes them), kept until applied."""

    seq: int
    payload: bytes
    received_us: int = 0  # when it was acknowledged


@dataclass(frozen=True)
class InboxSummary:
    """What ``tactful doctor`` shows of the inbox."""

    waiting: int
    failed: int
    oldest_failed_us: int | None  # when the oldest failed request arrived
    oldest_error: str | None  # and why it could not be applied


class Inbox(Protocol):
    """Requests acknowledged while a replay holds the store, written where the replay's
    locks are not (SQLite: a small file beside the store; PostgreSQL: the ``inbox`` table),
    each insert durable on its own. Drained in ``seq`` (arrival) order."""

    def put(self, payloads: Sequence[bytes]) -> None: ...
    def pending(self) -> bool: ...
    def take(self, limit: int) -> list[InboxRow]: ...
    def done(self, seqs: Sequence[int]) -> None: ...
    def fail(self, seq: int, error: str) -> None: ...
    def failed(self) -> list[tuple[int, str]]: ...  # (seq, error) of rows kept aside
    def summary(self) -> InboxSummary: ...
    def close(self) -> None: ...


class Store(Protocol):
    url: str
    dialect: Dialect  # how this store's SQL is written (``tactful.store.dialect``)

    def transaction(
        self, *, durable: bool = True, bulk: bool = False
    ) -> AbstractContextManager[Tx]: ...
    def reader(self) -> AbstractContextManager[Reader]: ...
    def claim(self, name: str) -> AbstractContextManager[bool]: ...
    def close(self) -> None: ...
    # A replay holds ``replay_lock`` (exclusive, waiting) for as long as it runs; other
    # writers hold ``unless_replaying`` (shared, never waiting: False while a replay runs or
    # one stopped half way, meta ``REPLAY_KEY``) around their transaction and write to
    # ``inbox()`` instead. Both locks are released when their process dies.
    def replay_lock(self) -> AbstractContextManager[None]: ...
    def unless_replaying(self) -> AbstractContextManager[bool]: ...
    def inbox(self) -> Inbox | None: ...


class Reader(PagesReads, Protocol):
    """Read-only queries for the CLI and the API (a consistent snapshot)."""

    def get_meta(self, key: str) -> str | None: ...
    def find_persons(self, kind: str | None, value: str) -> list[str]: ...
    def load_persons(self, person_ids: Sequence[str]) -> dict[str, PersonRow]: ...
    def tickets_of(self, person_ids: Sequence[str]) -> dict[str, list[TicketRecord]]: ...
    def load_tickets(self, ticket_ids: Iterable[int]) -> dict[int, tuple[str, TicketRecord]]: ...
    def identifiers_of(self, person_ids: Sequence[str]) -> dict[str, list[IdentKey]]: ...
    def history_of(self, person_id: str) -> list[Change]: ...
    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]: ...
    def person_ids(self, after: str | None, limit: int) -> list[str]: ...
    def documents_with_source_prefix(
        self, prefix: str, after_id: int
    ) -> list[tuple[int, str, int]]: ...
    def document_body(self, doc_id: int) -> bytes | None: ...
    def segment_counts(self) -> dict[str, tuple[int, int]]: ...
    def segment_members(
        self, segment: str, after: str | None, limit: int
    ) -> list[tuple[str, Membership]]: ...
    def member_consents(
        self, segment: str, purpose: str, after: str | None, limit: int
    ) -> list[tuple[str, bool | None]]: ...
    def state_counts(self) -> dict[str, int]: ...
    def counts(self) -> dict[str, int]: ...
    def resolve_person_id(self, person_id: str) -> str | None: ...
    def ticket_person(self, ticket_id: int) -> str | None: ...

    # the ports of other aggregates, in this snapshot (``tactful.store.ports``)
    @property
    def deliveries(self) -> DeliveryReads: ...
    @property
    def read_models(self) -> ReadModels: ...
    @property
    def runs(self) -> RunReads: ...
    @property
    def watch(self) -> WatchReads: ...
