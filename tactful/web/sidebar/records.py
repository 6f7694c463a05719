"""The ``agent_actions`` log of the sidebar (migration 5), whose unique idempotency key makes
double clicks harmless (what the tools were told is a store port: ``store.pages``)."""

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
    retry_failed: bool = False,
) -> ActionRow | None:
    """Claim ``key``: None when claimed now (go ahead), else the earlier row (do nothing).
    ``retry_failed``: an earlier row that ``failed`` is claimed again (a refusal changed
    nothing, so trying again cannot do it twice)."""
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
        if retry_failed:
            again = conn.execute(
                "UPDATE agent_actions SET status = 'running', agent = ?, at_us = ?, "
                "updated_us = ? WHERE idempotency_key = ? AND status = 'failed'",
                (agent, at_us, at_us, key),
            )
            if again.rowcount == 1:
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
            "SELECT at_us, agent, action, params, status, result, id FROM agent_actions "
            "WHERE person_id = ? ORDER BY id DESC LIMIT ?",
            (person_id, limit),
        )
        .fetchall()
    )
    keys = ("at_us", "agent", "action", "params", "status", "result", "id")
    return [dict(zip(keys, r, strict=True)) for r in rows]


def action_by_id(store: Store, action_id: int) -> dict[str, Any] | None:
    with store.reader() as reader:
        row = (
            _conn(reader)
            .execute(
                "SELECT id, at_us, account, person_id, action, status, result "
                "FROM agent_actions WHERE id = ?",
                (action_id,),
            )
            .fetchone()
        )
    keys = ("id", "at_us", "account", "person_id", "action", "status", "result")
    return None if row is None else dict(zip(keys, row, strict=True))


def notes_of(reader: Any, person_id: str) -> dict[int, str]:
    """Action id → the status of its private note (done, running, unconfirmed, failed)."""
    rows = (
        _conn(reader)
        .execute(
            "SELECT params, status FROM agent_actions WHERE person_id = ? AND action = 'note'",
            (person_id,),
        )
        .fetchall()
    )
    return {int(json.loads(params)["of"]): status for params, status in rows}
