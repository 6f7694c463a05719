"""The page frame (``templates/dashboard/base.html``) and the login page. Styles are
``static/dashboard.css``; the pages carry no inline style or script."""

from __future__ import annotations

from markupsafe import Markup

from tactful.web.templating import render

NAV = (
    ("/", "Overview"),
    ("/people", "People"),
    ("/segments", "Segments"),
    ("/report", "Report"),
    ("/config", "Configuration"),
)


def page(
    title: str,
    body: str,
    *,
    active: str = "",
    csrf: str | None = None,
    logout: bool = False,
    rebuilding: bool = False,
) -> str:
    """``body`` is HTML rendered by a template (trusted); everything else is escaped."""
    return render(
        "dashboard/base.html",
        title=title,
        body=Markup(body),
        nav=NAV,
        active=active,
        csrf=csrf,
        logout=logout,
        rebuilding=rebuilding,
    )


def login_page(next_path: str, error: str | None = None) -> str:
    return render("dashboard/login.html", next_path=next_path, error=error)
