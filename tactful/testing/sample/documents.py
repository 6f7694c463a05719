"""The Zendesk API's user and ticket documents, field by field in the API's order, as the
sample exports and the simulator (``tactful.testing.sim.objects``) both write them: the
fields each fills in are parameters, the rest is what Zendesk shows for an end user or a
ticket of one brand, form and support address. Key order is part of the output (exports
are compared byte for byte for a seed)."""

from __future__ import annotations

from typing import Any

BRAND_ID = 360_000_123_451
TICKET_FORM_ID = 360_000_223_451
CUSTOM_STATUS_IDS = {
    "new": 360_000_810_001,
    "open": 360_000_810_002,
    "pending": 360_000_810_003,
    "hold": 360_000_810_004,
    "solved": 360_000_810_005,
    "closed": 360_000_810_005,
    "deleted": 360_000_810_005,
}
NO_SOURCE: dict[str, Any] = {"from": {}, "to": {}, "rel": None}  # ``via.source`` of a web form


def user_document(
    *,
    base_url: str,
    user_id: int,
    name: str,
    email: str | None,
    created_at: str,
    updated_at: str,
    time_zone: tuple[str, str],
    phone: str | None,
    role: str,
    external_id: str | None,
    tags: list[str],
    active: bool,
    user_fields: dict[str, Any],
) -> dict[str, Any]:
    """A user as ``GET /api/v2/users/{id}`` shows it; ``time_zone``: (Zendesk's name, the
    IANA name). A deleted user (``active`` false) also carries ``permanently_deleted``,
    which the caller sets."""
    return {
        "id": user_id,
        "url": f"{base_url}/api/v2/users/{user_id}.json",
        "name": name,
        "email": email,
        "created_at": created_at,
        "updated_at": updated_at,
        "time_zone": time_zone[0],
        "iana_time_zone": time_zone[1],
        "phone": phone,
        "shared_phone_number": False if phone else None,
        "photo": None,
        "locale_id": 1,
        "locale": "en-US",
        "organization_id": None,
        "role": role,
        "verified": email is not None,
        "external_id": external_id,
        "tags": tags,
        "alias": None,
        "active": active,
        "shared": False,
        "shared_agent": False,
        "last_login_at": None,
        "two_factor_auth_enabled": False,
        "signature": None,
        "details": None,
        "notes": None,
        "role_type": None,
        "custom_role_id": None,
        "moderator": False,
        "ticket_restriction": "requested",
        "only_private_comments": False,
        "restricted_agent": True,
        "suspended": False,
        "default_group_id": None,
        "report_csv": False,
        "user_fields": user_fields,
    }


def ticket_document(
    *,
    base_url: str,
    ticket_id: int,
    external_id: str | None,
    via: dict[str, Any],
    created_at: str,
    updated_at: str | None,
    type: str | None,
    subject: str,
    description: str,
    priority: str | None,
    status: str | None,
    recipient: str | None,
    requester_id: int,
    submitter_id: int,
    assignee_id: int | None,
    group_id: int | None,
    tags: list[str] | None,
    custom_fields: list[dict[str, Any]],
    fields: list[dict[str, Any]],
    satisfaction_rating: dict[str, Any] | None,
    custom_status_id: int | None,
    brand_id: int,
    generated_timestamp: int | None,
) -> dict[str, Any]:
    """A ticket as ``GET /api/v2/tickets/{id}`` shows it (its channel is ``via``'s)."""
    messaging = via["channel"] == "native_messaging"
    return {
        "url": f"{base_url}/api/v2/tickets/{ticket_id}.json",
        "id": ticket_id,
        "external_id": external_id,
        "via": via,
        "created_at": created_at,
        "updated_at": updated_at,
        "type": type,
        "subject": subject,
        "raw_subject": subject,
        "description": description,
        "priority": priority,
        "status": status,
        "recipient": recipient,
        "requester_id": requester_id,
        "submitter_id": submitter_id,
        "assignee_id": assignee_id,
        "organization_id": None,
        "group_id": group_id,
        "collaborator_ids": [],
        "follower_ids": [],
        "email_cc_ids": [],
        "forum_topic_id": None,
        "problem_id": None,
        "has_incidents": False,
        "is_public": True,
        "due_at": None,
        "tags": tags,
        "custom_fields": custom_fields,
        "satisfaction_rating": satisfaction_rating,
        "sharing_agreement_ids": [],
        "custom_status_id": custom_status_id,
        "fields": fields,
        "followup_ids": [],
        "ticket_form_id": TICKET_FORM_ID,
        "brand_id": brand_id,
        "allow_channelback": messaging,
        "allow_attachments": True,
        "from_messaging_channel": messaging,
        "generated_timestamp": generated_timestamp,
    }
