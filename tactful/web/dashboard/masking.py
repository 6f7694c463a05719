"""Masked identifiers on the dashboard (``[api] mask_identifiers``, on by default): emails
read ``a••@example.com`` and phones ``+1•••••••23`` on every page, unless the session logged
in with a credential named in ``[api] show_identifiers_to``.

Whether the current request shows them in full is a context variable the dashboard's guard
sets per request (``showing``); the templates print every identifier through the ``ident``
filter, so no page can forget it. Search still matches the full values: masking changes
what a page shows, never what it finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

DOT = "\u2022"
_SHOW: ContextVar[bool] = ContextVar("tactful_show_identifiers", default=False)
_PHONE = re.compile(r"\+\d{6,15}\b")  # E.164, as identifiers are stored
_EMAIL = re.compile(r"[^\s@,;]+@[^\s@,;]+")


@contextmanager
def showing(show: bool) -> Iterator[None]:
    """Within: pages show identifiers in full (True) or masked (False)."""
    token = _SHOW.set(show)
    try:
        yield
    finally:
        _SHOW.reset(token)


def mask_email(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local:
        return DOT * 3
    return f"{local[0]}{DOT * 2}@{domain}"


def mask_phone(value: str) -> str:
    digits = re.sub(r"\D", "", value)
    if len(digits) <= 4:
        return DOT * len(digits)
    lead = "+" if value.lstrip().startswith("+") else ""
    return f"{lead}{digits[:1]}{DOT * (len(digits) - 3)}{digits[-2:]}"


def mask(text: object, kind: str | None = None) -> str:
    """``text`` as the current request may show it: emails and phones masked (found by
    ``kind`` when given, else by their shape inside the text), everything else as is."""
    value = str(text)
    if _SHOW.get():
        return value
    if kind == "email":
        return mask_email(value)
    if kind == "phone":
        return mask_phone(value)
    if kind is not None:
        return value
    value = _EMAIL.sub(lambda m: mask_email(m.group(0)), value)
    return _PHONE.sub(lambda m: mask_phone(m.group(0)), value)
