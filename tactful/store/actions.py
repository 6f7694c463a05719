"""The sidebar's ``agent_actions`` log (migration 5), reached through ``tx.actions`` /
``reader.actions``: its unique idempotency key makes double clicks harmless."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tactful.store.dbapi import Conn


@dataclass(frozen=True)
class ActionRow:
    key: str
    status: str
    result: str


@dataclass(frozen=True)
class NewAction:
    key: str
    at_us: int
    agent: str
    account: str
    person_id: str | None
    email: str
    action: str
    params: dict[str, Any]


_KEYS = ("at_us", "agent", "action", "params", "status", "result")


class SqlActions:
    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def begin(self, new: NewAction) -> ActionRow | None:
        """Claim ``new.key``: None when claimed now (go ahead), else the earlier row."""
        cur = self.conn.execute(
            "INSERT INTO agent_actions (idempotency_key, at_us, agent, account, person_id, "
            "email, action, params, status, result, updated_us) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', '', ?) "
            "ON CONFLICT (idempotency_key) DO NOTHING",
            (
                new.key,
                new.at_us,
                new.agent,
                new.account,
                new.person_id,
                new.email,
                new.action,
                json.dumps(new.params),
                new.at_us,
            ),
        )
        if cur.rowcount == 1:
            return None
        row = self.conn.execute(
            "SELECT idempotency_key, status, result FROM agent_actions WHERE idempotency_key = ?",
            (new.key,),
        ).fetchone()
        return ActionRow(row[0], row[1], row[2])

    def finish(self, key: str, status: str, result: str, at_us: int) -> None:
        self.conn.execute(
            "UPDATE agent_actions SET status = ?, result = ?, updated_us = ? "
            "WHERE idempotency_key = ?",
            (status, result, at_us, key),
        )

    def of_person(self, person_id: str, limit: int) -> list[dict[str, Any]]:
        """The person's latest actions, newest first: at_us, agent, action, params (JSON
        text), status, result."""
        rows = self.conn.execute(
            "SELECT at_us, agent, action, params, status, result FROM agent_actions "
            "WHERE person_id = ? ORDER BY id DESC LIMIT ?",
            (person_id, limit),
        ).fetchall()
        return [dict(zip(_KEYS, r, strict=True)) for r in rows]
