"""The dashboard pages' bodies (the frame is ``layout.page``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tactful.web.dashboard.charts import bar_chart, line_chart
from tactful.web.dashboard.data import DestinationRow, Overview
from tactful.web.dashboard.layout import ago, e, table, when


def _person_link(person_id: str) -> str:
    return f'<a class="mono" href="/people?q={e(person_id)}">{e(person_id)}</a>'


def _retry_form(csrf: str, destination: str | None, label: str) -> str:
    field = (
        ""
        if destination is None
        else f'<input type="hidden" name="destination" value="{e(destination)}">'
    )
    return (
        f'<form method="post" action="/retry" class="retry">'
        f'<input type="hidden" name="csrf" value="{e(csrf)}">{field}'
        f'<button type="submit">{e(label)}</button></form>'
    )


def _destinations(rows: Sequence[DestinationRow], csrf: str) -> str:
    if not rows:
        return '<p class="muted">No destinations configured.</p>'
    body = []
    for r in rows:
        dead = f'<span class="dead{" bad" if r.dead else ""}">{r.dead}</span>'
        action = _retry_form(csrf, r.name, "Retry dead letters") if r.dead else ""
        error = (
            f'<span class="bad">{e(r.last_error)}</span><br><span class="muted">'
            f"{when(r.last_error_us)}</span>"
            if r.last_error
            else '<span class="muted">—</span>'
        )
        body.append(
            [
                f"<strong>{e(r.name)}</strong>",
                e(r.type),
                ago(r.lag_seconds),
                when(r.last_success_us),
                error,
                str(r.pending),
                dead,
                action,
            ]
        )
    headers = ["Destination", "Type", "Lag", "Last success", "Last error", "Pending", "Dead"]
    attrs = [f'data-destination="{e(r.name)}"' for r in rows]
    return table([*headers, ""], body, css="destinations", row_attrs=attrs)


def overview(ov: Overview, csrf: str, flash: str | None = None) -> str:
    parts = [f'<p class="flash ok">{e(flash)}</p>' if flash else ""]
    clock = ov.engine_clock.isoformat() if ov.engine_clock else "not started"
    parts.append(f'<p class="muted">Engine clock: {e(clock)}</p>')
    attrs = [f'data-segment="{e(s.name)}"' for s in ov.segments]
    rows = [
        [
            f'<strong>{e(s.name)}</strong><br><code class="muted">{e(s.when)}</code>',
            str(s.members),
            str(s.holdout),
            f"{s.entered_1h} / {s.exited_1h}",
            f"{s.entered_24h} / {s.exited_24h}",
        ]
        for s in ov.segments
    ]
    headers = ["Segment", "Size", "Holdout", "In / out, last hour", "In / out, last 24h"]
    charts = "".join(
        line_chart(f"{s.name}: size over time", s.series, ov.window.bucket_us) for s in ov.segments
    )
    parts.append(
        f'<section id="segments"><h2>Segments</h2>'
        f"{table(headers, rows, css='segments', numeric=1, row_attrs=attrs)}"
        f'<div class="charts">{charts}</div></section>'
    )
    parts.append(
        '<section id="states"><h2>Support states</h2>'
        f"{bar_chart('People by support state', ov.states)}</section>"
    )
    total_dead = sum(d.dead for d in ov.destinations)
    retry_all = (
        _retry_form(csrf, None, f"Retry all dead letters ({total_dead})") if total_dead else ""
    )
    parts.append(
        '<section id="destinations"><h2>Destinations</h2>'
        f"{_destinations(ov.destinations, csrf)}{retry_all}</section>"
    )
    changes = [
        [
            when(at),
            _person_link(pid),
            e(old or "—"),
            f"<strong>{e(new)}</strong>",
            e(changed.replace(",", ", ")),
        ]
        for pid, at, old, new, changed in ov.changes
    ]
    parts.append(
        '<section id="changes"><h2>Recent state changes</h2>'
        + (
            table(["At", "Person", "From", "To", "Changed fields"], changes, css="changes")
            if changes
            else '<p class="muted">None yet.</p>'
        )
        + "</section>"
    )
    return "".join(parts)


def people(query: str, found: Sequence[dict[str, Any]], rules: dict[str, str]) -> str:
    """``rules``: segment name → its ``when``."""
    form = (
        '<section><form method="get" action="/people">'
        f'<input type="text" name="q" value="{e(query)}" placeholder="email, phone, external id, '
        'Zendesk user id or person id" aria-label="person"> <button type="submit">Look up</button>'
        "</form></section>"
    )
    if not query:
        return form
    if not found:
        return form + f'<section><p class="bad">No person matches {e(query)}.</p></section>'
    return form + "".join(_person(p, rules) for p in found)


def _value(value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _person(p: dict[str, Any], rules: dict[str, str]) -> str:
    state = p["state"]
    idents = "; ".join(
        f"{e(kind)}: {e(', '.join(values))}" for kind, values in p["identifiers"].items() if values
    )
    fields = [[e(k), e(_value(v))] for k, v in state.items() if v not in (None, "", [])]
    segments = []
    for name, s in p["segments"].items():
        status = "member" if s["member"] else '<span class="muted">not a member</span>'
        if s["member"] and s["holdout"]:
            status += " (holdout)"
        segments.append(
            [
                f"<strong>{e(name)}</strong>",
                status,
                e(s["since"] or ""),
                f"<code>{e(rules.get(name, ''))}</code>",
            ]
        )
    history = [
        [
            e(h["at"]),
            e(h["segment"]),
            e(h["change"]),
            f"<code>{e(h['rule'])}</code>",
            e(h.get("detail", "")),
        ]
        for h in reversed(p.get("history", []))
    ]
    consent = ", ".join(f"{e(k)}: {'yes' if v else 'no'}" for k, v in p["consent"].items())
    pid, support = e(p["person_id"]), e(state.get("support_state"))
    seg_table = table(["Segment", "Status", "Since", "Rule"], segments, css="person-segments")
    return (
        f'<section class="person" data-person="{pid}">'
        f'<h2>{pid} — <span class="support-state">{support}</span></h2>'
        f'<p>{idents}</p><p class="muted">Consent: {consent}</p>'
        f"<h3>Segments</h3>{seg_table}"
        f"<h3>State</h3>{table(['Field', 'Value'], fields, css='state')}"
        "<h3>History (why)</h3>"
        + (
            table(["At", "Segment", "Change", "Rule", "Detail"], history, css="history")
            if history
            else '<p class="muted">No segment changes yet.</p>'
        )
        + "</section>"
    )


def config(masked: dict[str, Any]) -> str:
    sections = []
    for key, value in masked.items():
        text = json.dumps(value, indent=2, sort_keys=False, default=str)
        sections.append(
            f'<section data-section="{e(key)}"><h2>{e(key)}</h2><pre>{e(text)}</pre></section>'
        )
    return '<p class="muted">The active configuration; secrets are masked.</p>' + "".join(sections)
