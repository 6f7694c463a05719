"""Sync runs: every delivery round of each destination (portable SQL: SQLite and PostgreSQL).

A run is opened when a round of a destination finds something to do, and closed with its
counts and the platform's own answer. The attempts it made carry its id, so its row-level
errors are its failed attempts, with the person each concerns. Runs older than
``[delivery] runs_keep`` are deleted as new ones are recorded. The port (``tx.runs``,
``reader.runs``) works in the caller's transaction or snapshot; ``RunStore`` opens one for
each call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

import orjson

from tactful.core.platform import PlatformReport
from tactful.store.dbapi import Conn
from tactful.store.dialect import Dialect

if TYPE_CHECKING:
    from tactful.store.base import Store

MAX_PAGE = 500
MAX_ROW_ERRORS = 1000  # row-level errors read with one page of runs (newest runs first)


@dataclass
class RunCounts:
    """What a run did: delivered by kind, rejected (dead-lettered by the platform's answer),
    retried, dead (aged out), and skipped by why (never sent)."""

    added: int = 0  # audience adds
    removed: int = 0  # audience removals and erasures
    updated: int = 0  # profiles and unsubscribes
    events: int = 0
    rejected: int = 0
    retried: int = 0
    dead: int = 0
    skipped_no_identifier: int = 0
    skipped_no_consent: int = 0
    skipped_holdout: int = 0
    skipped_other: int = 0  # nothing to do there (a removal of someone Tactful never added)

    @property
    def skipped(self) -> int:
        return (
            self.skipped_no_identifier
            + self.skipped_no_consent
            + self.skipped_holdout
            + self.skipped_other
        )

    def any(self) -> bool:
        return any(getattr(self, f.name) for f in fields(self))

    @property
    def delivered(self) -> int:
        return self.added + self.removed + self.updated + self.events


_COUNTS = tuple(f.name for f in fields(RunCounts))
_COLUMNS = "id, destination, started_us, duration_us, " + ", ".join(_COUNTS) + ", error, platform"


@dataclass(frozen=True)
class Run:
    id: int
    destination: str
    started_us: int
    duration_us: int
    counts: RunCounts
    error: str
    platform: PlatformReport | None  # None: the destination gives no answer of its own


@dataclass(frozen=True)
class RowError:
    """A failed attempt of a run: the delivery, the person it concerns, and why."""

    run_id: int
    delivery_id: int
    person_id: str
    kind: str
    at_us: int
    outcome: str  # reject | retry
    status: int | None
    error: str


@dataclass
class RunPage:
    runs: list[Run]
    next_before: int | None  # the ``before`` of the next (older) page, if any
    errors: dict[int, list[RowError]] = field(default_factory=dict)


@dataclass(frozen=True)
class Volume:
    """What a destination's runs did in one time bucket."""

    bucket: int  # started_us // bucket_us
    delivered: int
    failed: int  # rejected + retried + dead


@dataclass(frozen=True)
class PersonDelivery:
    """One delivery about a person, with the platform's answer of its latest attempt's run."""

    id: int
    destination: str
    kind: str
    name: str
    segment: str | None
    status: str  # pending | done | dead | skipped
    attempts: int
    created_us: int
    updated_us: int
    last_error: str
    platform: PlatformReport | None


def _platform(raw: Any) -> PlatformReport | None:
    if raw is None:
        return None
    data = orjson.loads(bytes(raw))
    return PlatformReport(
        data.get("received"),
        data.get("invalid"),
        str(data.get("status", "")),
        tuple(str(d) for d in data.get("diagnostics", ())),
        data.get("audience_lower"),
        data.get("audience_upper"),
        str(data.get("match_rate", "")),
    )


def _person_delivery(r: Sequence[Any]) -> PersonDelivery:
    ident, destination, kind, name, segment, status = r[0], r[1], r[2], r[3], r[4], r[5]
    attempts, created, updated, error, platform = r[6], r[7], r[8], r[9], r[10]
    return PersonDelivery(
        int(ident), destination, kind, name, segment, status, int(attempts), int(created),
        int(updated or created), error, _platform(platform),
    )  # fmt: skip


def _run(r: Sequence[Any]) -> Run:
    counts = RunCounts(*(int(v) for v in r[4 : 4 + len(_COUNTS)]))
    rest = r[4 + len(_COUNTS) :]
    return Run(int(r[0]), r[1], int(r[2]), int(r[3]), counts, rest[0], _platform(rest[1]))


class SqlRuns:
    """The sync-run port on one connection (``tx.runs``, ``reader.runs``: inside the
    caller's transaction or snapshot)."""

    def __init__(self, conn: Conn, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    def open(self, destination: str, started_us: int) -> int:
        """A new run of ``destination``; its id (attempts made during it carry it)."""
        p = self.dialect.p
        row = self.conn.execute(
            "INSERT INTO delivery_runs (destination, started_us, duration_us) "
            f"VALUES ({p}, {p}, 0) RETURNING id",
            (destination, started_us),
        ).fetchone()
        return int(row[0])

    def close(
        self,
        run_id: int,
        duration_us: int,
        counts: RunCounts,
        error: str,
        platform: PlatformReport | None,
        keep_after_us: int | None = None,
    ) -> None:
        """Record what the run did; delete the runs started before ``keep_after_us``."""
        p = self.dialect.p
        sets = ", ".join(f"{name} = {p}" for name in _COUNTS)
        answer = None if platform is None else orjson.dumps(asdict(platform))
        self.conn.execute(
            f"UPDATE delivery_runs SET duration_us = {p}, {sets}, error = {p}, platform = {p} "
            f"WHERE id = {p}",
            (duration_us, *(getattr(counts, n) for n in _COUNTS), error, answer, run_id),
        )
        if keep_after_us is not None:
            self.conn.execute(f"DELETE FROM delivery_runs WHERE started_us < {p}", (keep_after_us,))

    def page(self, destination: str | None, limit: int = 50, before: int | None = None) -> RunPage:
        """Runs newest first (of one destination, or all), ``limit`` at most, with ids below
        ``before``; and the row-level errors of those runs."""
        p = self.dialect.p
        limit = max(1, min(limit, MAX_PAGE))
        where: list[str] = []
        params: list[str | int] = []
        if destination is not None:
            where.append(f"destination = {p}")
            params.append(destination)
        if before is not None:
            where.append(f"id < {p}")
            params.append(before)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = self.conn.execute(
            f"SELECT {_COLUMNS} FROM delivery_runs {clause}ORDER BY id DESC LIMIT {p}",
            (*params, limit + 1),
        ).fetchall()
        runs = [_run(r) for r in rows[:limit]]
        errors = self._errors([r.id for r in runs])
        more = len(rows) > limit
        return RunPage(runs, runs[-1].id if more else None, errors)

    def totals(self, since_us: int) -> dict[str, RunCounts]:
        """Per destination, the sums of the counts of its runs started since ``since_us``
        (alert rules' reject rate, ``/metrics``)."""
        p = self.dialect.p
        sums = ", ".join(f"SUM({name})" for name in _COUNTS)
        rows = self.conn.execute(
            f"SELECT destination, {sums} FROM delivery_runs WHERE started_us >= {p} "
            "GROUP BY destination",
            (since_us,),
        ).fetchall()
        return {r[0]: RunCounts(*(int(v or 0) for v in r[1:])) for r in rows}

    def last_started(self) -> dict[str, int]:
        """Per destination, when its latest run started (µs)."""
        rows = self.conn.execute(
            "SELECT destination, MAX(started_us) FROM delivery_runs GROUP BY destination"
        ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def volume(self, destination: str, since_us: int, bucket_us: int) -> list[Volume]:
        """Per time bucket (``started_us // bucket_us``) since ``since_us``, what the
        destination's runs delivered and how many rows failed (rejected, retried, dead)."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT started_us / {p} AS bucket, SUM(added + removed + updated + events), "
            "SUM(rejected + retried + dead) FROM delivery_runs "
            f"WHERE destination = {p} AND started_us >= {p} GROUP BY bucket ORDER BY bucket",
            (bucket_us, destination, since_us),
        ).fetchall()
        return [Volume(int(r[0]), int(r[1] or 0), int(r[2] or 0)) for r in rows]

    def of_person(
        self, person_id: str, destinations: Sequence[str], limit: int = 50
    ) -> list[PersonDelivery]:
        """The deliveries about one person to ``destinations``, newest first: to where,
        what, its status, and the platform's answer of the run of its latest attempt (the
        person's page; the destinations lead the ``deliveries_person`` index)."""
        if not destinations:
            return []
        d = self.dialect
        among, values = d.among("d.destination", destinations)
        rows = self.conn.execute(
            "SELECT d.id, d.destination, d.kind, d.name, d.segment, d.status, d.attempts, "
            "d.created_us, d.updated_us, d.last_error, r.platform FROM deliveries d "
            "LEFT JOIN delivery_attempts a ON a.id = (SELECT MAX(x.id) FROM "
            "delivery_attempts x WHERE x.delivery_id = d.id) "
            "LEFT JOIN delivery_runs r ON r.id = a.run_id "
            f"WHERE {among} AND d.person_id = {d.p} ORDER BY d.id DESC LIMIT {d.p}",
            (*values, person_id, max(1, min(limit, MAX_PAGE))),
        ).fetchall()
        return [_person_delivery(r) for r in rows]

    def _errors(self, run_ids: Sequence[int]) -> dict[int, list[RowError]]:
        if not run_ids:
            return {}
        d = self.dialect
        among, values = d.among("a.run_id", run_ids)
        rows = self.conn.execute(
            "SELECT a.run_id, a.delivery_id, d.person_id, d.kind, a.at_us, a.outcome, a.status, "
            "a.error FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id "
            f"WHERE {among} AND a.outcome IN ('reject', 'retry') "
            f"ORDER BY a.run_id DESC, a.id LIMIT {d.p}",
            (*values, MAX_ROW_ERRORS),
        ).fetchall()
        out: dict[int, list[RowError]] = {}
        for r in rows:
            error = RowError(int(r[0]), int(r[1]), r[2], r[3], int(r[4]), r[5], r[6], r[7])
            out.setdefault(error.run_id, []).append(error)
        return out


class RunStore:
    """The sync runs, each write in a transaction of its own, each read in a snapshot."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def open(self, destination: str, started_us: int) -> int:
        with self.store.transaction() as tx:
            return tx.runs.open(destination, started_us)

    def close(
        self,
        run_id: int,
        duration_us: int,
        counts: RunCounts,
        error: str,
        platform: PlatformReport | None,
        keep_after_us: int | None = None,
    ) -> None:
        with self.store.transaction() as tx:
            tx.runs.close(run_id, duration_us, counts, error, platform, keep_after_us)

    def page(self, destination: str | None, limit: int = 50, before: int | None = None) -> RunPage:
        with self.store.reader() as reader:
            return reader.runs.page(destination, limit, before)

    def totals(self, since_us: int) -> dict[str, RunCounts]:
        with self.store.reader() as reader:
            return reader.runs.totals(since_us)

    def last_started(self) -> dict[str, int]:
        with self.store.reader() as reader:
            return reader.runs.last_started()

    def volume(self, destination: str, since_us: int, bucket_us: int) -> list[Volume]:
        with self.store.reader() as reader:
            return reader.runs.volume(destination, since_us, bucket_us)

    def of_person(
        self, person_id: str, destinations: Sequence[str], limit: int = 50
    ) -> list[PersonDelivery]:
        with self.store.reader() as reader:
            return reader.runs.of_person(person_id, destinations, limit)
