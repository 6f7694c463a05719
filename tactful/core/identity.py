"""Normalization of person identifiers (pure functions, no I/O).

Two identifiers point at the same person only when their normalized forms are equal, so
every identifier is normalized once, at the boundary, by these functions:

- email: trimmed and lower-cased (the whole address; providers treat the local part as
  case-insensitive in practice). Values that are not plausibly an address give ``None``.
- phone: E.164 (``+15559876543``) via ``phonenumbers``. National numbers are read in the
  configured ``default_region``. We accept numbers that are *possible* (right length for
  the country) rather than *valid* (assigned ranges): fictional ``555`` numbers used in
  tests and docs, and freshly allocated ranges that the library does not know yet, would
  otherwise be dropped, and dropping a real customer's phone silently loses a match.
- external_id: trimmed; case is kept (it is another system's opaque key).
- zendesk_user_id: digits only, canonical integer text (no leading zeros).

All functions return ``None`` for values that cannot be used, never raise on bad input.
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from tactful.core.events import Identifier, IdentifierKind

__all__ = [
    "normalize_email",
    "normalize_external_id",
    "normalize_identifier",
    "normalize_phone",
    "normalize_zendesk_user_id",
]

_WHITESPACE = re.compile(r"\s")
_DIGITS = re.compile(r"[0-9]+")


def normalize_email(raw: str) -> str | None:
    """Trim and lower-case ``raw``; ``None`` unless it looks like ``local@domain.tld``.

    Plausible means: exactly one ``@``, a non-empty local part, a domain with a dot and no
    empty labels (``a@.com``, ``a@b.`` are rejected), and no whitespace inside.
    """
    value = raw.strip().lower()
    if not value or _WHITESPACE.search(value) or value.count("@") != 1:
        return None
    local, domain = value.split("@")
    if not local or "." not in domain:
        return None
    if any(not label for label in domain.split(".")):
        return None
    return value


@lru_cache(maxsize=65536)
def normalize_phone(raw: str, default_region: str | None) -> str | None:
    """Return ``raw`` in E.164, or ``None`` when it cannot be read as a possible number.

    A number without ``+`` is read as a national number of ``default_region`` (e.g.
    ``"US"``); with no default region such numbers give ``None``. Possibility (length and
    country code), not validity, is checked: see the module docstring.
    """
    text = raw.strip()
    if not text or not any(ch.isdigit() for ch in text):
        return None
    region = default_region.upper() if default_region else None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_external_id(raw: str) -> str | None:
    """Trim ``raw``; empty gives ``None``. Case is significant and kept."""
    value = raw.strip()
    return value or None


def normalize_zendesk_user_id(raw: str | int) -> str | None:
    """Canonical decimal text of a positive Zendesk user id (``" 007 "`` -> ``"7"``)."""
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return str(raw) if raw > 0 else None
    text = raw.strip()
    if not _DIGITS.fullmatch(text):
        return None
    value = int(text)
    return str(value) if value > 0 else None


def normalize_identifier(
    kind: IdentifierKind, raw: str, default_region: str | None = None
) -> Identifier | None:
    """Normalize ``raw`` as an identifier of ``kind``; ``None`` when it is unusable.

    ``person_id`` (Tactful's own id) is only trimmed, like ``external_id``.
    """
    value: str | None
    if kind == "email":
        value = normalize_email(raw)
    elif kind == "phone":
        value = normalize_phone(raw, default_region)
    elif kind == "zendesk_user_id":
        value = normalize_zendesk_user_id(raw)
    elif kind in ("external_id", "person_id"):
        value = normalize_external_id(raw)
    else:  # pragma: no cover - guarded by the type
        raise ValueError(f"unknown identifier kind {kind!r}")
    return Identifier(kind, value) if value is not None else None
