"""The dashboard's people and segment reads: person labels (an identifier, never the bare
person id), the people list with search and filters, a segment's page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from tactful.core.identity import normalize_email, normalize_phone
from tactful.store.base import Reader
from tactful.views import resolve_key
from tactful.web.context import WebContext

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
    name: str = ""  # their Zendesk user's name, where the page shows it


def named(reader: Reader, found: dict[str, Label]) -> dict[str, Label]:
    """``found`` with each person's Zendesk user name (the newest)."""
    names = reader.names_of(list(found))
    return {pid: replace(lab, name=(names.get(pid) or [""])[0]) for pid, lab in found.items()}


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
    keys) or as a case-insensitive part of an email, phone or external id, or of the name of
    one of their Zendesk users."""
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
    return list(dict.fromkeys([*exact, *(r[0] for r in rows), *reader.persons_named(query)]))


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
        names = named(reader, labels(conn, ids))
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


def labels_for(ctx: WebContext, person_ids: Sequence[str]) -> dict[str, Label]:
    with ctx.engine.store.reader() as reader:
        return labels(reader.conn, list(dict.fromkeys(person_ids)))  # type: ignore[attr-defined]
