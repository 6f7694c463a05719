"""The panel: what Tactful knows about the ticket's requester, their ESP profile and value
score, gathered into ``PanelData`` and rendered as a small HTML fragment (no JS build)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from html import escape
from typing import Any

from tactful.destinations.profiles import MarketingProfile, ProfileError
from tactful.store.records import from_us
from tactful.valuescore import ValueScore, value_score
from tactful.views import fmt, person_json, resolve_key
from tactful.web.sidebar.records import LatestDelivery, actions_of, latest_deliveries
from tactful.web.sidebar.state import EspUnavailable, SidebarState

HEALTH_CHOICES = ("satisfied", "neutral", "unsatisfied")
STATE_SHOWN = (
    "has_open_ticket",
    "open_ticket_count",
    "open_reasons",
    "last_ticket_at",
    "last_ticket_status",
    "priority",
    "refund_risk",
    "csat_score",
    "health",
    "health_at",
    "promo_override_until",
)


@dataclass
class SegmentLine:
    name: str
    member: bool
    since: str | None
    when: str
    why: str


@dataclass
class PanelData:
    email: str
    person_id: str | None = None
    problem: str | None = None
    state: dict[str, Any] = field(default_factory=dict)
    segments: list[SegmentLine] = field(default_factory=list)
    deliveries: list[tuple[str, LatestDelivery | None]] = field(default_factory=list)
    profile: MarketingProfile | None = None
    esp_name: str | None = None
    esp_problem: str | None = None
    score: ValueScore | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)


def find_person(state: SidebarState, email: str) -> tuple[str | None, str | None]:
    """(person id, problem) for the requester's email."""
    ctx = state.ctx
    with ctx.engine.store.reader() as reader:
        matches = resolve_key(reader, email, ctx.settings.identity.default_region)
    if not matches:
        return None, f"Tactful has no record of {email}"
    if len(matches) > 1:
        return None, f"{email} matches {len(matches)} people: " + ", ".join(matches)
    return matches[0], None


def gather_local(state: SidebarState, email: str, now: datetime) -> PanelData:
    ctx = state.ctx
    data = PanelData(email=email, esp_name=state.esp_name)
    data.person_id, data.problem = find_person(state, email)
    if data.person_id is None:
        return data
    pid = data.person_id
    with ctx.engine.store.reader() as reader:
        person = person_json(reader, ctx.engine.rules, ctx.consent_defaults, pid)
        latest = latest_deliveries(reader, pid)
        data.score = value_score(getattr(reader, "conn", None), pid, now)
        data.actions = actions_of(reader, pid)
    if person is None:
        data.person_id, data.problem = None, f"Tactful has no record of {email}"
        return data
    data.state = person["state"]
    entered: dict[str, dict[str, Any]] = {}
    for change in person.get("history", []):
        if change["change"] == "entered":
            entered[change["segment"]] = change
    for name, seg in person["segments"].items():
        spec = ctx.settings.segment(name)
        why = entered.get(name, {}) if seg["member"] else {}
        data.segments.append(
            SegmentLine(
                name,
                bool(seg["member"]),
                seg["since"],
                spec.when if spec is not None else "",
                str(why.get("detail") or why.get("rule") or ""),
            )
        )
    data.deliveries = [(d.name, latest.get(d.name)) for d in ctx.settings.destinations]
    return data


async def gather(state: SidebarState, email: str) -> PanelData:
    """Tactful's own data always; the ESP profile when the ESP answers in time."""
    now = state.clock()
    data = gather_local(state, email, now)
    try:
        data.profile = await state.call_esp(lambda esp: esp.read_profile(email))
        if data.profile is None:
            data.esp_problem = f"no profile for {email} at {data.esp_name}"
    except (EspUnavailable, ProfileError) as exc:
        data.esp_problem = f"ESP unavailable: {exc}"
    return data


# -- HTML ---------------------------------------------------------------------------------


