"""The dashboard's people and segment reads: person labels (an identifier, never the bare
person id), the people list with search and filters, a segment's page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from tactful.core.identity import normalize_email, normalize_phone
from tactful.readmodels.views import resolve_key
from tactful.store.base import Reader
from tactful.store.readmodels import PeopleFilter
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


def labels(reader: Reader, person_ids: Sequence[str]) -> dict[str, Label]:
    out = {}
    for pid, idents in reader.identifiers_of(list(dict.fromkeys(person_ids))).items():
        kinds: dict[str, list[str]] = {}
        for kind, value in idents:
            kinds.setdefault(kind, []).append(str(value))
        ordered = [(k, v) for k in LABEL_ORDER for v in kinds.get(k, [])]
        if not ordered:
            out[pid] = Label(pid, "no identifier left", "")
            continue
        shown = [f"Zendesk user {v}" if k == "zendesk_user_id" else v for k, v in ordered]
        out[pid] = Label(pid, shown[0], ordered[0][0], tuple(shown[1:]))
    return out


def _matching_ids(ctx: WebContext, reader: Reader, query: str) -> list[str]:
    """People whose identifiers match ``query``: exactly (normalized, as the API resolves
    keys) or as a case-insensitive part of an email, phone or external id, or of the name of
    one of their Zendesk users."""
    exact = resolve_key(reader, query, ctx.settings.identity.default_region)
    needle = (normalize_email(query) or query.strip()).lower()
    phone = normalize_phone(query, ctx.settings.identity.default_region)
    found = reader.read_models.search_identifiers(needle, phone or needle)
    return list(dict.fromkeys([*exact, *found, *reader.persons_named(query)]))


def people(ctx: WebContext, query: str, segment: str, state: str, page: int) -> PeopleList:
    with ctx.engine.store.reader() as reader:
        ids: list[str] | None = None
        if query:
            ids = _matching_ids(ctx, reader, query)
            if not ids:
                return PeopleList(query, segment, state, 1, 0, [])
        which = PeopleFilter(ids, state, segment)
        total = reader.read_models.people_count(which)
        page = max(1, min(page, max(1, -(-total // PAGE_SIZE))))
        rows = reader.read_models.people_page(which, PAGE_SIZE, (page - 1) * PAGE_SIZE)
        shown = [pid for pid, _ in rows]
        names = named(reader, labels(reader, shown))
        segments = reader.read_models.segments_of(shown)
    out = [PersonRow(names[pid], st, segments.get(pid, [])) for pid, st in rows]
    return PeopleList(query, segment, state, page, total, out)


def states(ctx: WebContext) -> list[str]:
    """Support states to filter by: the configured ones and ``clear``."""
    return [*(s.name for s in ctx.settings.states), "clear"]


def labels_for(ctx: WebContext, person_ids: Sequence[str]) -> dict[str, Label]:
    with ctx.engine.store.reader() as reader:
        return labels(reader, person_ids)
