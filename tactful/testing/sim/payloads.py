"""What Zendesk would POST for an ``Activity``: event-subscription envelopes and trigger bodies.

Envelopes follow Zendesk's webhook event-type reference and the recorded ``user.deleted``
invocation: ``{"account_id", "detail", "event", "id" (uuid), "subject" ("zen:ticket:123"),
"time" (nanoseconds), "type" ("zen:event-type:…"), "zendesk_event_version": "2022-11-06"}``,
serialized with sorted keys and three-space indentation as recorded.

Trigger bodies are the admin's template with ``{{placeholders}}`` replaced by display text and
no JSON escaping (a subject with a quote breaks the JSON, as it does in Zendesk): status
``Open``/``On-hold``, priority ``-`` when unset, tags space-separated, ``…_with_timestamp``
times without seconds. Trigger conditions supported: ``update_type``, ``status``,
``priority`` (is, is_not, changed, not_changed, value, value_previous, not_value,
not_value_previous, less_than, greater_than) and ``current_tags`` (includes, not_includes);
any other condition does not match.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from tactful.testing.sim.model import Activity, Json
from tactful.testing.sim.objects import iso_nanos, ticket_detail, user_detail
from tactful.zendesk.install import RECOMMENDED_TRIGGER_BODY as RECOMMENDED_TRIGGER_BODY

EVENT_VERSION = "2022-11-06"

# Recommended trigger: fires on every ticket create and update.
RECOMMENDED_CONDITIONS: Json = {
    "all": [],
    "any": [
        {"field": "update_type", "operator": "is", "value": "Create"},
        {"field": "update_type", "operator": "is", "value": "Change"},
    ],
}
STATUS_DISPLAY = {"new": "New", "open": "Open", "pending": "Pending", "hold": "On-hold"}
STATUS_DISPLAY.update(solved="Solved", closed="Closed", deleted="Deleted")
VIA_DISPLAY = {"web": "Web Form", "email": "Mail", "api": "Web Service"}
VIA_DISPLAY.update(native_messaging="Native Messaging", voice="Phone Call (Incoming)")
_ORDER = ("new", "open", "pending", "hold", "solved", "closed")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.]+)\s*\}\}")


def envelope(activity: Activity, event_type: str, event: Json, account_id: int, uid: str) -> Json:
    if activity.resource == "ticket":
        detail = ticket_detail(activity.snapshot, activity.actor_id)
    else:
        detail = user_detail(activity.snapshot)
    return {
        "account_id": account_id,
        "detail": detail,
        "event": event,
        "id": uid,
        "subject": f"zen:{activity.resource}:{activity.resource_id}",
        "time": iso_nanos(activity.at),
        "type": f"zen:event-type:{event_type}",
        "zendesk_event_version": EVENT_VERSION,
    }


def envelope_bytes(body: Json) -> bytes:
    return (json.dumps(body, indent=3, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _human(value: str) -> str:
    when = _stamp(value)
    return f"{when:%B} {when.day}, {when.year} {when:%H:%M}"


def placeholder(name: str, ticket: Json, requester: Json | None, subdomain: str) -> str:
    """Display text of one placeholder (unknown ones render empty, as in Zendesk)."""
    req = requester or {}
    fields = {str(f["id"]): f.get("value") for f in ticket.get("custom_fields") or ()}
    simple: dict[str, Any] = {
        "ticket.id": ticket["id"],
        "ticket.status": STATUS_DISPLAY.get(ticket["status"], ticket["status"]),
        "ticket.priority": (ticket["priority"] or "-").capitalize(),
        "ticket.tags": " ".join(ticket["tags"]),
        "ticket.title": ticket["subject"],
        "ticket.description": ticket["description"],
        "ticket.via": VIA_DISPLAY.get(ticket["via"]["channel"], ticket["via"]["channel"]),
        "ticket.ticket_type": (ticket["type"] or "-").capitalize(),
        "ticket.created_at_with_timestamp": ticket["created_at"][:16] + "Z",
        "ticket.updated_at_with_timestamp": ticket["updated_at"][:16] + "Z",
        "ticket.created_at": _human(ticket["created_at"]),
        "ticket.updated_at": _human(ticket["updated_at"]),
        "ticket.url": f"{subdomain}.zendesk.com/agent/tickets/{ticket['id']}",
        "ticket.external_id": ticket["external_id"],
        "ticket.requester.id": req.get("id"),
        "ticket.requester.name": req.get("name"),
        "ticket.requester.first_name": (req.get("name") or "").split(" ")[0],
        "ticket.requester.email": req.get("email"),
        "ticket.requester.phone": req.get("phone"),
        "ticket.requester.external_id": req.get("external_id"),
        "satisfaction.current_rating": ticket["satisfaction_rating"].get("score"),
    }
    if name.startswith("ticket.ticket_field_"):
        value = fields.get(name.removeprefix("ticket.ticket_field_"))
    else:
        value = simple.get(name)
    return "" if value is None else str(value)


def render(template: str, activity: Activity, subdomain: str) -> str:
    def one(match: re.Match[str]) -> str:
        return placeholder(match[1], activity.snapshot, activity.requester, subdomain)

    return _PLACEHOLDER.sub(one, template)


def _condition(cond: Any, activity: Activity) -> bool:
    if not isinstance(cond, dict):
        return False
    field, op, value = cond.get("field"), cond.get("operator"), cond.get("value")
    now, before = activity.snapshot, activity.previous or {}
    if field == "update_type":
        return op == "is" and value == activity.update_type
    if field == "current_tags":
        wanted = set(str(value or "").split())
        tags = set(now["tags"])
        return bool(wanted & tags) if op == "includes" else not (wanted & tags)
    if field not in ("status", "priority"):
        return False
    cur, old = now.get(field), before.get(field) if activity.previous else None
    changed = activity.previous is not None and cur != old
    checks: dict[str, bool] = {
        "is": cur == value,
        "is_not": cur != value,
        "changed": changed,
        "not_changed": not changed,
        "value": changed and cur == value,
        "value_previous": changed and old == value,
        "not_value": changed and cur != value,
        "not_value_previous": changed and old != value,
    }
    if field == "status" and op in ("less_than", "greater_than") and value in _ORDER:
        if cur not in _ORDER:
            return False
        diff = _ORDER.index(cur) - _ORDER.index(value)
        return diff < 0 if op == "less_than" else diff > 0
    return checks.get(str(op), False)


def conditions_match(conditions: Json | None, activity: Activity) -> bool:
    """Trigger conditions against a ticket update (``None``: the recommended ones)."""
    if activity.resource != "ticket" or activity.update_type is None:
        return False
    conds = RECOMMENDED_CONDITIONS if conditions is None else conditions
    all_of = conds.get("all") or []
    any_of = conds.get("any") or []
    return all(_condition(c, activity) for c in all_of) and (
        not any_of or any(_condition(c, activity) for c in any_of)
    )
