"""Erase a person from the store, keeping only a proof that it was done.

What goes: the person row, identifiers, tickets, memberships and their history, state
changes, timers, pending outbox rows and deliveries (the ad-audience ledger stays until the
removal is delivered), the person's canonical events in the log, and raw documents: a
document that only held the person's events is deleted, a shared one (an export page) has the
person's identifier strings redacted. What stays: one ``erasures`` row with when, who asked,
a SHA-256 of the identifiers (to answer "was X erased?" without keeping X) and the counts.

Known limit: a shared raw document may still hold the person's name or free text (Zendesk
user names, ticket subjects) — only the identifiers Tactful knows are redacted there.
"""

from __future__ import annotations

import hashlib
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from tactful.store.migrations import PERSON_TABLES

REDACTED = "[erased]"


@dataclass(frozen=True, slots=True)
class ErasureReport:
    person_id: str
    identifiers: list[tuple[str, str]]
    events_deleted: int
    documents_deleted: int
    documents_redacted: int


def identifiers_digest(identifiers: Sequence[tuple[str, str]]) -> str:
    text = "\n".join(f"{k}:{v}" for k, v in sorted(identifiers))
    return hashlib.sha256(text.encode()).hexdigest()


def _event_patterns(identifiers: Sequence[tuple[str, str]]) -> list[str]:
    """LIKE patterns that find the person's canonical events (orjson of the dataclasses)."""
    patterns = []
    for kind, value in identifiers:
        quoted = orjson.dumps(value).decode()
        if kind == "zendesk_user_id":
            patterns += [
                f'%"requester_id":{value},%',
                f'%"zendesk_user_id":{value},%',
                f'%"source_user_id":{value},%',
                f'%"target_user_id":{value}}}%',
            ]
        patterns.append(f'%"kind":"{kind}","value":{quoted}%')
        if kind != "zendesk_user_id":
            patterns.append(f"%{quoted}%")
    return patterns


def erase(
    conn: Any, person_id: str, at_us: int, requested_by: str, *, dialect: str = "sqlite"
) -> ErasureReport:
    idents = [
        (str(k), str(v))
        for k, v in conn.execute(
            "SELECT kind, value FROM identifiers WHERE person_id = ?", (person_id,)
        )
    ]
    doc_ids: set[int] = set()
    deleted = 0
    as_text = (
        "convert_from(canonical, 'UTF8')" if dialect == "postgresql" else "CAST(canonical AS TEXT)"
    )
    for pattern in _event_patterns(idents):
        rows = conn.execute(
            f"SELECT seq, document_id FROM events WHERE {as_text} LIKE ?", (pattern,)
        ).fetchall()
        for seq, doc in rows:
            if doc is not None:
                doc_ids.add(int(doc))
            deleted += conn.execute("DELETE FROM events WHERE seq = ?", (seq,)).rowcount
    docs_deleted = docs_redacted = 0
    strings = [v for k, v in idents if k != "zendesk_user_id"]
    for doc in sorted(doc_ids):
        still_used = conn.execute(
            "SELECT 1 FROM events WHERE document_id = ? LIMIT 1", (doc,)
        ).fetchone()
        if still_used is None:
            docs_deleted += conn.execute("DELETE FROM documents WHERE id = ?", (doc,)).rowcount
            continue
        row = conn.execute("SELECT encoding, body FROM documents WHERE id = ?", (doc,)).fetchone()
        if row is None:
            continue
        body = zlib.decompress(row[1]) if row[0] == "zlib" else bytes(row[1])
        for value in strings:
            body = body.replace(value.encode(), REDACTED.encode())
        conn.execute(
            "UPDATE documents SET body = ?, encoding = 'zlib', sha256 = ? WHERE id = ?",
            (zlib.compress(body, 1), f"redacted:{doc}", doc),
        )
        docs_redacted += 1
    for table in PERSON_TABLES:
        conn.execute(f"DELETE FROM {table} WHERE person_id = ?", (person_id,))
    conn.execute(
        "DELETE FROM person_aliases WHERE person_id = ? OR old_id = ?", (person_id, person_id)
    )
    conn.execute("DELETE FROM deliveries WHERE person_id = ? AND status != 'done'", (person_id,))
    conn.execute("UPDATE deliveries SET payload = ? WHERE person_id = ?", (b"{}", person_id))
    conn.execute(
        "INSERT INTO erasures (person_id, at_us, erased_us, identifiers_sha256, requested_by, "
        "events_deleted, documents_deleted, documents_redacted) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            person_id,
            at_us,
            time.time_ns() // 1000,
            identifiers_digest(idents),
            requested_by,
            deleted,
            docs_deleted,
            docs_redacted,
        ),
    )
    return ErasureReport(person_id, idents, deleted, docs_deleted, docs_redacted)
