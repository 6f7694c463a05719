"""Store ports of the pages (portable SQL; ``SqlQueries`` mixes ``PagesQueries`` in,
``Reader`` declares ``PagesReads`` and ``Tx`` ``PagesWrites``):

- the agent sidebar's proof: what each destination was told about a person, with the last
  attempt and what the platform itself said about the sync run that carried it;
- Zendesk user names (migration 12, ``user_names``): kept from ``UserSeen.name``, the latest
  per user; the dashboard finds people by them and shows them beside the identifier;
- the sidebar's ``agent_actions`` log (migration 5), whose unique idempotency key makes a
  double click act once.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from tactful.store.dbapi import Conn
from tactful.store.dialect import Dialect, contains_pattern


@dataclass(frozen=True, slots=True)
class RunAnswer:
    """What the platform said about the sync run that carried a change: the rows it says it
    received and found invalid (None: it did not say), and how many rows the run sent."""

    received: int | None
    invalid: int | None
    sent: int


@dataclass(frozen=True, slots=True)
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
    attempt_us: int | None = None  # when the last attempt was made
    answer: RunAnswer | None = None  # the platform's own answer about that attempt's run
    at_us: int = 0  # the change's time on the engine clock (``updated_us`` is the wall's)


@dataclass(frozen=True, slots=True)
class ActionRow:
    """An agent action claimed earlier: its key, status and what it said."""

    key: str
    status: str
    result: str


@dataclass(frozen=True, slots=True)
class Claim:
    """What an agent action records when it is claimed."""

    key: str
    at_us: int
    agent: str
    account: str
    person_id: str | None
    email: str
    action: str
    params: dict[str, Any]


_ACTION_KEYS = ("at_us", "agent", "action", "params", "status", "result", "id")
_BY_ID_KEYS = ("id", "at_us", "account", "person_id", "action", "status", "result")


class PagesReads(Protocol):
    def sent_changes(
        self, person_id: str, limit: int = 8, since_us: int | None = None
    ) -> list[SentChange]: ...
    def persons_named(self, text: str, limit: int = 1000) -> list[str]: ...
    def names_of(self, person_ids: Sequence[str]) -> dict[str, list[str]]: ...
    def actions_of(self, person_id: str, limit: int = 20) -> list[dict[str, Any]]: ...
    def action_by_id(self, action_id: int) -> dict[str, Any] | None: ...
    def notes_of(self, person_id: str) -> dict[int, str]: ...


class PagesWrites(Protocol):
    def save_user_names(self, rows: Iterable[tuple[int, str, int]]) -> None: ...
    def claim_action(self, claim: Claim, *, retry_failed: bool = False) -> ActionRow | None: ...
    def finish_action(self, key: str, status: str, result: str, at_us: int) -> None: ...


def fold(name: str) -> str:
    """A name as searches compare it: case-folded (any script), spaces collapsed."""
    return re.sub(r"\s+", " ", name).strip().casefold()


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _answer(platform: Any, sent: Any) -> RunAnswer | None:
    if platform is None:
        return None
    data = orjson.loads(bytes(platform))
    if not isinstance(data, dict):
        return None
    received, invalid = _count(data.get("received")), _count(data.get("invalid"))
    if received is None and invalid is None:
        return None
    return RunAnswer(received, invalid, int(sent or 0))


class PagesQueries:
    conn: Conn
    dialect: Dialect

    def sent_changes(
        self, person_id: str, limit: int = 8, since_us: int | None = None
    ) -> list[SentChange]:
        """The person's latest deliveries, newest first (of changes at or after ``since_us``
        on the engine clock, when given), each with its last attempt and that attempt's sync
        run's answer."""
        p = self.dialect.p
        since = "" if since_us is None else f"AND d.at_us >= {p} "
        rows = self.conn.execute(
            "SELECT d.destination, d.kind, d.name, d.segment, d.status, d.updated_us, "
            "d.last_error, a.status, a.at_us, r.platform, "
            "r.added + r.removed + r.updated + r.events + r.rejected, d.at_us "
            "FROM deliveries d "
            "LEFT JOIN delivery_attempts a ON a.id = "
            "(SELECT MAX(x.id) FROM delivery_attempts x WHERE x.delivery_id = d.id) "
            "LEFT JOIN delivery_runs r ON r.id = a.run_id "
            f"WHERE d.person_id = {p} {since}ORDER BY d.id DESC LIMIT {p}",
            (person_id, *(() if since_us is None else (since_us,)), limit),
        ).fetchall()
        return [
            SentChange(
                r[0],
                r[1],
                r[2],
                r[3] or "",
                r[4],
                int(r[5]),
                r[6] or "",
                r[7],
                None if r[8] is None else int(r[8]),
                _answer(r[9], r[10]),
                int(r[11]),
            )
            for r in rows
        ]

    def save_user_names(self, rows: Iterable[tuple[int, str, int]]) -> None:
        """(Zendesk user id, name, at_us): the latest name of each user wins, whatever the
        order the events come in."""
        self.conn.executemany(
            "INSERT INTO user_names (zendesk_user_id, name, folded, at_us) "
            f"VALUES ({self.dialect.marks(4)}) "
            "ON CONFLICT (zendesk_user_id) DO UPDATE SET name = excluded.name, "
            "folded = excluded.folded, at_us = excluded.at_us "
            "WHERE excluded.at_us >= user_names.at_us",
            [(user_id, name, fold(name), at_us) for user_id, name, at_us in rows],
        )

    def persons_named(self, text: str, limit: int = 1000) -> list[str]:
        """Persons one of whose Zendesk users' names contains ``text`` (case-insensitive,
        spaces collapsed)."""
        p = self.dialect.p
        needle = fold(text)
        if not needle:
            return []
        rows = self.conn.execute(
            "SELECT DISTINCT i.person_id FROM user_names n JOIN identifiers i "
            "ON i.kind = 'zendesk_user_id' AND i.value = CAST(n.zendesk_user_id AS TEXT) "
            f"WHERE n.folded LIKE {p} ESCAPE '\\' ORDER BY i.person_id LIMIT {p}",
            (contains_pattern(needle), limit),
        ).fetchall()
        return [r[0] for r in rows]

    def names_of(self, person_ids: Sequence[str]) -> dict[str, list[str]]:
        """The names of each person's Zendesk users, newest first."""
        out: dict[str, list[str]] = {pid: [] for pid in person_ids}
        if not person_ids:
            return out
        among, values = self.dialect.among("i.person_id", person_ids)
        rows = self.conn.execute(
            "SELECT i.person_id, n.name FROM identifiers i JOIN user_names n "
            "ON n.zendesk_user_id = CAST(i.value AS BIGINT) "
            f"WHERE i.kind = 'zendesk_user_id' AND {among} "
            "ORDER BY n.at_us DESC",
            values,
        ).fetchall()
        for pid, name in rows:
            if name not in out[pid]:
                out[pid].append(name)
        return out

    # -- the sidebar's agent actions ---------------------------------------------------------
    def claim_action(self, claim: Claim, *, retry_failed: bool = False) -> ActionRow | None:
        """Claim ``claim.key``: None when claimed now (go ahead), else the earlier row (do
        nothing). ``retry_failed``: an earlier row that ``failed`` is claimed again (a refusal
        changed nothing, so trying again cannot do it twice)."""
        p = self.dialect.p
        c = claim
        cur = self.conn.execute(
            "INSERT INTO agent_actions (idempotency_key, at_us, agent, account, person_id, "
            "email, action, params, status, result, updated_us) "
            f"VALUES ({self.dialect.marks(8)}, 'running', '', {p}) "
            "ON CONFLICT (idempotency_key) DO NOTHING",
            (c.key, c.at_us, c.agent, c.account, c.person_id, c.email, c.action,
             json.dumps(c.params), c.at_us),
        )  # fmt: skip
        if cur.rowcount == 1:
            return None
        if retry_failed:
            again = self.conn.execute(
                f"UPDATE agent_actions SET status = 'running', agent = {p}, at_us = {p}, "
                f"updated_us = {p} WHERE idempotency_key = {p} AND status = 'failed'",
                (c.agent, c.at_us, c.at_us, c.key),
            )
            if again.rowcount == 1:
                return None
        row = self.conn.execute(
            "SELECT idempotency_key, status, result FROM agent_actions "
            f"WHERE idempotency_key = {p}",
            (c.key,),
        ).fetchone()
        return ActionRow(row[0], row[1], row[2])

    def finish_action(self, key: str, status: str, result: str, at_us: int) -> None:
        p = self.dialect.p
        self.conn.execute(
            f"UPDATE agent_actions SET status = {p}, result = {p}, updated_us = {p} "
            f"WHERE idempotency_key = {p}",
            (status, result, at_us, key),
        )

    def actions_of(self, person_id: str, limit: int = 20) -> list[dict[str, Any]]:
        """The person's agent actions, newest first."""
        p = self.dialect.p
        rows = self.conn.execute(
            "SELECT at_us, agent, action, params, status, result, id FROM agent_actions "
            f"WHERE person_id = {p} ORDER BY id DESC LIMIT {p}",
            (person_id, limit),
        ).fetchall()
        return [dict(zip(_ACTION_KEYS, r, strict=True)) for r in rows]

    def action_by_id(self, action_id: int) -> dict[str, Any] | None:
        p = self.dialect.p
        row = self.conn.execute(
            "SELECT id, at_us, account, person_id, action, status, result "
            f"FROM agent_actions WHERE id = {p}",
            (action_id,),
        ).fetchone()
        return None if row is None else dict(zip(_BY_ID_KEYS, row, strict=True))

    def notes_of(self, person_id: str) -> dict[int, str]:
        """Action id → the status of its private note (done, running, unconfirmed, failed)."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT params, status FROM agent_actions WHERE person_id = {p} AND action = 'note'",
            (person_id,),
        ).fetchall()
        return {int(json.loads(params)["of"]): status for params, status in rows}
