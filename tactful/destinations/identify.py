"""``identify_by``: which of a person's identifiers a destination addresses them by (pure).

The brand's own systems know people by their email, their external id (the brand's customer
id, as Zendesk holds it), sometimes their Zendesk user id; Tactful's ``p_…`` person id joins
nothing outside Tactful. Each ESP and analytics destination takes an ``identify_by`` list in
fallback order: the first kind the item has a (consented) value for addresses the person, for
profiles, events, unsubscribes and erasure alike.

Kinds: ``email``, ``phone``, ``external_id``, ``zendesk_user_id``, ``person_id`` (always
present). Which kinds a type accepts, and its default order, its module declares (an
:class:`IdentifyBy` in its ``SPEC``; validated with the rest of the config).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tactful.destinations.base import Item


@dataclass(frozen=True)
class IdentifyBy:
    """The identifier kinds a type accepts in ``identify_by``, and its default order."""

    accepted: tuple[str, ...]
    default: tuple[str, ...]


ESP_IDENTIFY_BY = IdentifyBy(
    ("email", "external_id", "zendesk_user_id", "person_id"), ("email", "external_id")
)
ANALYTICS_IDENTIFY_BY = IdentifyBy(
    ("external_id", "email", "zendesk_user_id", "person_id"), ("external_id", "person_id")
)


def candidates(item: Item, kind: str) -> tuple[str, ...]:
    """The item's non-blank values of one identifier kind, trimmed, in order."""
    ids = item.identifiers
    raw: tuple[str, ...] = {
        "email": ids.emails,
        "phone": ids.phones,
        "external_id": ids.external_ids,
        "zendesk_user_id": ids.zendesk_user_ids,
        "person_id": (item.person_id,),
    }.get(kind, ())
    return tuple(v.strip() for v in raw if v and v.strip())


def pick(item: Item, order: Sequence[str]) -> tuple[str, str] | None:
    """``(kind, value)`` of the first kind in ``order`` the item has a value for."""
    for kind in order:
        values = candidates(item, kind)
        if values:
            return kind, values[0]
    return None


def about_no_one(item: Item) -> bool:
    """An item that concerns no identifiable person (the ``person_erased`` notice an
    analytics tool gets: ``tactful.delivery.worker.erase_item``). Destinations send it
    without any user id: never Tactful's ``p_…`` id, never an identifier."""
    return not item.person_id


def identify_by_of(config: Any, identify: IdentifyBy) -> tuple[str, ...]:
    """A destination's configured order (validated already), else its type's default.

    The older analytics setting ``user_id = "external_id"`` means ``["external_id",
    "person_id"]`` and ``user_id = "person_id"`` means ``["person_id"]``."""
    value = config.settings.get("identify_by")
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value:
        return tuple(str(v) for v in value)
    legacy = config.settings.get("user_id")
    if legacy == "external_id":
        return ("external_id", "person_id")
    if legacy == "person_id":
        return ("person_id",)
    return identify.default