def _e(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _time(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    text = fmt(value) if isinstance(value, datetime) else str(value)
    return f'<time datetime="{_e(text)}">{_e(text)}</time>'


def _form(action: str, email: str, inner: str, label: str, **hidden: str) -> str:
    fields = "".join(
        f'<input type="hidden" name="{_e(k)}" value="{_e(v)}">' for k, v in hidden.items()
    )
    return (
        f'<form class="action" data-action="{_e(action)}" method="post">'
        f'<input type="hidden" name="idem" value="{uuid.uuid4().hex}">'
        f'<input type="hidden" name="email" value="{_e(email)}">{fields}{inner}'
        f'<button type="submit" name="go" value="1">{_e(label)}</button></form>'
    )


def _state_html(data: PanelData) -> str:
    support = data.state.get("support_state") or "clear"
    rows = "".join(
        f'<tr data-field="{_e(k)}"><th>{_e(k)}</th><td>{_e(data.state.get(k))}</td></tr>'
        for k in STATE_SHOWN
        if data.state.get(k) not in (None, [], "", False, 0)
    )
    return (
        f'<section id="state"><h2>Support state: <span class="support-state">'
        f"{_e(support)}</span></h2><table>{rows}</table></section>"
    )


def _segments_html(data: PanelData) -> str:
    rows = []
    for s in data.segments:
        status = f"member since {_time(s.since)}" if s.member else "not a member"
        why = f'<div class="why">because {_e(s.why)}</div>' if s.member and s.why else ""
        rows.append(
            f'<li class="segment {"in" if s.member else "out"}" data-segment="{_e(s.name)}">'
            f'<b>{_e(s.name)}</b>: {status}<div class="rule">rule: <code>{_e(s.when)}</code>'
            f"</div>{why}</li>"
        )
    return f'<section id="segments"><h3>Segments</h3><ul>{"".join(rows)}</ul></section>'


def _deliveries_html(data: PanelData) -> str:
    rows = []
    for name, row in data.deliveries:
        if row is None:
            text = "nothing sent yet"
        elif row.status == "done":
            text = f"latest change applied at {_time(from_us(row.updated_us))}"
        elif row.status == "pending":
            text = f"latest change pending (since {_time(from_us(row.updated_us))})"
        elif row.status == "skipped":
            text = f"latest change skipped: {_e(row.last_error)}"
        else:
            text = f"latest change failed: {_e(row.last_error)}"
        status = "none" if row is None else row.status
        rows.append(
            f'<li data-destination="{_e(name)}" data-status="{_e(status)}">'
            f"<b>{_e(name)}</b>: {text}</li>"
        )
    return f'<section id="destinations"><h3>Destinations</h3><ul>{"".join(rows)}</ul></section>'


def _profile_html(data: PanelData) -> str:
    title = f"Marketing profile ({_e(data.esp_name)})" if data.esp_name else "Marketing profile"
    p = data.profile
    if p is None:
        return (
            f'<section id="esp"><h3>{title}</h3>'
            f'<p class="missing">{_e(data.esp_problem)}</p></section>'
        )
    names = p.raw.get("list_names") or {}
    lists = "".join(
        f'<li data-list="{_e(lid)}">{_e(names.get(lid) or lid)} '
        + _form("remove-list", data.email, "", "Remove", list_id=lid)
        + "</li>"
        for lid in p.lists
    )
    optout = "unknown" if p.opted_out is None else ("opted out" if p.opted_out else "subscribed")
    toggle = "false" if p.opted_out else "true"
    label = "Opt back in" if p.opted_out else "Opt out"
    return (
        f'<section id="esp"><h3>{title}</h3><table>'
        f'<tr><th>opt-out</th><td class="optout">{optout}</td></tr>'
        f"<tr><th>signed up</th><td>{_time(p.signup_at)}</td></tr>"
        f"<tr><th>last open</th><td>{_time(p.last_open_at)}</td></tr>"
        f"<tr><th>last click</th><td>{_time(p.last_click_at)}</td></tr>"
        f"<tr><th>last pageview</th><td>{_time(p.last_pageview_at)}</td></tr></table>"
        f"{_form('optout', data.email, '', label, opted_out=toggle)}"
        f'<h4>Lists</h4><ul class="lists">{lists or "<li>none</li>"}</ul>'
        + _form(
            "change-email",
            data.email,
            '<input type="email" name="new_email" required placeholder="new address">',
            "Change email",
        )
        + "</section>"
    )


def _actions_html(data: PanelData) -> str:
    current = data.state.get("health")
    options = "".join(
        f'<option value="{h}"{" selected" if h == current else ""}>{h}</option>'
        for h in HEALTH_CHOICES
    )
    health = _form("health", data.email, f'<select name="health">{options}</select>', "Set health")
    override = _form(
        "override",
        data.email,
        '<label>Suppress promos for <input type="number" name="days" min="0" max="365" '
        'value="7" required> days</label>',
        "Suppress",
    )
    log = "".join(
        f"<li>{_time(from_us(int(a['at_us'])))} {_e(a['agent'])}: {_e(a['action'])} "
        f"{_e(a['params'])} → {_e(a['status'])} {_e(a['result'])}</li>"
        for a in data.actions
    )
    return (
        f'<section id="controls"><h3>Health</h3>{health}<h3>Promotions</h3>{override}'
        f'<h4>Recent agent actions</h4><ul class="log">{log}</ul></section>'
    )


def render(data: PanelData, flash: tuple[str, str] | None = None) -> str:
    head = ""
    if flash is not None:
        head = f'<p class="flash {_e(flash[0])}" role="status">{_e(flash[1])}</p>'
    if data.person_id is None:
        return (
            f'<div id="panel" data-email="{_e(data.email)}">{head}'
            f'<p class="missing unknown">{_e(data.problem)}</p>{_profile_html(data)}</div>'
        )
    score = data.score.score if data.score is not None else None
    value = (
        f'<section id="value"><h3>Value score: <span class="score">{_e(score or "—")}</span>'
        f"</h3></section>"
    )
    return (
        f'<div id="panel" data-email="{_e(data.email)}" data-person="{_e(data.person_id)}">'
        f"{head}{_state_html(data)}{value}{_segments_html(data)}{_deliveries_html(data)}"
        f"{_profile_html(data)}{_actions_html(data)}</div>"
    )
