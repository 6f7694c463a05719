"""``tactful zendesk install``: the webhook and trigger that send ticket changes to Tactful.

Creates (or brings up to date) through the Zendesk API:

- a webhook named ``Tactful`` that POSTs JSON to ``[zendesk] public_url`` +
  ``/webhooks/zendesk``, connected to triggers (subscription ``conditional_ticket_events``);
- a trigger ``Tactful: ticket created or updated`` (any of: ticket is created, ticket is
  updated) whose action ``notification_webhook`` sends ``RECOMMENDED_TRIGGER_BODY``
  (product.md section 8) to that webhook;

and fetches the webhook's signing secret, which the caller shows once (it is never written to
the configuration file). Running it again changes nothing that is already right.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tactful.zendesk.client import ZendeskClient, ZendeskError

WEBHOOK_NAME = "Tactful"
WEBHOOK_PATH = "/webhooks/zendesk"
TRIGGER_TITLE = "Tactful: ticket created or updated"
TRIGGER_SUBSCRIPTION = "conditional_ticket_events"

# The recommended trigger body, exactly as product.md section 8 gives it.
RECOMMENDED_TRIGGER_BODY = """\
{"ticket": {"id": {{ticket.id}}, "status": "{{ticket.status}}", "priority": "{{ticket.priority}}",
  "tags": "{{ticket.tags}}", "subject": "{{ticket.title}}", "via": "{{ticket.via}}",
  "created_at": "{{ticket.created_at_with_timestamp}}",
  "updated_at": "{{ticket.updated_at_with_timestamp}}",
  "requester": {"id": {{ticket.requester.id}}, "email": "{{ticket.requester.email}}",
    "phone": "{{ticket.requester.phone}}", "external_id": "{{ticket.requester.external_id}}"}}}"""

Action = Literal["created", "updated", "unchanged"]


class InstallError(ZendeskError):
    """Zendesk holds something that install cannot reuse or fix by itself."""


@dataclass(frozen=True)
class InstallResult:
    endpoint: str
    webhook_id: str
    webhook: Action
    trigger_id: str
    trigger: Action
    secret: str


def webhook_endpoint(public_url: str) -> str:
    return public_url.rstrip("/") + WEBHOOK_PATH


def webhook_spec(endpoint: str) -> dict[str, Any]:
    return {
        "name": WEBHOOK_NAME,
        "description": "Ticket changes for Tactful (created by tactful zendesk install)",
        "endpoint": endpoint,
        "http_method": "POST",
        "request_format": "json",
        "status": "active",
        "subscriptions": [TRIGGER_SUBSCRIPTION],
    }


def trigger_spec(webhook_id: str) -> dict[str, Any]:
    return {
        "title": TRIGGER_TITLE,
        "description": "Sends every ticket creation and update to Tactful "
        "(created by tactful zendesk install)",
        "active": True,
        "conditions": {
            "all": [],
            "any": [
                {"field": "update_type", "operator": "is", "value": "Create"},
                {"field": "update_type", "operator": "is", "value": "Change"},
            ],
        },
        "actions": [
            {"field": "notification_webhook", "value": [webhook_id, RECOMMENDED_TRIGGER_BODY]}
        ],
    }


def _webhook_differs(found: dict[str, Any], spec: dict[str, Any]) -> bool:
    keys = ("endpoint", "http_method", "request_format", "status")
    if any(found.get(k) != spec[k] for k in keys):
        return True
    subscriptions: list[Any] = list(found.get("subscriptions") or [])
    wanted: list[Any] = spec["subscriptions"]
    return subscriptions != wanted


def _conditions(value: Any) -> dict[str, list[tuple[str, str, str]]]:
    out: dict[str, list[tuple[str, str, str]]] = {"all": [], "any": []}
    if isinstance(value, dict):
        for group in out:
            for c in value.get(group) or []:
                if isinstance(c, dict):
                    out[group].append(
                        (str(c.get("field")), str(c.get("operator")), str(c.get("value")))
                    )
            out[group].sort()
    return out


def _actions(value: Any) -> list[tuple[str, str]]:
    out = []
    for a in value if isinstance(value, list) else []:
        if isinstance(a, dict):
            v = a.get("value")
            out.append(
                (str(a.get("field")), repr([str(x) for x in v] if isinstance(v, list) else v))
            )
    return out


def _trigger_differs(found: dict[str, Any], spec: dict[str, Any]) -> bool:
    return (
        found.get("active") is not True
        or _conditions(found.get("conditions")) != _conditions(spec["conditions"])
        or _actions(found.get("actions")) != _actions(spec["actions"])
    )


def install(client: ZendeskClient, public_url: str) -> InstallResult:
    """Find-or-create the webhook and the trigger (updating them when they differ)."""
    endpoint = webhook_endpoint(public_url)
    spec = webhook_spec(endpoint)
    named = [w for w in client.list_webhooks(WEBHOOK_NAME) if w.get("name") == WEBHOOK_NAME]
    usable = [w for w in named if TRIGGER_SUBSCRIPTION in (w.get("subscriptions") or [])]
    webhook_action: Action
    if usable:
        hook = usable[0]
        webhook_id = str(hook.get("id"))
        if _webhook_differs(hook, spec):
            client.update_webhook(webhook_id, spec)
            webhook_action = "updated"
        else:
            webhook_action = "unchanged"
    elif named:
        raise InstallError(
            f"a Zendesk webhook named {WEBHOOK_NAME!r} exists but is subscribed to Zendesk "
            "events, not connected to triggers, and Zendesk cannot change that: rename or "
            "delete it in Admin Center (Apps and integrations > Webhooks), then run "
            "tactful zendesk install again"
        )
    else:
        webhook_id = str(client.create_webhook(spec).get("id"))
        webhook_action = "created"
    if not webhook_id or webhook_id == "None":
        raise InstallError("Zendesk did not return the webhook's id")
    secret = client.webhook_signing_secret(webhook_id)

    tspec = trigger_spec(webhook_id)
    titled = [t for t in client.list_triggers() if t.get("title") == TRIGGER_TITLE]
    trigger_action: Action
    if titled:
        trigger = titled[0]
        trigger_id = str(trigger.get("id"))
        if _trigger_differs(trigger, tspec):
            client.update_trigger(trigger_id, tspec)
            trigger_action = "updated"
        else:
            trigger_action = "unchanged"
    else:
        trigger_id = str(client.create_trigger(tspec).get("id"))
        trigger_action = "created"
    return InstallResult(endpoint, webhook_id, webhook_action, trigger_id, trigger_action, secret)


__all__ = [
    "RECOMMENDED_TRIGGER_BODY",
    "TRIGGER_TITLE",
    "WEBHOOK_NAME",
    "WEBHOOK_PATH",
    "InstallError",
    "InstallResult",
    "install",
    "trigger_spec",
    "webhook_endpoint",
    "webhook_spec",
]
