"""What the alert rules beyond delivery read (portable SQL: SQLite and PostgreSQL): the match
rates platforms reported with the sync runs, segments' net change over a window, and when
Zendesk last sent an event. The port (``reader.watch``) runs in the caller's snapshot;
``WatchStore`` opens one per question."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from tactful.store.dbapi import Conn
from tactful.store.dialect import Dialect

if TYPE_CHECKING:
    from tactful.store.base import Store

# Events that did not come from Zendesk (the API's own events); every other source did
# (webhooks, API fetches, backfill, imports).
NOT_ZENDESK = ("api:events",)


class SqlWatch:
    """The watch port on one connection (a reader's snapshot)."""

    def __init__(self, conn: Conn, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def match_rates(
        self, since_us: int, destination: str | None = None
    ) -> dict[str, list[tuple[int, str]]]:
        """Per destination (or only ``destination``), the match rates (as the platform words
        them) of the platform readings kept with its runs started since ``since_us``, oldest
        first."""
        p = self.dialect.p
        only = "" if destination is None else f"AND destination = {p} "
        params = (since_us,) if destination is None else (since_us, destination)
        rows = self.conn.execute(
            "SELECT destination, started_us, platform FROM delivery_runs "
            f"WHERE started_us >= {p} {only}AND platform IS NOT NULL ORDER BY started_us, id",
            params,
        ).fetchall()
        out: dict[str, list[tuple[int, str]]] = {}
        for destination, started, platform in rows:
            rate = str(orjson.loads(bytes(platform)).get("match_rate") or "")
            if rate:
                out.setdefault(destination, []).append((int(started), rate))
        return out

    def last_zendesk_us(self) -> int | None:
        """When the latest event from Zendesk was received (µs), None before the first (the
        newest events first: it stops at the first from Zendesk)."""
        not_zendesk, values = self.dialect.not_among("source", NOT_ZENDESK)
        row = self.conn.execute(
            f"SELECT received_us FROM events WHERE {not_zendesk} ORDER BY seq DESC LIMIT 1",
            values,
        ).fetchone()
        return None if row is None else int(row[0])


class WatchStore:
    """The watch reads, each in a snapshot of its own."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def match_rates(
        self, since_us: int, destination: str | None = None
    ) -> dict[str, list[tuple[int, str]]]:
        with self.store.reader() as reader:
            return reader.watch.match_rates(since_us, destination)

    def segment_net(self, since_us: int) -> dict[str, int]:
        """Per segment, entries minus exits since ``since_us`` (holdout members included,
        as in the member counts)."""
        with self.store.reader() as reader:
            changes = reader.read_models.changes_since(since_us)
        out: dict[str, int] = {}
        for (segment, change), n in changes.items():
            sign = 1 if change == "entered" else -1 if change == "exited" else 0
            out[segment] = out.get(segment, 0) + sign * n
        return out

    def segment_members(self) -> dict[str, int]:
        """Per segment, its members now (holdout included)."""
        with self.store.reader() as reader:
            return {name: n for name, (n, _) in reader.segment_counts().items()}

    def last_zendesk_us(self) -> int | None:
        with self.store.reader() as reader:
            return reader.watch.last_zendesk_us()
