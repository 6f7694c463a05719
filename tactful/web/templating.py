"""Jinja2 templates (autoescaped) for the sidebar and the dashboard, through Starlette's
``Jinja2Templates``; the packaged files are under ``tactful/web/templates``."""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.templating import Jinja2Templates

from tactful.web.dashboard.masking import mask

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("tactful.web", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["ident"] = mask  # identifiers, masked unless the request may see them
TEMPLATES = Jinja2Templates(env=ENV)


def render(name: str, **context: Any) -> str:
    """A template rendered to a string (fragments and pages alike)."""
    return TEMPLATES.get_template(name).render(**context)
