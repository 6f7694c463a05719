"""The store interface, implemented by SQLite (embedded) and PostgreSQL (several processes).

Everything the engine writes for one batch happens inside one ``transaction()``: a crash at
any point leaves the store as it was before the batch or after it, never in between.
Times are stored as integer microseconds since the epoch (exact, sortable).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from tactful.core.segments import Change, Membership
from tactful.core.state import PersonFacts, TicketRecord

IdentKey = tuple[str, str]  # (kind, normalized value)


class StoreError(Exception):
    """A store failure the operator must act on (disk full, read-only, bad URL, schema)."""


class StoreConflict(StoreError):
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


class Tx(Protocol):
    """One unit of work; all writes commit together or not at all."""

    # meta and clock
    def get_meta(self, key: str) -> str | None: ...
    def set_meta(self, key: str, value: str) -> None: ...
    def prune_meta(self, prefix: str, below: str) -> int: ...

    # event log
    def insert_document(self, source: str, body: bytes) -> int: ...
    def insert_events(self, rows: Sequence[EventRow]) -> list[bool]: ...
    def event_batches(self, batch_size: int) -> Iterator[list[tuple[int, str, bytes]]]: ...
    def event_count(self) -> int: ...

    # identity
    def lookup_identifiers(self, keys: Iterable[IdentKey]) -> dict[IdentKey, set[str]]: ...
    def add_identifiers(self, rows: Iterable[tuple[str, str, str]]) -> None: ...
    def identifiers_of(self, person_ids: Sequence[str]) -> dict[str, list[IdentKey]]: ...
    def merge_person(self, absorbed: str, survivor: str) -> None: ...
    def resolve_person_id(self, person_id: str) -> str | None: ...

    # tickets
    def load_tickets(self, ticket_ids: Iterable[int]) -> dict[int, tuple[str, TicketRecord]]: ...
    def tickets_of(self, person_ids: Sequence[str]) -> dict[str, list[TicketRecord]]: ...
    def save_tickets(self, rows: Iterable[tuple[int, str, TicketRecord]]) -> None: ...

    # persons, memberships, timers
    def load_persons(self, person_ids: Sequence[str]) -> dict[str, PersonRow]: ...
    def save_persons(
        self,
        rows: Iterable[PersonRow],
        *,
        new: set[str],
        stored: Mapping[str, tuple[PersonFacts, dict[str, Membership]]] | None = None,
    ) -> None: ...
    def delete_person(self, person_id: str) -> None: ...
    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]: ...
    def append_history(self, rows: Iterable[HistoryRow]) -> None: ...
    def append_state_changes(self, rows: Iterable[StateChangeRow]) -> None: ...
    def append_outbox(self, rows: Iterable[OutboxRow]) -> None: ...

    def erase_person(self, person_id: str, at_us: int, requested_by: str) -> Any: ...
    def append_outcomes(self, rows: Iterable[tuple[str, Any]]) -> None: ...

    # derived data reset (replay)
    def reset_derived(self) -> None: ...

    # concurrency between processes (no-ops where one process writes at a time)
    locking: bool

    def lock(self, keys: Iterable[str]) -> None: ...
    def setdefault_meta(self, key: str, value: str) -> str: ...
    def advance_clock(self, until: datetime) -> None: ...


class Store(Protocol):
    url: str

    def transaction(
        self, *, durable: bool = True, bulk: bool = False
    ) -> AbstractContextManager[Tx]: ...
    def reader(self) -> AbstractContextManager[Reader]: ...
    def claim(self, name: str) -> AbstractContextManager[bool]: ...
    def close(self) -> None: ...


class Reader(Protocol):
    """Read-only queries for the CLI and the API (a consistent snapshot)."""

    def get_meta(self, key: str) -> str | None: ...
    def find_persons(self, kind: str | None, value: str) -> list[str]: ...
    def load_persons(self, person_ids: Sequence[str]) -> dict[str, PersonRow]: ...
    def tickets_of(self, person_ids: Sequence[str]) -> dict[str, list[TicketRecord]]: ...
    def identifiers_of(self, person_ids: Sequence[str]) -> dict[str, list[IdentKey]]: ...
    def history_of(self, person_id: str) -> list[Change]: ...
    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]: ...
    def person_ids(self, after: str | None, limit: int) -> list[str]: ...
    def documents_with_source_prefix(
        self, prefix: str, after_id: int
    ) -> list[tuple[int, str, int]]: ...
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
