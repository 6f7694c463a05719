"""The reads the dashboard, the report and the value score make: membership and state
history, people lists, outcomes and ratings (portable SQL), reached through
``reader.read_models``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tactful.store.dbapi import Conn, chunks
from tactful.store.dialect import Dialect, contains_pattern

_LIST = 1000  # people an identifier search finds at the most


@dataclass(frozen=True, slots=True)
class BucketCount:
    """Membership changes of one kind in one time bucket (``at_us // bucket_us``)."""

    segment: str
    bucket: int
    change: str  # entered | exited | …
    holdout: bool
    count: int


@dataclass(frozen=True, slots=True)
class StateChangeEntry:
    person_id: str
    at_us: int
    old_state: str | None
    new_state: str
    changed: str


@dataclass(frozen=True, slots=True)
class MembershipEvent:
    person_id: str
    change: str
    at_us: int
    holdout: bool
    detail: str


@dataclass(frozen=True, slots=True)
class PeopleFilter:
    """Which persons a people page lists: any of ``person_ids`` (None: everyone), in
    ``state`` and ``segment`` when given."""

    person_ids: Sequence[str] | None = None
    state: str = ""
    segment: str = ""


class SqlReadModels:
    """The read-model port on one connection (a reader's snapshot)."""

    def __init__(self, conn: Conn, dialect: Dialect) -> None:
        self.conn = conn
        self.dialect = dialect

    # membership history

    def first_change_us(self, segment: str | None = None) -> int | None:
        """When the first membership change (of ``segment``, or any) happened."""
        p = self.dialect.p
        if segment is None:
            row = self.conn.execute("SELECT MIN(at_us) FROM membership_history").fetchone()
        else:
            row = self.conn.execute(
                f"SELECT MIN(at_us) FROM membership_history WHERE segment = {p}", (segment,)
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def changes_since(self, since_us: int) -> dict[tuple[str, str], int]:
        """Membership changes after ``since_us`` by (segment, change)."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT segment, change, COUNT(*) FROM membership_history WHERE at_us > {p} "
            "GROUP BY segment, change",
            (since_us,),
        ).fetchall()
        return {(s, c): int(n) for s, c, n in rows}

    def change_buckets(self, bucket_us: int) -> list[BucketCount]:
        """Membership changes per segment, bucket, change and holdout."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT segment, at_us / {p}, change, holdout, COUNT(*) FROM membership_history "
            "GROUP BY 1, 2, 3, 4",
            (bucket_us,),
        ).fetchall()
        return [BucketCount(s, int(b), c, bool(h), int(n)) for s, b, c, h, n in rows]

    def segment_history(
        self, segment: str, *, limit: int | None = None, until_us: int | None = None
    ) -> list[MembershipEvent]:
        """A segment's membership changes: the newest ``limit`` (newest first), or all up
        to ``until_us`` (oldest first)."""
        p = self.dialect.p
        if limit is not None:
            rows = self.conn.execute(
                "SELECT person_id, change, at_us, holdout, detail FROM membership_history "
                f"WHERE segment = {p} ORDER BY at_us DESC, id DESC LIMIT {p}",
                (segment, limit),
            ).fetchall()
        else:
            rows = self.conn.execute(
                "SELECT person_id, change, at_us, holdout, detail FROM membership_history "
                f"WHERE segment = {p} AND at_us <= {p} ORDER BY at_us, id",
                (segment, until_us if until_us is not None else 2**62),
            ).fetchall()
        return [MembershipEvent(str(p), str(c), int(a), bool(h), d or "") for p, c, a, h, d in rows]

    def state_changes(self, limit: int) -> list[StateChangeEntry]:
        """The latest changes of support state, newest first. A row where other fields
        changed and the state did not (recently_resolved -> recently_resolved) is none."""
        p = self.dialect.p
        rows = self.conn.execute(
            "SELECT person_id, at_us, old_state, new_state, changed FROM state_changes "
            "WHERE old_state IS NULL OR old_state <> new_state "
            f"ORDER BY at_us DESC, id DESC LIMIT {p}",
            (limit,),
        ).fetchall()
        return [StateChangeEntry(p, int(a), o, n, c) for p, a, o, n, c in rows]

    # people

    def search_identifiers(self, needle: str, exact: str) -> list[str]:
        """Persons with an email, phone or external id that holds ``needle`` (any case) or
        equals ``exact``; by person id, 1,000 at the most."""
        p = self.dialect.p
        rows = self.conn.execute(
            "SELECT DISTINCT person_id FROM identifiers WHERE kind IN ('email', 'phone', "
            f"'external_id') AND (LOWER(value) LIKE {p} ESCAPE '\\' OR value = {p}) "
            f"ORDER BY person_id LIMIT {p}",
            (contains_pattern(needle), exact, _LIST),
        ).fetchall()
        return [r[0] for r in rows]

    def people_count(self, which: PeopleFilter) -> int:
        clause, params = _people_where(self.dialect, which)
        return int(
            self.conn.execute(f"SELECT COUNT(*) FROM persons p{clause}", params).fetchone()[0]
        )

    def people_page(self, which: PeopleFilter, limit: int, offset: int) -> list[tuple[str, str]]:
        """(person id, support state) by person id."""
        clause, params = _people_where(self.dialect, which)
        rows = self.conn.execute(
            f"SELECT p.person_id, p.support_state FROM persons p{clause} "
            f"ORDER BY p.person_id LIMIT {self.dialect.p} OFFSET {self.dialect.p}",
            [*params, limit, offset],
        ).fetchall()
        return [(str(pid), str(s)) for pid, s in rows]

    def segments_of(self, person_ids: Sequence[str]) -> dict[str, list[str]]:
        """The segments each person is in, by name."""
        out: dict[str, list[str]] = {}
        for chunk in chunks(list(person_ids)):
            among, values = self.dialect.among("person_id", chunk)
            for pid, segment in self.conn.execute(
                f"SELECT person_id, segment FROM memberships WHERE {among} ORDER BY segment",
                values,
            ):
                out.setdefault(pid, []).append(segment)
        return out

    # outcomes and ratings

    def outcomes_of(
        self, person_ids: Sequence[str], until_us: int
    ) -> dict[str, list[tuple[int, str]]]:
        """Each person's outcomes up to ``until_us``: (at_us, outcome), oldest first."""
        p = self.dialect.p
        out: dict[str, list[tuple[int, str]]] = {}
        for chunk in chunks(list(person_ids)):
            among, values = self.dialect.among("person_id", chunk)
            for pid, at_us, outcome in self.conn.execute(
                f"SELECT person_id, at_us, outcome FROM outcomes WHERE {among} "
                f"AND at_us <= {p} ORDER BY at_us",
                (*values, until_us),
            ):
                out.setdefault(str(pid), []).append((int(at_us), str(outcome)))
        return out

    def revenues(self, after_us: int, until_us: int) -> dict[str, float]:
        """Revenue per person: the sum of ``order`` outcomes' amounts in (after, until]."""
        p = self.dialect.p
        rows = self.conn.execute(
            "SELECT person_id, SUM(amount) FROM outcomes WHERE outcome = 'order' "
            f"AND amount IS NOT NULL AND at_us > {p} AND at_us <= {p} GROUP BY person_id",
            (after_us, until_us),
        ).fetchall()
        return {pid: float(total) for pid, total in rows if total and total > 0}

    def events_of_kind(self, kind: str, until_us: int) -> list[bytes]:
        """The canonical bytes of every logged event of ``kind`` up to ``until_us``."""
        p = self.dialect.p
        rows = self.conn.execute(
            f"SELECT canonical FROM events WHERE kind = {p} AND at_us <= {p}", (kind, until_us)
        ).fetchall()
        return [bytes(r[0]) for r in rows]


def _people_where(d: Dialect, which: PeopleFilter) -> tuple[str, list[object]]:
    where: list[str] = []
    params: list[object] = []
    if which.person_ids is not None:
        among, values = d.among("p.person_id", which.person_ids)
        where.append(among)
        params += values
    if which.state:
        where.append(f"p.support_state = {d.p}")
        params.append(which.state)
    if which.segment:
        where.append(
            "EXISTS (SELECT 1 FROM memberships m WHERE m.person_id = p.person_id "
            f"AND m.segment = {d.p})"
        )
        params.append(which.segment)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params
