"""Erase a person from the store, keeping only a keyed proof that it was done.

The person's data is found by exact keys, never by matching text: the person id, the
person's ``identifiers`` rows, and the person's tickets. The person's events are those the
batches resolved to the person (``event_persons``) and those of the person's tickets
(``event_tickets``), including the erase request itself.

What goes: the person row, identifiers, the names of the person's Zendesk users
(``user_names``), tickets, memberships and their history, state changes, pending outbox rows
and deliveries (the ad-audience ledger stays until the removal is delivered; a delivered row
keeps no payload, its attempts no error text), the sidebar's agent actions about the person,
the person's events, and raw documents: a document that only held the person's events (or a
kept webhook body of one of the person's tickets) is deleted; a shared one (an export page,
an API request with other persons' items) has the person's records dropped and every raw
form of the person's identifiers replaced
(``tactful.store.redact``). What stays: one ``erasures`` row with when, who asked, an
HMAC-SHA256 of the identifiers keyed with the store's own secret (meta ``erasure_key``), so
"was X erased?" can be answered by whoever holds the store, without keeping X and without
letting a copy of the table be checked against a list of addresses, and the counts. For
``ERASED_KEYS_KEPT_US`` (a week) each identifier and ticket of the person is also kept, keyed
the same way, in ``erased_keys``: a webhook about the person acknowledged before the erasure
and still waiting in the inbox (during a replay) is then not applied (``Engine``).

The store adapter makes sure the deleted bytes do not linger (SQLite: ``secure_delete`` and
a truncating WAL checkpoint after the transaction; see docs/privacy.md for PostgreSQL).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tactful.clock import now_us
from tactful.store.dbapi import Conn, chunks
from tactful.store.dialect import Dialect
from tactful.store.migrations import PERSON_TABLES, REPLAY_SNAPSHOT_TABLES
from tactful.store.redact import Erased, redact

SECRET_KEY = "erasure_key"
# How long an erased person's keyed identifiers stay in ``erased_keys``: longer than a request
# acknowledged before the erasure can wait in the inbox (a replay, a server stopped after it).
ERASED_KEYS_KEPT_US = 7 * 24 * 3600 * 1_000_000
UNPARSED_TICKET = "webhook:unparsed:ticket:"


@dataclass(frozen=True, slots=True)
class ErasureReport:
    person_id: str
    identifiers: list[tuple[str, str]]
    events_deleted: int
    documents_deleted: int
    documents_redacted: int


def identifiers_proof(secret: str, identifiers: Sequence[tuple[str, str]]) -> str:
    """``hmac-sha256:`` + the keyed digest of the person's identifiers (sorted)."""
    text = "\n".join(f"{k}:{v}" for k, v in sorted(identifiers))
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()
    return f"hmac-sha256:{digest}"


