"""Store ports of the agent sidebar's proof: what each destination was told about a person,
with the last attempt and what the platform itself said about the sync run that carried it
(portable SQL; ``SqlQueries`` mixes ``PagesQueries`` in, ``Reader`` declares
``PagesReads``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import orjson


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


class PagesReads(Protocol):
    def sent_changes(
        self, person_id: str, limit: int = 8, since_us: int | None = None
    ) -> list[SentChange]: ...


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
    conn: Any  # Conn

    def sent_changes(
        self, person_id: str, limit: int = 8, since_us: int | None = None
    ) -> list[SentChange]:
        """The person's latest deliveries, newest first (changed at or after ``since_us``,
        when given), each with its last attempt and that attempt's sync run's answer."""
        since = "" if since_us is None else "AND d.updated_us >= ? "
        rows = self.conn.execute(
            "SELECT d.destination, d.kind, d.name, d.segment, d.status, d.updated_us, "
            "d.last_error, a.status, a.at_us, r.platform, "
            "r.added + r.removed + r.updated + r.events + r.rejected "
            "FROM deliveries d "
            "LEFT JOIN delivery_attempts a ON a.id = "
            "(SELECT MAX(x.id) FROM delivery_attempts x WHERE x.delivery_id = d.id) "
            "LEFT JOIN delivery_runs r ON r.id = a.run_id "
            f"WHERE d.person_id = ? {since}ORDER BY d.id DESC LIMIT ?",
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
            )
            for r in rows
        ]
