"""The SQL both stores share: every read and write of the engine, written once.

The SQL is portable (SQLite 3.35+ and PostgreSQL 13+: ``ON CONFLICT``, ``RETURNING``), each
statement written with the store's ``Dialect`` (``tactful.store.dialect``: the parameter
mark, lists of values). What differs beyond that — locking between processes, claiming due
timers — are the hooks at the end of ``SqlTx``, which the PostgreSQL adapter overrides. On
SQLite one process writes at a time (``BEGIN IMMEDIATE``), so the hooks do nothing.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson

from tactful.clock import now_us
from tactful.core import codec
from tactful.core.segments import Change, Membership
from tactful.core.state import PersonFacts, TicketRecord
from tactful.store import records
from tactful.store.adapters import SqlPorts
from tactful.store.base import (
    EventRow,
    HistoryRow,
    IdentKey,
    OutboxRow,
    PersonRow,
    StateChangeRow,
)
from tactful.store.dbapi import Conn
from tactful.store.dbapi import chunks as chunks
from tactful.store.dialect import SQLITE, Dialect
from tactful.store.erasure import ErasureReport, erase, erased_after
from tactful.store.migrations import PERSON_STATE_TABLES, PERSON_TABLES
from tactful.store.pages import PagesQueries

# A replay's snapshot of the persons before it (``SqlTx.snapshot_persons``).
BEFORE = "replay_before_"
SNAPSHOT_TABLES = ("persons", "memberships")

CLOCK_KEY = "clock"


# A person's row as ``SqlTx.save_persons`` writes it, and what an existing row takes from it.
PERSON_COLUMNS = "person_id, facts, state, support_state, created_us, wake_us"
PERSON_UPSERT = (
    "ON CONFLICT (person_id) DO UPDATE SET facts = excluded.facts, state = excluded.state, "
    "support_state = excluded.support_state, wake_us = excluded.wake_us"
)


def first_new(rows: Sequence[EventRow], new_keys: set[str]) -> list[bool]:
    """For each row, whether it was inserted: its key is among those the insert returned,
    and it is the first row with that key (a later one with the same key was skipped)."""
    inserted: list[bool] = []
    for row in rows:
        inserted.append(row.key in new_keys)
        new_keys.discard(row.key)
    return inserted


class SqlQueries(PagesQueries, SqlPorts):
    """Reads shared by the writer transaction and the read-only snapshot."""

    conn: Conn
    dialect: Dialect = SQLITE

    def get_meta(self, key: str) -> str | None:
        p = self.dialect.p
        row = self.conn.execute(f"SELECT value FROM meta WHERE key = {p}", (key,)).fetchone()
        return None if row is None else str(row[0])

    def ticket_person(self, ticket_id: int) -> str | None:
        """The person who requested ``ticket_id`` (after merges), None for an unknown ticket."""
        p = self.dialect.p
        row = self.conn.execute(
            f"SELECT person_id FROM tickets WHERE ticket_id = {p}", (ticket_id,)
        ).fetchone()
        return None if row is None else self.resolve_person_id(str(row[0]))

    def resolve_person_id(self, person_id: str) -> str | None:
        p = self.dialect.p
        seen = set()
        current = person_id
        while current not in seen:
            seen.add(current)
            row = self.conn.execute(
                f"SELECT 1 FROM persons WHERE person_id = {p}", (current,)
            ).fetchone()
            if row is not None:
                return current
            alias = self.conn.execute(
                f"SELECT person_id FROM person_aliases WHERE old_id = {p}", (current,)
            ).fetchone()
            if alias is None:
                return None
            current = alias[0]
        return None

    def find_persons(self, kind: str | None, value: str) -> list[str]:
        p = self.dialect.p
        if kind is None:
            rows = self.conn.execute(
                f"SELECT DISTINCT person_id FROM identifiers WHERE value = {p} ORDER BY person_id",
                (value,),
            ).fetchall()
        else:
            rows = self.conn.execute(
                f"SELECT person_id FROM identifiers WHERE kind = {p} AND value = {p} "
                "ORDER BY person_id",
                (kind, value),
            ).fetchall()
        return [r[0] for r in rows]

    def identifiers_of(self, person_ids: Sequence[str]) -> dict[str, list[IdentKey]]:
        out: dict[str, list[IdentKey]] = {pid: [] for pid in person_ids}
        for chunk in chunks(list(person_ids)):
            among, values = self.dialect.among("person_id", chunk)
            for kind, value, pid in self.conn.execute(
                f"SELECT kind, value, person_id FROM identifiers WHERE {among} "
                "ORDER BY kind, value",
                values,
            ):
                out[pid].append((kind, value))
        return out

    def load_tickets(self, ticket_ids: Iterable[int]) -> dict[int, tuple[str, TicketRecord]]:
        out: dict[int, tuple[str, TicketRecord]] = {}
        for chunk in chunks(list(set(ticket_ids))):
            among, values = self.dialect.among("ticket_id", chunk)
            for tid, pid, blob in self.conn.execute(
                f"SELECT ticket_id, person_id, record FROM tickets WHERE {among}", values
            ):
                out[tid] = (pid, records.load_ticket(tid, blob))
        return out

    def tickets_of(self, person_ids: Sequence[str]) -> dict[str, list[TicketRecord]]:
        out: dict[str, list[TicketRecord]] = {pid: [] for pid in person_ids}
        for chunk in chunks(list(person_ids)):
            among, values = self.dialect.among("person_id", chunk)
            for tid, pid, blob in self.conn.execute(
                f"SELECT ticket_id, person_id, record FROM tickets WHERE {among}", values
            ):
                out[pid].append(records.load_ticket(tid, blob))
        return out

    def load_persons(self, person_ids: Sequence[str]) -> dict[str, PersonRow]:
        return self._load_persons(person_ids, "")

    def _load_persons(self, person_ids: Sequence[str], prefix: str) -> dict[str, PersonRow]:
        """``prefix``: "" for the persons as they are, ``BEFORE`` for a replay's snapshot."""
        out: dict[str, PersonRow] = {}
        ids = list(person_ids)
        for chunk in chunks(ids):
            among, values = self.dialect.among("person_id", chunk)
            for pid, facts, state, created, wake in self.conn.execute(
                f"SELECT person_id, facts, state, created_us, wake_us FROM {prefix}persons "
                f"WHERE {among}",
                values,
            ):
                out[pid] = PersonRow(
                    pid,
                    records.load_facts(facts),
                    records.load_state(state),
                    {},
                    None if wake is None else records.from_us(wake),
                    created,
                )
            for segment, pid, since, false_since, holdout in self.conn.execute(
                f"SELECT segment, person_id, since_us, false_since_us, holdout "
                f"FROM {prefix}memberships WHERE {among}",
                values,
            ):
                if pid in out:
                    out[pid].memberships[segment] = records.membership_from_row(
                        since, false_since, holdout
                    )
        return out

    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]:
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT wake_us, person_id FROM persons WHERE wake_us <= {p} "
            "ORDER BY wake_us, person_id",
            (records.to_us(until),),
        ).fetchall()
        return [(records.from_us(due), pid) for due, pid in rows]

    def history_of(self, person_id: str) -> list[Change]:
        p = self.dialect.p
        rows = self.conn.execute(
            "SELECT segment, change, at_us, rule, holdout, detail FROM membership_history "
            f"WHERE person_id = {p} ORDER BY at_us, id",
            (person_id,),
        ).fetchall()
        return [Change(s, c, records.from_us(at), r, bool(h), d) for s, c, at, r, h, d in rows]

    def history_rows(self, person_ids: Sequence[str]) -> list[tuple[int, str, Change]]:
        """(row id, person id, change) of these persons' membership history, in order."""
        among, values = self.dialect.among("person_id", person_ids)
        rows = self.conn.execute(
            "SELECT id, person_id, segment, change, at_us, rule, holdout, detail FROM "
            f"membership_history WHERE {among} ORDER BY id",
            values,
        ).fetchall()
        return [
            (int(i), p, Change(s, c, records.from_us(at), r, bool(h), d))
            for i, p, s, c, at, r, h, d in rows
        ]

    def documents_with_source_prefix(
        self, prefix: str, after_id: int
    ) -> list[tuple[int, str, int]]:
        """(id, source, received_us) of documents whose source starts with ``prefix``."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT id, source, received_us FROM documents WHERE source LIKE {p} AND id > {p} "
            "ORDER BY id",
            (prefix + "%", after_id),
        ).fetchall()
        return [(int(i), str(src), int(r)) for i, src, r in rows if str(src).startswith(prefix)]

    def document_body(self, doc_id: int) -> bytes | None:
        """The raw body of a kept document (None: gone, e.g. erased)."""
        p = self.dialect.p
        row = self.conn.execute(
            f"SELECT encoding, body FROM documents WHERE id = {p}", (doc_id,)
        ).fetchone()
        if row is None:
            return None
        return zlib.decompress(row[1]) if row[0] == "zlib" else bytes(row[1])

    def person_ids(self, after: str | None, limit: int) -> list[str]:
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT person_id FROM persons WHERE person_id > {p} ORDER BY person_id LIMIT {p}",
            (after or "", limit),
        ).fetchall()
        return [r[0] for r in rows]

    def segment_counts(self) -> dict[str, tuple[int, int]]:
        rows = self.conn.execute(
            "SELECT segment, COUNT(*), SUM(holdout) FROM memberships GROUP BY segment"
        ).fetchall()
        return {s: (int(n), int(h or 0)) for s, n, h in rows}

    def segment_members(
        self, segment: str, after: str | None, limit: int
    ) -> list[tuple[str, Membership]]:
        p = self.dialect.p
        rows = self.conn.execute(
            "SELECT person_id, since_us, false_since_us, holdout FROM memberships "
            f"WHERE segment = {p} AND person_id > {p} ORDER BY person_id LIMIT {p}",
            (segment, after or "", limit),
        ).fetchall()
        return [(pid, records.membership_from_row(s, f, h)) for pid, s, f, h in rows]

    def member_consents(
        self, segment: str, purpose: str, after: str | None, limit: int
    ) -> list[tuple[str, bool | None]]:
        """Non-holdout members of ``segment`` after ``after`` (by person id), each with the
        person's consent for ``purpose`` (None: never stated). One query a page: what a full
        reconcile of an audience reads."""
        p = self.dialect.p
        rows = self.conn.execute(
            "SELECT m.person_id, c.granted FROM memberships m "
            f"LEFT JOIN consents c ON c.person_id = m.person_id AND c.purpose = {p} "
            f"WHERE m.segment = {p} AND m.person_id > {p} AND m.holdout = 0 "
            f"ORDER BY m.person_id LIMIT {p}",
            (purpose, segment, after or "", limit),
        ).fetchall()
        return [(pid, None if granted is None else bool(granted)) for pid, granted in rows]

    # Persons per support state. SQLite keeps them counted (``state_counts``, migration 9:
    # ``SqlTx.save_persons`` adds each save's changes, a trigger takes out deletions);
    # PostgreSQL counts them from its support_state index.
    STATE_COUNTS_SQL = "SELECT support_state, COUNT(*) FROM persons GROUP BY support_state"

    def state_counts(self) -> dict[str, int]:
        rows = self.conn.execute(self.STATE_COUNTS_SQL).fetchall()
        return {s: int(n) for s, n in rows}

    def counts(self) -> dict[str, int]:
        queries = {
            table: f"SELECT COUNT(*) FROM {table}"
            for table in ("documents", "events", "persons", "tickets", "identifiers")
        }
        queries["timers"] = "SELECT COUNT(*) FROM persons WHERE wake_us IS NOT NULL"
        queries["outbox"] = "SELECT COUNT(*) FROM outbox"
        return {name: int(self.conn.execute(sql).fetchone()[0]) for name, sql in queries.items()}


class SqlTx(SqlQueries):
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def set_meta(self, key: str, value: str) -> None:
        p = self.dialect.p
        self.conn.execute(
            f"INSERT INTO meta (key, value) VALUES ({p}, {p}) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def delete_meta(self, key: str) -> None:
        p = self.dialect.p
        self.conn.execute(f"DELETE FROM meta WHERE key = {p}", (key,))

    def prune_meta(self, prefix: str, below: str) -> int:
        """Delete the rows whose key starts with ``prefix`` and whose value sorts before
        ``below`` (expiry times written as fixed-width text): short-lived entries such as
        revoked sessions and used token ids."""
        p = self.dialect.p
        cur = self.conn.execute(
            f"DELETE FROM meta WHERE key >= {p} AND key < {p} AND value < {p}",
            (prefix, prefix + "\uffff", below),
        )
        return int(cur.rowcount)

    def insert_document(self, source: str, body: bytes) -> int:
        p = self.dialect.p
        digest = hashlib.sha256(body).hexdigest()
        found = self.conn.execute(
            f"SELECT id FROM documents WHERE sha256 = {p}", (digest,)
        ).fetchone()
        if found is not None:  # stored before (an import's page whose events span batches)
            return int(found[0])
        row = self.conn.execute(
            "INSERT INTO documents (sha256, source, received_us, encoding, body) "
            f"VALUES ({p}, {p}, {p}, 'zlib', {p}) ON CONFLICT (sha256) DO NOTHING RETURNING id",
            (digest, source, now_us(), zlib.compress(body, 1)),
        ).fetchone()
        if row is None:  # the same body was stored before (by this or another process)
            row = self.conn.execute(
                f"SELECT id FROM documents WHERE sha256 = {p}", (digest,)
            ).fetchone()
        return int(row[0])

    def insert_events(self, rows: Sequence[EventRow]) -> list[bool]:
        """Insert the events not yet in the log; True for each row that was new (the first
        of several rows with one key in the same call counts as new)."""
        received = now_us()
        new_keys: set[str] = set()
        for chunk in chunks(list(rows), 400):
            values = ",".join([f"({self.dialect.marks(7)})"] * len(chunk))
            params: list[Any] = []
            for row in chunk:
                params += (
                    row.key,
                    row.kind,
                    row.at_us,
                    row.source,
                    received,
                    row.document_id,
                    row.canonical,
                )
            new_keys.update(
                str(r[0])
                for r in self.conn.execute(
                    "INSERT INTO events (key, kind, at_us, source, received_us, document_id, "
                    f"canonical) VALUES {values} ON CONFLICT (key) DO NOTHING RETURNING key",
                    params,
                ).fetchall()
            )
        return first_new(rows, new_keys)

    def event_chunk(self, after_seq: int, batch_size: int) -> list[tuple[int, str, bytes]]:
        """The log's next chunk after ``after_seq``, in order: at least ``batch_size`` events
        (fewer at the end), never splitting the events stored together (one ``received_us``:
        one batch when they arrived), so a replay applies them as they were applied: a batch
        sweeps its events in time order, and split in two its later half could fall behind
        the clock the first half set."""
        p = self.dialect.p
        query = (
            f"SELECT seq, kind, canonical, received_us FROM events WHERE seq > {p} "
            f"ORDER BY seq LIMIT {p}"
        )
        rows = self.conn.execute(query, (after_seq, batch_size)).fetchall()
        chunk = [(int(seq), str(kind), bytes(blob)) for seq, kind, blob, _ in rows]
        while len(rows) == batch_size:  # the rest of the last rows' batch, if any
            received = rows[-1][3]
            rows = self.conn.execute(query, (chunk[-1][0], batch_size)).fetchall()
            n = next((i for i, r in enumerate(rows) if r[3] != received), len(rows))
            chunk += [(int(seq), str(kind), bytes(blob)) for seq, kind, blob, _ in rows[:n]]
            if n < len(rows):
                break
        return chunk

    def event_count(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    def events_after(self, at_us: int, *, delete: bool = False) -> list[tuple[str, int]]:
        """(key, at µs) of the events later than ``at_us``; ``delete``: take them out of the
        log too (their raw documents stay). The clock repair's query."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT key, at_us FROM events WHERE at_us > {p} ORDER BY at_us, key", (at_us,)
        ).fetchall()
        if delete and rows:
            self.conn.execute(f"DELETE FROM events WHERE at_us > {p}", (at_us,))
        return [(str(k), int(a)) for k, a in rows]

    def lookup_identifiers(self, keys: Iterable[IdentKey]) -> dict[IdentKey, set[str]]:
        p = self.dialect.p
        by_kind: dict[str, list[str]] = {}
        for kind, value in set(keys):
            by_kind.setdefault(kind, []).append(value)
        out: dict[IdentKey, set[str]] = {}
        for kind, values in by_kind.items():
            for chunk in chunks(values):
                among, params = self.dialect.among("value", chunk)
                for value, pid in self.conn.execute(
                    f"SELECT value, person_id FROM identifiers WHERE kind = {p} AND {among}",
                    (kind, *params),
                ):
                    out.setdefault((kind, value), set()).add(pid)
        return out

    def add_identifiers(self, rows: Iterable[tuple[str, str, str]]) -> None:
        p = self.dialect.p
        self.conn.executemany(
            f"INSERT INTO identifiers (kind, value, person_id) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT DO NOTHING",
            list(rows),
        )

    def merge_person(self, absorbed: str, survivor: str) -> None:
        p = self.dialect.p
        c = self.conn
        c.execute(
            "INSERT INTO identifiers (kind, value, person_id) "
            f"SELECT kind, value, {p} FROM identifiers WHERE person_id = {p} "
            "ON CONFLICT DO NOTHING",
            (survivor, absorbed),
        )
        c.execute(f"DELETE FROM identifiers WHERE person_id = {p}", (absorbed,))
        c.execute(f"UPDATE tickets SET person_id = {p} WHERE person_id = {p}", (survivor, absorbed))
        c.execute(
            f"UPDATE outcomes SET person_id = {p} WHERE person_id = {p}", (survivor, absorbed)
        )
        c.execute(
            f"UPDATE person_aliases SET person_id = {p} WHERE person_id = {p}", (survivor, absorbed)
        )
        c.execute(
            f"INSERT INTO person_aliases (old_id, person_id) VALUES ({p}, {p}) "
            "ON CONFLICT (old_id) DO UPDATE SET person_id = excluded.person_id",
            (absorbed, survivor),
        )
        c.execute(
            f"INSERT INTO event_persons (person_id, event_key) SELECT {p}, event_key "
            f"FROM event_persons WHERE person_id = {p} ON CONFLICT DO NOTHING",
            (survivor, absorbed),
        )
        c.execute(f"DELETE FROM event_persons WHERE person_id = {p}", (absorbed,))
        c.execute(
            f"UPDATE membership_history SET person_id = {p} WHERE person_id = {p}",
            (survivor, absorbed),
        )
        c.execute(
            f"UPDATE state_changes SET person_id = {p} WHERE person_id = {p}", (survivor, absorbed)
        )
        self.delete_person(absorbed)

    def index_events(
        self, persons: Iterable[tuple[str, str]], tickets: Iterable[tuple[int, str]]
    ) -> None:
        """Record which person (``(person_id, event key)``) and which ticket (``(ticket_id,
        event key)``) each event is about: the exact keys erasure finds events by. The rows
        go in key order: person ids are keyed hashes, so in event order each row lands on a
        random page of an index as large as the log."""
        p = self.dialect.p
        self.conn.executemany(
            f"INSERT INTO event_persons (person_id, event_key) VALUES ({p}, {p}) "
            "ON CONFLICT DO NOTHING",
            sorted(persons),
        )
        self.conn.executemany(
            f"INSERT INTO event_tickets (ticket_id, event_key) VALUES ({p}, {p}) "
            "ON CONFLICT DO NOTHING",
            sorted(tickets),
        )

    def delete_history(self, row_ids: Sequence[int]) -> None:
        p = self.dialect.p
        self.conn.executemany(
            f"DELETE FROM membership_history WHERE id = {p}", [(i,) for i in row_ids]
        )

    def delete_person(self, person_id: str) -> None:
        p = self.dialect.p
        for table in PERSON_STATE_TABLES:
            self.conn.execute(f"DELETE FROM {table} WHERE person_id = {p}", (person_id,))

    def save_tickets(self, rows: Iterable[tuple[int, str, TicketRecord]]) -> None:
        p = self.dialect.p
        self.conn.executemany(
            f"INSERT INTO tickets (ticket_id, person_id, record) VALUES ({p}, {p}, {p}) "
            "ON CONFLICT (ticket_id) DO UPDATE SET person_id = excluded.person_id, "
            "record = excluded.record",
            [(tid, pid, records.dump_ticket(rec)) for tid, pid, rec in rows],
        )

    def save_persons(
        self,
        rows: Iterable[PersonRow],
        *,
        new: set[str],
        stored: Mapping[str, tuple[PersonFacts, dict[str, Membership]]] | None = None,
    ) -> None:
        """Upsert persons. ``new``: not in the store yet. ``stored``: a person's (facts,
        memberships) as loaded, so that only the memberships and consents that differ are
        written; a person in neither has all of them rewritten."""
        p = self.dialect.p
        rows = list(rows)
        stored = stored or {}
        if self.COUNTS_STATES:
            self._count_states(rows)
        self._upsert_persons(
            [
                (
                    r.person_id,
                    records.dump_facts(r.facts),
                    records.dump_state(r.state),
                    r.state.get("support_state", "clear"),
                    r.created_us,
                    None if r.wake is None else records.to_us(r.wake),
                )
                for r in rows
            ]
        )
        known = new | stored.keys()
        unknown = [(r.person_id,) for r in rows if r.person_id not in known]
        self.conn.executemany(f"DELETE FROM memberships WHERE person_id = {p}", unknown)
        removed: list[tuple[str, str]] = []
        upserts: list[tuple[Any, ...]] = []
        for r in rows:
            current = {seg: m for seg, m in r.memberships.items() if m.member}
            before = stored[r.person_id][1] if r.person_id in stored else {}
            removed += [(seg, r.person_id) for seg in before if seg not in current]
            upserts += [
                records.membership_row(seg, r.person_id, m)
                for seg, m in current.items()
                if before.get(seg) != m
            ]
        self.conn.executemany(
            f"DELETE FROM memberships WHERE segment = {p} AND person_id = {p}", removed
        )
        self.conn.executemany(
            "INSERT INTO memberships (segment, person_id, since_us, false_since_us, holdout) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}) ON CONFLICT (segment, person_id) DO UPDATE SET "
            "since_us = excluded.since_us, false_since_us = excluded.false_since_us, "
            "holdout = excluded.holdout",
            upserts,
        )
        rewrite = [
            r for r in rows if r.person_id not in stored or stored[r.person_id][0] != r.facts
        ]
        self.conn.executemany(
            f"DELETE FROM consents WHERE person_id = {p}",
            [(r.person_id,) for r in rewrite if r.person_id not in new],
        )
        self.conn.executemany(
            f"INSERT INTO consents (person_id, purpose, granted) VALUES ({p}, {p}, {p})",
            [
                (r.person_id, purpose, 1 if granted else 0)
                for r in rewrite
                for purpose, granted in r.facts.stated_consent()
            ],
        )

    def _upsert_persons(self, values: list[tuple[Any, ...]]) -> None:
        """``PERSON_COLUMNS`` rows, in order."""
        self.conn.executemany(
            f"INSERT INTO persons ({PERSON_COLUMNS}) VALUES ({self.dialect.marks(6)}) "
            f"{PERSON_UPSERT}",
            values,
        )

    # Whether persons per support state are kept in ``state_counts`` (SQLite, migration 9).
    COUNTS_STATES = False

    def _count_states(self, rows: Sequence[PersonRow]) -> None:
        """Add to ``state_counts`` what saving these rows changes: each one's support state,
        less the stored rows' (new persons have none). Deletions are taken out by a
        trigger."""
        p = self.dialect.p
        final = {r.person_id: r.state.get("support_state", "clear") for r in rows}
        delta: Counter[str] = Counter(final.values())
        for chunk in chunks(list(final)):
            among, values = self.dialect.among("person_id", chunk)
            for state, n in self.conn.execute(
                f"SELECT support_state, COUNT(*) FROM persons WHERE {among} GROUP BY support_state",
                values,
            ):
                delta[state] -= int(n)
        self.conn.executemany(
            f"INSERT INTO state_counts (support_state, persons) VALUES ({p}, {p}) "
            "ON CONFLICT (support_state) DO UPDATE SET persons = persons + excluded.persons",
            [(state, n) for state, n in sorted(delta.items()) if n],
        )

    def append_history(self, rows: Iterable[HistoryRow]) -> None:
        p = self.dialect.p
        self.conn.executemany(
            "INSERT INTO membership_history (person_id, segment, change, at_us, rule, holdout, "
            f"detail) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p})",
            [
                (
                    r.person_id,
                    c.segment,
                    c.change,
                    records.to_us(c.at),
                    c.rule,
                    int(c.holdout),
                    c.detail,
                )
                for r in rows
                for c in (r.change,)
            ],
        )

    def append_state_changes(self, rows: Iterable[StateChangeRow]) -> None:
        p = self.dialect.p
        self.conn.executemany(
            "INSERT INTO state_changes (person_id, at_us, old_state, new_state, changed) "
            f"VALUES ({p}, {p}, {p}, {p}, {p})",
            [
                (r.person_id, records.to_us(r.at), r.old_state, r.new_state, ",".join(r.changed))
                for r in rows
            ],
        )

    def append_outbox(self, rows: Iterable[OutboxRow]) -> None:
        p = self.dialect.p
        now = now_us()
        self.conn.executemany(
            "INSERT INTO outbox (person_id, topic, at_us, payload, created_us) "
            f"VALUES ({p}, {p}, {p}, {p}, {p})",
            [(r.person_id, r.topic, records.to_us(r.at), r.payload, now) for r in rows],
        )

    def append_outcomes(self, rows: Iterable[tuple[str, Any]]) -> None:
        p = self.dialect.p
        self.conn.executemany(
            "INSERT INTO outcomes (key, person_id, at_us, outcome, amount, currency, properties) "
            f"VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}) ON CONFLICT (key) DO NOTHING",
            [
                (
                    e.key,
                    pid,
                    records.to_us(e.at),
                    e.outcome,
                    e.amount,
                    e.currency,
                    orjson.dumps(dict(e.properties)),
                )
                for pid, e in rows
            ],
        )

    def erased_after(self, keys: Iterable[IdentKey], after_us: int) -> set[IdentKey]:
        """Of these identifiers (and ``("ticket", id)``), those of a person erased after
        ``after_us``."""
        return erased_after(self.conn, self.dialect, keys, after_us)

    erased = False  # an erasure ran in this transaction (the adapter then wipes its traces)

    def erase_person(
        self, person_id: str, at_us: int, requested_by: str, ticket_ids: Iterable[int] = ()
    ) -> ErasureReport:
        self.erased = True
        return erase(self.conn, self.dialect, person_id, at_us, requested_by, ticket_ids)

    # -- a replay's snapshot of the persons before it (what destinations were told): real
    # tables (migration 14), kept across the replay's commits, read a page at a time
    def snapshot_persons(self) -> None:
        """Copy the persons and their memberships, as they are, into the snapshot tables."""
        self.drop_snapshot()
        self.conn.execute(
            f"INSERT INTO {BEFORE}persons (person_id, facts, state, created_us, wake_us) "
            "SELECT person_id, facts, state, created_us, wake_us FROM persons"
        )
        self.conn.execute(
            f"INSERT INTO {BEFORE}memberships (person_id, segment, since_us, false_since_us, "
            "holdout) SELECT person_id, segment, since_us, false_since_us, holdout "
            "FROM memberships"
        )

    def snapshot_persons_of(self, person_ids: Sequence[str]) -> dict[str, PersonRow]:
        """These persons as the snapshot keeps them (absent: not a person then)."""
        return self._load_persons(person_ids, BEFORE)

    def snapshot_count(self) -> int:
        return int(self.conn.execute(f"SELECT COUNT(*) FROM {BEFORE}persons").fetchone()[0])

    def snapshot_gone(self, after: str | None, limit: int) -> list[str]:
        """Ids in the snapshot that are no longer persons, in order, a page at a time."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT b.person_id FROM {BEFORE}persons b WHERE b.person_id > {p} AND NOT EXISTS "
            "(SELECT 1 FROM persons p WHERE p.person_id = b.person_id) "
            f"ORDER BY b.person_id LIMIT {p}",
            (after or "", limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def drop_snapshot(self) -> None:
        for table in SNAPSHOT_TABLES:
            self.conn.execute(f"DELETE FROM {BEFORE}{table}")

    def reset_derived(self) -> None:
        """Forget what a replay rebuilds. The outbox stays: what destinations were (or are
        about to be) told is not derived data; the replay adds the net corrections."""
        for table in (*PERSON_TABLES, "person_aliases", "event_tickets"):
            if table != "outbox":
                self.conn.execute(f"DELETE FROM {table}")
        self.conn.execute("DELETE FROM meta WHERE key = 'clock'")

    # -- hooks: concurrency between processes (no-ops on SQLite: one writer at a time) ------
    locking = False  # True where other processes may write the same rows concurrently

    def lock(self, keys: Iterable[str]) -> None:
        """Hold these keys (identifiers, tickets, persons) until the transaction ends,
        waiting for other transactions that hold them."""

    def lock_row(self, key: str) -> None:
        """Hold ``key`` until the transaction ends, even where ``lock`` takes nothing because
        this process holds the whole store for its workers: for a row that those workers
        each read and rewrite (a replay's marker)."""

    def hold_store(self) -> None:
        """Wait for every other batch and tick, and keep them waiting until this transaction
        ends (a replay's first and last commits). SQLite: one writer at a time anyway."""

    def claim_due(self, due: list[tuple[datetime, str]]) -> list[tuple[datetime, str]]:
        """Of persons whose timers are due, those this transaction may work on now (the
        others are being worked on elsewhere and are skipped, not waited for)."""
        return due

    def setdefault_meta(self, key: str, value: str) -> str:
        """Store ``value`` unless the key exists; return what is stored (first writer wins)."""
        p = self.dialect.p
        self.conn.execute(
            f"INSERT INTO meta (key, value) VALUES ({p}, {p}) ON CONFLICT (key) DO NOTHING",
            (key, value),
        )
        return str(
            self.conn.execute(f"SELECT value FROM meta WHERE key = {p}", (key,)).fetchone()[0]
        )

    def advance_clock(self, until: datetime) -> None:
        """Move the engine clock to ``until`` unless it is already later (never back)."""
        d = self.dialect
        row = self.conn.execute(
            f"SELECT value FROM meta WHERE key = {d.p}{d.for_update}", (CLOCK_KEY,)
        ).fetchone()
        if row is None or codec.parse_time(str(row[0])) < until:
            self.set_meta(CLOCK_KEY, codec.format_time(until))
