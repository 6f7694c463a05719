"""The page frame, styles and small HTML helpers (everything is escaped here or by callers
through ``e``)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape

STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1f2933;background:#f5f7fa}
header{background:#1f2933;color:#fff;padding:10px 24px;display:flex;gap:20px;align-items:center}
header a{color:#cbd2d9;text-decoration:none}header a.on,header a:hover{color:#fff}
header .brand{font-weight:600;color:#fff;margin-right:12px}header form{margin-left:auto}
main{padding:16px 24px;max-width:1300px}
section{background:#fff;border:1px solid #e4e7eb;border-radius:6px;padding:12px 16px;
margin:0 0 16px}
h1{font-size:20px;margin:4px 0 12px}h2{font-size:16px;margin:2px 0 10px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 10px 4px 0;border-bottom:1px solid #eef0f2;vertical-align:top}
th{color:#616e7c;font-weight:600;font-size:12px}td.n,th.n{text-align:right}
code,.mono{font:12px ui-monospace,monospace}.muted{color:#7b8794}.bad{color:#ba2525}
.ok{color:#0f7b4a}.flash{padding:8px 12px;border-radius:4px;margin-bottom:12px}
.flash.ok{background:#e3f9e5}.flash.error{background:#ffe3e3;color:#ba2525}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg.chart{background:#fff;border:1px solid #eef0f2;border-radius:4px;max-width:100%;height:auto}
svg .title{font-weight:600;font-size:13px;fill:#1f2933}
svg text{font-size:11px;fill:#52606d}svg .grid{stroke:#eef0f2}svg .axis{stroke:#9aa5b1}
svg .series.members{stroke:#2680c2;stroke-width:2}svg .dot.members{fill:#2680c2}
svg .series.holdout{stroke:#de911d;stroke-width:2;stroke-dasharray:5 3}
svg .dot.holdout{fill:#de911d}svg .value.members{fill:#2680c2;font-weight:600}
svg .value.holdout{fill:#b44d12}svg rect.bar{fill:#2680c2}svg .bar-label{fill:#1f2933}
input[type=text],input[type=password]{padding:6px 8px;border:1px solid #cbd2d9;border-radius:4px;
min-width:280px}button{padding:5px 12px;border:1px solid #2680c2;background:#2680c2;color:#fff;
border-radius:4px;cursor:pointer}button.light{background:#fff;color:#2680c2}
pre{background:#f5f7fa;padding:8px;border-radius:4px;overflow:auto;font-size:12px}
.login{max-width:380px;margin:80px auto}time{white-space:nowrap}
table.changes td:last-child{font-size:12px;color:#52606d}
.report td,.report th{border:1px solid #e4e7eb;padding:3px 8px}
.report .method{color:#616e7c;font-size:12px}
.report .segment{border-top:2px solid #e4e7eb;margin-top:1.5em}
"""

NAV = (
    ("/", "Overview"),
    ("/people", "People"),
    ("/report", "Report"),
    ("/config", "Configuration"),
)


def e(value: object) -> str:
    return escape("" if value is None else str(value))


def when(at_us: int | None) -> str:
    if at_us is None:
        return '<span class="muted">—</span>'
    moment = datetime.fromtimestamp(at_us / 1_000_000, UTC)
    return f'<time datetime="{moment.isoformat()}">{moment:%Y-%m-%d %H:%M:%S}</time>'


def ago(seconds: float | None) -> str:
    if seconds is None:
        return '<span class="muted">—</span>'
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    css: str = "",
    numeric: int = 0,
    row_attrs: Sequence[str] = (),
) -> str:
    """Cells are HTML already; columns from index ``numeric`` on (if > 0) align right;
    ``row_attrs[i]``: attributes (HTML) of row i."""

    def cls(i: int) -> str:
        return ' class="n"' if numeric and i >= numeric else ""

    head = "".join(f"<th{cls(i)}>{e(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        f"<tr{' ' + row_attrs[n] if n < len(row_attrs) else ''}>"
        + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r))
        + "</tr>"
        for n, r in enumerate(rows)
    )
    return f'<table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def page(
    title: str,
    body: str,
    *,
    active: str = "",
    csrf: str | None = None,
    logout: bool = False,
) -> str:
    links = "".join(
        f'<a href="{href}"{" class=on" if href == active else ""}>{e(label)}</a>'
        for href, label in NAV
    )
    out = (
        f'<form method="post" action="/logout"><input type="hidden" name="csrf" '
        f'value="{e(csrf)}"><button class="light" type="submit">Log out</button></form>'
        if logout and csrf
        else ""
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{e(title)} · Tactful</title><style>{STYLE}</style></head><body>"
        f'<header><span class="brand">Tactful</span>{links}{out}</header>'
        f"<main><h1>{e(title)}</h1>{body}</main></body></html>"
    )


def login_page(next_path: str, error: str | None = None) -> str:
    flash = f'<p class="flash error">{e(error)}</p>' if error else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Log in · Tactful</title><style>{STYLE}</style></head><body>"
        '<div class="login"><section><h1>Tactful dashboard</h1>'
        f'{flash}<form method="post" action="/login">'
        f'<input type="hidden" name="next" value="{e(next_path)}">'
        '<p><label for="password">API token or dashboard password</label><br>'
        '<input type="password" id="password" name="password" autocomplete="current-password" '
        'autofocus required></p><p><button type="submit">Log in</button></p>'
        "</form></section></div></body></html>"
    )
