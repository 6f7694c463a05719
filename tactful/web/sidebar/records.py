"""SQL the sidebar needs: the latest delivery per destination for a person, and the
``agent_actions`` log (migration 5), whose unique idempotency key makes double clicks
harmless."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tactful.store.base import Store


@dataclass(frozen=True)
class LatestDelivery:
    destination: str
    kind: str
    name: str
    status: str
    updated_us: int
    last_error: str
    segment: str = ""


@dataclass(frozen=True)
class ActionRow:
    key: str
    status: str
    result: str


def _conn(handle: Any) -> Any:
    return handle.conn


def latest_deliveries(reader: Any, person_id: str) -> dict[str, LatestDelivery]:
    rows = (
        _conn(reader)
        .execute(
            "SELECT d.destination, d.kind, d.name, d.status, d.updated_us, d.last_error, d.segment "
            "FROM deliveries d JOIN (SELECT destination, MAX(id) AS id FROM deliveries "
            "WHERE person_id = ? GROUP BY destination) m ON d.id = m.id",
            (person_id,),
        )
        .fetchall()
    )
    return {
        r[0]: LatestDelivery(r[0], r[1], r[2], r[3], int(r[4]), r[5] or "", r[6] or "")
        for r in rows
    }


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
