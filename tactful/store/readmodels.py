"""The reads the dashboard, the report and the value score make: membership and state
history, people lists, outcomes and ratings (portable SQL), reached through
``reader.read_models``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tactful.store.dbapi import Conn, chunks, marks

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

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    # membership history

    def first_change_us(self, segment: str | None = None) -> int | None:
        """When the first membership change (of ``segment``, or any) happened."""
        if segment is None:
            row = self.conn.execute("SELECT MIN(at_us) FROM membership_history").fetchone()
        else:
            row = self.conn.execute(
                "SELECT MIN(at_us) FROM membership_history WHERE segment = ?", (segment,)
            ).fetchone()
        return None if row is None or row[0] is None else int(row[0])

    def changes_since(self, since_us: int) -> dict[tuple[str, str], int]:
        """Membership changes after ``since_us`` by (segment, change)."""
        rows = self.conn.execute(
            "SELECT segment, change, COUNT(*) FROM membership_history WHERE at_us > ? "
            "GROUP BY segment, change",
            (since_us,),
        ).fetchall()
        return {(s, c): int(n) for s, c, n in rows}

    def change_buckets(self, bucket_us: int) -> list[BucketCount]:
        """Membership changes per segment, bucket, change and holdout."""
        rows = self.conn.execute(
            "SELECT segment, at_us / ?, change, holdout, COUNT(*) FROM membership_history "
            "GROUP BY 1, 2, 3, 4",
            (bucket_us,),
        ).fetchall()
        return [BucketCount(s, int(b), c, bool(h), int(n)) for s, b, c, h, n in rows]

    def segment_history(
        self, segment: str, *, limit: int | None = None, until_us: int | None = None
    ) -> list[MembershipEvent]:
        """A segment's membership changes: the newest ``limit`` (newest first), or all up
        to ``until_us`` (oldest first)."""
        if limit is not None:
            rows = self.conn.execute(
                "SELECT person_id, change, at_us, holdout, detail FROM membership_history "
                "WHERE segment = ? ORDER BY at_us DESC, id DESC LIMIT ?",
                (segment, limit),
            ).fetchall()
        else:
            rows = self.conn.execute(
                "SELECT person_id, change, at_us, holdout, detail FROM membership_history "
                "WHERE segment = ? AND at_us <= ? ORDER BY at_us, id",
                (segment, until_us if until_us is not None else 2**62),
            ).fetchall()
        return [MembershipEvent(str(p), str(c), int(a), bool(h), d or "") for p, c, a, h, d in rows]

    def state_changes(self, limit: int) -> list[StateChangeEntry]:
        """The latest changes of support state, newest first. A row where other fields
        changed and the state did not (recently_resolved -> recently_resolved) is none."""
        rows = self.conn.execute(
            "SELECT person_id, at_us, old_state, new_state, changed FROM state_changes "
            "WHERE old_state IS NULL OR old_state <> new_state "
            "ORDER BY at_us DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [StateChangeEntry(p, int(a), o, n, c) for p, a, o, n, c in rows]

    # people

    def search_identifiers(self, needle: str, exact: str) -> list[str]:
        """Persons with an email, phone or external id that holds ``needle`` (any case) or
        equals ``exact``; by person id, 1,000 at the most."""
        escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self.conn.execute(
            "SELECT DISTINCT person_id FROM identifiers WHERE kind IN ('email', 'phone', "
            "'external_id') AND (LOWER(value) LIKE ? ESCAPE '\\' OR value = ?) "
            "ORDER BY person_id LIMIT ?",
            (f"%{escaped}%", exact, _LIST),
        ).fetchall()
        return [r[0] for r in rows]

    def people_count(self, which: PeopleFilter) -> int:
        clause, params = _people_where(which)
        return int(
            self.conn.execute(f"SELECT COUNT(*) FROM persons p{clause}", params).fetchone()[0]
        )

    def people_page(self, which: PeopleFilter, limit: int, offset: int) -> list[tuple[str, str]]:
        """(person id, support state) by person id."""
        clause, params = _people_where(which)
        rows = self.conn.execute(
            f"SELECT p.person_id, p.support_state FROM persons p{clause} "
            "ORDER BY p.person_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        ).fetchall()
        return [(str(p), str(s)) for p, s in rows]

    def segments_of(self, person_ids: Sequence[str]) -> dict[str, list[str]]:
        """The segments each person is in, by name."""
        out: dict[str, list[str]] = {}
        for chunk in chunks(list(person_ids)):
            for pid, segment in self.conn.execute(
                f"SELECT person_id, segment FROM memberships WHERE person_id IN "
                f"({marks(len(chunk))}) ORDER BY segment",
                tuple(chunk),
            ):
                out.setdefault(pid, []).append(segment)
        return out

    # outcomes and ratings

    def outcomes_of(
        self, person_ids: Sequence[str], until_us: int
    ) -> dict[str, list[tuple[int, str]]]:
        """Each person's outcomes up to ``until_us``: (at_us, outcome), oldest first."""
        out: dict[str, list[tuple[int, str]]] = {}
        for chunk in chunks(list(person_ids)):
            for pid, at_us, outcome in self.conn.execute(
                f"SELECT person_id, at_us, outcome FROM outcomes WHERE person_id IN "
                f"({marks(len(chunk))}) AND at_us <= ? ORDER BY at_us",
                (*chunk, until_us),
            ):
                out.setdefault(str(pid), []).append((int(at_us), str(outcome)))
        return out

    def revenues(self, after_us: int, until_us: int) -> dict[str, float]:
        """Revenue per person: the sum of ``order`` outcomes' amounts in (after, until]."""
        rows = self.conn.execute(
            "SELECT person_id, SUM(amount) FROM outcomes WHERE outcome = 'order' "
            "AND amount IS NOT NULL AND at_us > ? AND at_us <= ? GROUP BY person_id",
            (after_us, until_us),
        ).fetchall()
        return {pid: float(total) for pid, total in rows if total and total > 0}

    def events_of_kind(self, kind: str, until_us: int) -> list[bytes]:
        """The canonical bytes of every logged event of ``kind`` up to ``until_us``."""
        rows = self.conn.execute(
            "SELECT canonical FROM events WHERE kind = ? AND at_us <= ?", (kind, until_us)
        ).fetchall()
        return [bytes(r[0]) for r in rows]


def _people_where(which: PeopleFilter) -> tuple[str, list[str]]:
    where: list[str] = []
    params: list[str] = []
    if which.person_ids is not None:
        where.append(f"p.person_id IN ({marks(len(which.person_ids))})")
        params += which.person_ids
    if which.state:
        where.append("p.support_state = ?")
        params.append(which.state)
    if which.segment:
        where.append(
            "EXISTS (SELECT 1 FROM memberships m WHERE m.person_id = p.person_id AND m.segment = ?)"
        )
        params.append(which.segment)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params
