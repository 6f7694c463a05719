"""The dashboard's people and segment reads: person labels (an identifier, never the bare
person id), the people list with search and filters, a segment's page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tactful.core.identity import normalize_email, normalize_phone
from tactful.store.records import to_us
from tactful.views import clock_of, resolve_key
from tactful.web.context import WebContext
from tactful.web.dashboard.charts import Point, Window, choose_window, size_series
from tactful.web.dashboard.data import bucket_deltas, now_us
from tactful.web.present import span

PAGE_SIZE = 50
LABEL_ORDER = ("email", "phone", "external_id", "zendesk_user_id")
LABEL_WORDS = {
    "email": "email",
    "phone": "phone",
    "external_id": "external id",
    "zendesk_user_id": "Zendesk user",
}


@dataclass(frozen=True)
class Label:
    """How a person is named on the pages: their first identifier (email, phone, external
    id, Zendesk user id), the others, and the person id as a detail."""

    person_id: str
    text: str
    kind: str  # of ``text``; "" when the person has no identifier left
    others: tuple[str, ...] = ()


@dataclass
class PersonRow:
    label: Label
    support_state: str
    segments: list[str] = field(default_factory=list)


@dataclass
class PeopleList:
    query: str
    segment: str
    state: str
    page: int
    total: int
    rows: list[PersonRow]

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))


def _placeholders(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def labels(conn: Any, person_ids: Sequence[str]) -> dict[str, Label]:
    if not person_ids:
        return {}
    found: dict[str, dict[str, list[str]]] = {pid: {} for pid in person_ids}
    rows = conn.execute(
        "SELECT person_id, kind, value FROM identifiers WHERE person_id IN "
        f"({_placeholders(len(person_ids))}) ORDER BY kind, value",
        tuple(person_ids),
    ).fetchall()
    for pid, kind, value in rows:
        found[pid].setdefault(kind, []).append(str(value))
    out = {}
    for pid, kinds in found.items():
        ordered = [(k, v) for k in LABEL_ORDER for v in kinds.get(k, [])]
        if not ordered:
            out[pid] = Label(pid, "no identifier left", "")
            continue
        shown = [f"Zendesk user {v}" if k == "zendesk_user_id" else v for k, v in ordered]
        out[pid] = Label(pid, shown[0], ordered[0][0], tuple(shown[1:]))
    return out


def _matching_ids(ctx: WebContext, conn: Any, reader: Any, query: str) -> list[str]:
    """People whose identifiers match ``query``: exactly (normalized, as the API resolves
    keys) or as a case-insensitive part of an email, phone or external id."""
    exact = resolve_key(reader, query, ctx.settings.identity.default_region)
    needle = (normalize_email(query) or query.strip()).lower()
    phone = normalize_phone(query, ctx.settings.identity.default_region)
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    rows = conn.execute(
        "SELECT DISTINCT person_id FROM identifiers WHERE kind IN ('email', 'phone', "
        "'external_id') AND (LOWER(value) LIKE ? ESCAPE '\\' OR value = ?) "
        "ORDER BY person_id LIMIT 1000",
        (f"%{escaped}%", phone or needle),
    ).fetchall()
    return list(dict.fromkeys([*exact, *(r[0] for r in rows)]))


def people(ctx: WebContext, query: str, segment: str, state: str, page: int) -> PeopleList:
    where, params = [], []
    with ctx.engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        if query:
            ids = _matching_ids(ctx, conn, reader, query)
            if not ids:
                return PeopleList(query, segment, state, 1, 0, [])
            where.append(f"p.person_id IN ({_placeholders(len(ids))})")
            params += ids
        if state:
            where.append("p.support_state = ?")
            params.append(state)
        if segment:
            where.append(
                "EXISTS (SELECT 1 FROM memberships m WHERE m.person_id = p.person_id "
                "AND m.segment = ?)"
            )
            params.append(segment)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        total = int(conn.execute(f"SELECT COUNT(*) FROM persons p{clause}", params).fetchone()[0])
        page = max(1, min(page, max(1, -(-total // PAGE_SIZE))))
        rows = conn.execute(
            f"SELECT p.person_id, p.support_state FROM persons p{clause} "
            "ORDER BY p.person_id LIMIT ? OFFSET ?",
            [*params, PAGE_SIZE, (page - 1) * PAGE_SIZE],
        ).fetchall()
        ids = [r[0] for r in rows]
        names = labels(conn, ids)
        member_rows = (
            conn.execute(
                "SELECT person_id, segment FROM memberships WHERE person_id IN "
                f"({_placeholders(len(ids))}) ORDER BY segment",
                tuple(ids),
            ).fetchall()
            if ids
            else []
        )
    segments: dict[str, list[str]] = {}
    for pid, seg in member_rows:
        segments.setdefault(pid, []).append(seg)
    out = [PersonRow(names[pid], st, segments.get(pid, [])) for pid, st in rows]
    return PeopleList(query, segment, state, page, total, out)


def states(ctx: WebContext) -> list[str]:
    """Support states to filter by: the configured ones and ``clear``."""
    return [*(s.name for s in ctx.settings.states), "clear"]


@dataclass
class HistoryRow:
    at_us: int
    label: Label
    change: str
    holdout: bool
    detail: str


@dataclass
class SegmentPage:
    name: str
    description: str
    when: str
    cooldown: str
    holdout_share: float
    members: int
    holdout: int
    delivered_to: list[str]
    member_rows: list[tuple[Label, int, bool]]  # label, since_us, holdout
    next_after: str | None  # the cursor of the next page of members
    history: list[HistoryRow]
    window: Window
    series: list[Point]
    buckets: list[tuple[int, int, int]]  # bucket start (us), entered, exited; newest first
    now_us: int  # the engine clock (the wall clock before it starts)


def segment_page(ctx: WebContext, name: str, after: str | None) -> SegmentPage | None:
    spec = ctx.settings.segment(name)
    if spec is None:
        return None
    with ctx.engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        members, holdout = reader.segment_counts().get(name, (0, 0))
        page = reader.segment_members(name, after, PAGE_SIZE + 1)
        history = conn.execute(
            "SELECT person_id, change, at_us, holdout, detail FROM membership_history "
            "WHERE segment = ? ORDER BY at_us DESC, id DESC LIMIT ?",
            (name, PAGE_SIZE),
        ).fetchall()
        names = labels(conn, list({*(pid for pid, _ in page), *(r[0] for r in history)}))
        now = now_us(clock_of(reader))
        first = conn.execute(
            "SELECT MIN(at_us) FROM membership_history WHERE segment = ?", (name,)
        ).fetchone()[0]
        window = choose_window(None if first is None else int(first), now)
        deltas = bucket_deltas(conn, window.bucket_us).get(name, {})
    shown = page[:PAGE_SIZE]
    member_rows = [(names[pid], to_us(m.since) if m.since else 0, m.holdout) for pid, m in shown]
    delivered = [
        d.name
        for d in ctx.settings.destinations
        if (wanted := d.segment_names) is None or name in wanted
    ]
    return SegmentPage(
        name,
        spec.description,
        spec.when,
        "" if spec.cooldown is None else span(spec.cooldown.total_seconds(), long=True),
        spec.holdout,
        members,
        holdout,
        delivered,
        member_rows,
        shown[-1][0] if len(page) > PAGE_SIZE else None,
        [HistoryRow(int(a), names[p], c, bool(h), d or "") for p, c, a, h, d in history],
        window,
        size_series(deltas, window, now),
        [
            (b * window.bucket_us, deltas[b].entered, deltas[b].exited)
            for b in sorted(deltas, reverse=True)
            if b >= window.first and (deltas[b].entered or deltas[b].exited)
        ],
        now,
    )


def labels_for(ctx: WebContext, person_ids: Sequence[str]) -> dict[str, Label]:
    with ctx.engine.store.reader() as reader:
        return labels(reader.conn, list(dict.fromkeys(person_ids)))  # type: ignore[attr-defined]


@dataclass
class SegmentSummary:
    name: str
    when: str
    members: int
    holdout: int


def segment_list(ctx: WebContext) -> list[SegmentSummary]:
    with ctx.engine.store.reader() as reader:
        counts = reader.segment_counts()
    return [
        SegmentSummary(s.name, s.when, *counts.get(s.name, (0, 0))) for s in ctx.settings.segments
    ]
