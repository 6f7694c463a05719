"""Take an erased person out of a raw document other persons' events also came from.

A document (an export page, an API request body, a webhook body) is JSON. Its records that
are the person's are dropped from their lists: a user whose id is the person's Zendesk user
id, a ticket or any record naming one of the person's tickets (``ticket_id``) or the person as
requester (``requester_id``) or CSAT survey responder (``responder_id``, or its ticket in
``subject_zrns``), an API item whose ``person`` is one of the person's
identifiers. What else names the person is replaced by ``[erased]`` (or ``null`` for a number),
in any raw form the edges accept: an email in any case, a phone number as typed (spaces,
dashes, brackets, national or international), an external id, a Zendesk user id under a
``*_id`` key, also inside longer text (an email or phone in a ticket subject).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

REDACTED = "[erased]"
_DROP = object()
# Keys whose value is a Zendesk user id, and the containers whose objects are users/tickets.
USER_ID_KEYS = frozenset(
    {
        "requester_id",
        "submitter_id",
        "assignee_id",
        "author_id",
        "updater_id",
        "user_id",
        "actor_id",
        "source_user_id",
        "target_user_id",
        "zendesk_user_id",
        "responder_id",  # a CSAT survey response's user
    }
)
USER_CONTAINERS = frozenset({"users", "user", "requester", "submitter", "author"})
TICKET_CONTAINERS = frozenset({"tickets", "ticket"})
_PHONE_SHAPED = re.compile(r"\+?[\d\s\-().]{7,}")
_SEP = r"[\s\-().]*"


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def _phone_pattern(e164: str) -> re.Pattern[str] | None:
    """A number as people type it: optional ``+`` and country code, then the national digits
    with any separators between them."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return None
    national = str(number.national_number)
    country = _SEP.join(str(number.country_code))
    digits = _SEP.join(re.escape(d) for d in national)
    prefix = rf"(?:(?:\+|00)?{_SEP}{country}{_SEP})?0?{_SEP}"
    return re.compile(rf"(?<!\d)(?=[+(\d]){prefix}{digits}(?!\d)")


@dataclass(frozen=True)
class Erased:
    """What names the erased person: normalized identifiers (with ``("person_id", id)``)
    and ticket ids."""

    identifiers: frozenset[tuple[str, str]]
    ticket_ids: frozenset[int]
    user_ids: frozenset[int] = field(init=False)
    values: frozenset[str] = field(init=False)  # emails (lower case) and external ids
    texts: tuple[re.Pattern[str], ...] = field(init=False)  # emails and phones inside text
    phone_digits: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        ids = self.identifiers
        users = frozenset(int(v) for k, v in ids if k == "zendesk_user_id" and v.isdigit())
        values = frozenset(
            v.lower() if k == "email" else v
            for k, v in ids
            if k in ("email", "external_id", "person_id")
        )
        texts = [re.compile(re.escape(v), re.IGNORECASE) for k, v in ids if k == "email"]
        phones = [v for k, v in ids if k == "phone"]
        texts += [p for p in map(_phone_pattern, phones) if p is not None]
        object.__setattr__(self, "user_ids", users)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "texts", tuple(texts))
        object.__setattr__(self, "phone_digits", tuple(p.lstrip("+") for p in phones))

    @classmethod
    def of(cls, identifiers: Iterable[tuple[str, str]], ticket_ids: Iterable[int]) -> Erased:
        return cls(frozenset(identifiers), frozenset(ticket_ids))

    def names(self, text: str) -> bool:
        """Whether a whole string value is one of the identifiers, in any raw form."""
        value = text.strip()
        if value.lower() in self.values or value in self.values:
            return True
        if _PHONE_SHAPED.fullmatch(value):
            digits = re.sub(r"\D", "", value).lstrip("0")
            return len(digits) >= 7 and any(p.endswith(digits) for p in self.phone_digits)
        return False

    def scrub(self, text: str) -> str:
        for pattern in self.texts:
            text = pattern.sub(REDACTED, text)
        return text


def _belongs(obj: dict[str, Any], container: str | None, erased: Erased) -> bool:
    """Whether a record in a list is the person's own (dropped whole)."""
    ident = _as_int(obj.get("id"))
    if container in USER_CONTAINERS and ident in erased.user_ids:
        return True
    if container in TICKET_CONTAINERS and ident in erased.ticket_ids:
        return True
    if _as_int(obj.get("ticket_id")) in erased.ticket_ids:
        return True
    if _as_int(obj.get("requester_id")) in erased.user_ids:
        return True
    if _as_int(obj.get("responder_id")) in erased.user_ids:
        return True
    zrns = obj.get("subject_zrns")  # a CSAT survey response: ["zen:ticket:501"]
    if isinstance(zrns, list) and any(
        isinstance(z, str)
        and z.startswith("zen:ticket:")
        and _as_int(z.removeprefix("zen:ticket:")) in erased.ticket_ids
        for z in zrns
    ):
        return True
    person = obj.get("person")
    if isinstance(person, dict):
        return any(
            (isinstance(v, str) and erased.names(v))
            or (k in USER_ID_KEYS and _as_int(v) in erased.user_ids)
            for k, v in person.items()
        )
    return False


def _walk(value: Any, key: str | None, container: str | None, erased: Erased) -> Any:
    if isinstance(value, dict):
        if container is not None and _belongs(value, container, erased):
            return _DROP
        out: dict[str, Any] = {}
        for k, v in value.items():
            item = _walk(v, k, None, erased)
            out[k] = None if item is _DROP else item
        return out
    if isinstance(value, list):
        items = (_walk(v, None, key or container, erased) for v in value)
        return [v for v in items if v is not _DROP]
    if key in USER_ID_KEYS and _as_int(value) in erased.user_ids:
        return None if isinstance(value, int) else REDACTED
    if isinstance(value, str):
        return REDACTED if erased.names(value) else erased.scrub(value)
    return value


def redact(document: Any, erased: Erased) -> Any:
    """The document without the erased person (a new value; the input is not changed)."""
    result = _walk(document, None, None, erased)
    return None if result is _DROP else result
