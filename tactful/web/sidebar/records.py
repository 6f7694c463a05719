"""SQL the sidebar needs: the person's latest deliveries with their last attempt, and the
``agent_actions`` log (migration 5), whose unique idempotency key makes double clicks
harmless."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tactful.store.base import Store


@dataclass(frozen=True)
class ActionRow:
    key: str
    status: str
    result: str


def _conn(handle: Any) -> Any:
    return handle.conn


@dataclass(frozen=True)
class SentChange:
    """One change sent (or owed) to a destination for a person, with its last attempt."""

    destination: str
    kind: str  # audience_add | audience_remove | profile | event | erase
    name: str
    segment: str
    status: str  # pending | done | skipped | failed | dead
    updated_us: int
    last_error: str
    http_status: int | None  # of the last attempt; None before any or without HTTP


def recent_changes(reader: Any, person_id: str, limit: int = 8) -> list[SentChange]:
    """The person's latest deliveries, newest first, each with its last attempt's HTTP
    status."""
    rows = (
        _conn(reader)
        .execute(
            "SELECT d.destination, d.kind, d.name, d.segment, d.status, d.updated_us, "
            "d.last_error, (SELECT a.status FROM delivery_attempts a WHERE a.delivery_id = d.id "
            "ORDER BY a.id DESC LIMIT 1) FROM deliveries d WHERE d.person_id = ? "
            "ORDER BY d.id DESC LIMIT ?",
            (person_id, limit),
        )
        .fetchall()
    )
    return [
        SentChange(r[0], r[1], r[2], r[3] or "", r[4], int(r[5]), r[6] or "", r[7]) for r in rows
    ]


def begin_action(
    store: Store,
    key: str,
    *,
    at_us: int,
    agent: str,
    account: str,
    person_id: str | None,
    email: str,
    action: str,
    params: dict[str, Any],
) -> ActionRow | None:
    """Claim ``key``: None when claimed now (go ahead), else the earlier row (do nothing)."""
    with store.transaction() as tx:
        conn = _conn(tx)
        cur = conn.execute(
            "INSERT INTO agent_actions (idempotency_key, at_us, agent, account, person_id, "
            "email, action, params, status, result, updated_us) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', '', ?) "
            "ON CONFLICT (idempotency_key) DO NOTHING",
            (key, at_us, agent, account, person_id, email, action, json.dumps(params), at_us),
        )
        if cur.rowcount == 1:
            return None
        row = conn.execute(
            "SELECT idempotency_key, status, result FROM agent_actions WHERE idempotency_key = ?",
            (key,),
        ).fetchone()
        return ActionRow(row[0], row[1], row[2])


def finish_action(store: Store, key: str, status: str, result: str, at_us: int) -> None:
    with store.transaction() as tx:
        _conn(tx).execute(
            "UPDATE agent_actions SET status = ?, result = ?, updated_us = ? "
            "WHERE idempotency_key = ?",
            (status, result, at_us, key),
        )


def actions_of(reader: Any, person_id: str, limit: int = 20) -> list[dict[str, Any]]:
    rows = (
        _conn(reader)
        .execute(
            "SELECT at_us, agent, action, params, status, result FROM agent_actions "
            "WHERE person_id = ? ORDER BY id DESC LIMIT ?",
            (person_id, limit),
        )
        .fetchall()
    )
    keys = ("at_us", "agent", "action", "params", "status", "result")
    return [dict(zip(keys, r, strict=True)) for r in rows]
