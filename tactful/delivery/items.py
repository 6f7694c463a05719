"""Delivery rows → ``Item``s, at send time: the freshest state, consent applied.

A person without consent for the destination's purpose gets no identifiers and the item is
skipped (an ad audience member who withdrew consent is removed instead, if Tactful added
them). The ESP profile carries the §3 fields plus the Zendesk vars and the
``eligible_<segment>`` flags.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from tactful.core import codec
from tactful.core.state import INFERRED_FIELD_NAMES, TicketRecord
from tactful.delivery.store import DeliveryRow
from tactful.destinations.base import Identifiers, Item
from tactful.destinations.profiles import eligibility_attributes
from tactful.readmodels.views import state_json
from tactful.store.base import PersonRow
from tactful.store.records import from_us

MAX_TICKETS_IN_PROFILE = 20


def identifiers_of(idents: Sequence[tuple[str, str]]) -> Identifiers:
    by: dict[str, list[str]] = {}
    for kind, value in idents:
        by.setdefault(kind, []).append(value)
    return Identifiers(
        emails=tuple(by.get("email", ())),
        phones=tuple(by.get("phone", ())),
        external_ids=tuple(by.get("external_id", ())),
        zendesk_user_ids=tuple(by.get("zendesk_user_id", ())),
    )


def zendesk_vars(
    state: Mapping[str, Any],
    tickets: Sequence[TicketRecord],
    ids: Identifiers,
    subdomain: str | None,
) -> dict[str, Any]:
    """The Zendesk vars product.md §9 gives ESP profiles."""
    user_id = ids.zendesk_user_ids[0] if ids.zendesk_user_ids else None
    base = f"https://{subdomain}.zendesk.com" if subdomain else None
    counted = sorted(
        (t for t in tickets if t.counted and t.version is not None),
        key=lambda t: t.version.updated_at if t.version else datetime.min,
        reverse=True,
    )[:MAX_TICKETS_IN_PROFILE]
    listed = []
    created = None
    for t in counted:
        v = t.version
        assert v is not None
        created = v.created_at if created is None or v.created_at < created else created
        listed.append(
            {
                "id": t.ticket_id,
                "created_at": codec.format_time(v.created_at),
                "updated_at": codec.format_time(v.updated_at),
                "status": t.status,
                "subject": v.subject,
                "channel": v.channel,
                "url": f"{base}/agent/tickets/{t.ticket_id}" if base else None,
            }
        )
    return {
        "zendesk_id": user_id,
        "zendesk_tags": list(state.get("ticket_tags") or []),
        "zendesk_created": codec.format_time(created) if created else None,
        "zendesk_ticket_count": state.get("ticket_count", 0),
        "zendesk_tickets": listed,
        "zendesk_profile_url": f"{base}/agent/users/{user_id}" if base and user_id else None,
        "zendesk_health": state.get("health"),
    }


def build_item(
    row: DeliveryRow,
    person: PersonRow | None,
    ids: Identifiers,
    tickets: Sequence[TicketRecord],
    subdomain: str | None,
    segments: Sequence[str] = (),
    *,
    inferences: bool = False,
) -> Item:
    """``inferences``: the destination opted in to the fields inferred from what customers
    write (``INFERRED_FIELD_NAMES``); without it they are left out of profiles and events."""
    properties: dict[str, Any]
    if row.kind == "profile" and person is not None:
        properties = state_json(person.state)
        properties.update(zendesk_vars(person.state, tickets, ids, subdomain))
        properties.update(eligibility_attributes(person.memberships, segments))
        if not inferences:
            for name in INFERRED_FIELD_NAMES:
                properties.pop(name, None)
    elif row.kind == "event":
        properties = dict(row.payload)
        properties.setdefault("person_id", row.person_id)
        if not inferences:
            properties = _without_inferences(properties)
    else:
        properties = {}
    return Item(
        key=f"{row.destination}:{row.key}",
        kind=row.kind,  # type: ignore[arg-type]
        person_id=row.person_id,
        at=from_us(row.at_us),
        identifiers=ids,
        name=row.name if row.kind == "event" else "",
        segment=row.segment,
        properties=properties,
        consent={} if person is None else {p: bool(v.value) for p, v in person.facts.consent},
    )


def _without_inferences(payload: dict[str, Any]) -> dict[str, Any]:
    """A ``support_state_changed`` payload without the inferred fields (``changed``,
    ``values``)."""
    changed = payload.get("changed")
    values = payload.get("values")
    if not isinstance(changed, list) or not isinstance(values, dict):
        return payload
    out = dict(payload)
    out["changed"] = [name for name in changed if name not in INFERRED_FIELD_NAMES]
    out["values"] = {k: v for k, v in values.items() if k not in INFERRED_FIELD_NAMES}
    return out