def key_digest(secret: str, kind: str, value: str) -> str:
    """One identifier (or ``("ticket", id)``, ``("person_id", id)``) keyed with the store's
    erasure secret: what ``erased_keys`` keeps, never the identifier itself."""
    return hmac.new(secret.encode(), f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def erased_after(
    conn: Conn, d: Dialect, keys: Iterable[tuple[str, str]], after_us: int
) -> set[tuple[str, str]]:
    """Of ``keys``, those of a person erased after ``after_us`` (``erased_keys``)."""
    row = conn.execute(f"SELECT value FROM meta WHERE key = {d.p}", (SECRET_KEY,)).fetchone()
    if row is None:  # nobody was ever erased here
        return set()
    by_digest = {key_digest(str(row[0]), kind, value): (kind, value) for kind, value in keys}
    found = _in(
        conn,
        d,
        f"SELECT digest FROM erased_keys WHERE erased_us > {d.p} AND",
        "digest",
        sorted(by_digest),
        after_us,
    )
    return {by_digest[str(digest)] for (digest,) in found}


def forget_erased_keys(conn: Conn, d: Dialect, before_us: int) -> None:
    """Drop the erased keys recorded before ``before_us`` (no request that old waits)."""
    conn.execute(f"DELETE FROM erased_keys WHERE erased_us < {d.p}", (before_us,))


def _remember(conn: Conn, d: Dialect, keys: Iterable[tuple[str, str]], erased_us: int) -> None:
    forget_erased_keys(conn, d, erased_us - ERASED_KEYS_KEPT_US)
    secret = store_secret(conn, d)
    conn.executemany(
        f"INSERT INTO erased_keys (digest, erased_us) VALUES ({d.p}, {d.p}) "
        "ON CONFLICT (digest) DO UPDATE SET erased_us = excluded.erased_us",
        [(key_digest(secret, kind, value), erased_us) for kind, value in sorted(set(keys))],
    )


def store_secret(conn: Conn, d: Dialect) -> str:
    """The store's erasure secret, created on first use (the first writer's wins)."""
    conn.execute(
        f"INSERT INTO meta (key, value) VALUES ({d.p}, {d.p}) ON CONFLICT (key) DO NOTHING",
        (SECRET_KEY, secrets.token_hex(32)),
    )
    row = conn.execute(f"SELECT value FROM meta WHERE key = {d.p}", (SECRET_KEY,)).fetchone()
    return str(row[0])


def _in(
    conn: Conn, d: Dialect, head: str, column: str, values: Sequence[object], *params: object
) -> list[Any]:
    """Rows of ``head`` and "``column`` is one of ``values``", for all values, in chunks."""
    rows: list[Any] = []
    for chunk in chunks(values):
        among, args = d.among(column, chunk)
        rows += conn.execute(f"{head} {among}", (*params, *args)).fetchall()
    return rows


def _run_in(conn: Conn, d: Dialect, head: str, column: str, values: Sequence[object]) -> int:
    """Rows that ``head`` and "``column`` is one of ``values``" changed, in chunks."""
    count = 0
    for chunk in chunks(values):
        among, args = d.among(column, chunk)
        count += max(conn.execute(f"{head} {among}", args).rowcount, 0)
    return count


def _events(conn: Conn, d: Dialect, person_id: str, ticket_ids: Sequence[int]) -> list[str]:
    keys = {
        str(k)
        for (k,) in conn.execute(
            f"SELECT event_key FROM event_persons WHERE person_id = {d.p}", (person_id,)
        )
    }
    keys.update(
        str(k)
        for (k,) in _in(
            conn, d, "SELECT event_key FROM event_tickets WHERE", "ticket_id", ticket_ids
        )
    )
    return sorted(keys)


def _documents(
    conn: Conn, d: Dialect, doc_ids: Iterable[int], ticket_ids: Sequence[int], erased: Erased
) -> tuple[int, int]:
    p = d.p
    deleted = _run_in(
        conn,
        d,
        "DELETE FROM documents WHERE",
        "source",
        [f"{UNPARSED_TICKET}{t}" for t in ticket_ids],
    )
    redacted = 0
    for doc in sorted(set(doc_ids)):
        still_used = conn.execute(
            f"SELECT 1 FROM events WHERE document_id = {p} LIMIT 1", (doc,)
        ).fetchone()
        if still_used is None:
            deleted += conn.execute(f"DELETE FROM documents WHERE id = {p}", (doc,)).rowcount
            continue
        row = conn.execute(
            f"SELECT encoding, body FROM documents WHERE id = {p}", (doc,)
        ).fetchone()
        if row is None:
            continue
        body = zlib.decompress(row[1]) if row[0] == "zlib" else bytes(row[1])
        try:
            kept = orjson.dumps(redact(orjson.loads(body), erased))
        except orjson.JSONDecodeError:  # not JSON (never stored by Tactful's edges): drop it
            conn.execute(f"UPDATE events SET document_id = NULL WHERE document_id = {p}", (doc,))
            deleted += conn.execute(f"DELETE FROM documents WHERE id = {p}", (doc,)).rowcount
            continue
        conn.execute(
            f"UPDATE documents SET body = {p}, encoding = 'zlib', sha256 = {p} WHERE id = {p}",
            (zlib.compress(kept, 1), f"redacted:{doc}", doc),
        )
        redacted += 1
    return deleted, redacted


def erase(
    conn: Conn,
    d: Dialect,
    person_id: str,
    at_us: int,
    requested_by: str,
    ticket_ids: Iterable[int] = (),
) -> ErasureReport:
    """Erase ``person_id``. ``ticket_ids``: tickets of the person not stored yet (this
    batch's), besides those the ``tickets`` table gives the person."""
    p = d.p
    idents = [
        (str(k), str(v))
        for k, v in conn.execute(
            f"SELECT kind, value FROM identifiers WHERE person_id = {p}", (person_id,)
        )
    ]
    users = sorted({int(v) for k, v in idents if k == "zendesk_user_id" and v.isdigit()})
    named = "SELECT name FROM user_names WHERE"
    names = [("name", str(n)) for (n,) in _in(conn, d, named, "zendesk_user_id", users)]
    _run_in(conn, d, "DELETE FROM user_names WHERE", "zendesk_user_id", users)
    tickets = {
        int(t)
        for (t,) in conn.execute(
            f"SELECT ticket_id FROM tickets WHERE person_id = {p}", (person_id,)
        )
    }
    tickets.update(ticket_ids)
    ticket_list = sorted(tickets)
    keys = _events(conn, d, person_id, ticket_list)
    doc_ids = [
        int(doc)
        for (doc,) in _in(conn, d, "SELECT document_id FROM events WHERE", "key", keys)
        if doc is not None
    ]
    deleted = _run_in(conn, d, "DELETE FROM events WHERE", "key", keys)
    _run_in(conn, d, "DELETE FROM event_tickets WHERE", "ticket_id", ticket_list)
    docs_deleted, docs_redacted = _documents(
        conn,
        d,
        doc_ids,
        ticket_list,
        Erased.of([*idents, *names, ("person_id", person_id)], ticket_list),
    )
    for table in (*PERSON_TABLES, *REPLAY_SNAPSHOT_TABLES):
        conn.execute(f"DELETE FROM {table} WHERE person_id = {p}", (person_id,))
    conn.execute(
        f"DELETE FROM person_aliases WHERE person_id = {p} OR old_id = {p}",
        (person_id, person_id),
    )
    erased_us = now_us()
    _remember(
        conn,
        d,
        [*idents, ("person_id", person_id), *(("ticket", str(t)) for t in ticket_list)],
        erased_us,
    )
    emails = [v for k, v in idents if k == "email"]
    conn.execute(f"DELETE FROM agent_actions WHERE person_id = {p}", (person_id,))
    _run_in(conn, d, "DELETE FROM agent_actions WHERE", "lower(email)", emails)
    conn.execute(f"DELETE FROM deliveries WHERE person_id = {p} AND status != 'done'", (person_id,))
    conn.execute(
        "UPDATE delivery_attempts SET error = '' WHERE delivery_id IN "
        f"(SELECT id FROM deliveries WHERE person_id = {p})",
        (person_id,),
    )
    conn.execute(
        f"UPDATE deliveries SET payload = {p}, last_error = '' WHERE person_id = {p}",
        (b"{}", person_id),
    )
    conn.execute(
        "INSERT INTO erasures (person_id, at_us, erased_us, identifiers_proof, requested_by, "
        f"events_deleted, documents_deleted, documents_redacted) VALUES ({d.marks(8)})",
        (
            person_id,
            at_us,
            erased_us,
            identifiers_proof(store_secret(conn, d), idents),
            requested_by,
            deleted,
            docs_deleted,
            docs_redacted,
        ),
    )
    return ErasureReport(person_id, idents, deleted, docs_deleted, docs_redacted)
