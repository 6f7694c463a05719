"""Webhooks API and Triggers API of the simulator (what ``tactful zendesk install`` calls).

Webhooks (``/api/v2/webhooks``): create → 201 ``{"webhook": {...}}`` with a ULID-like string
id; list with ``filter[name_contains]`` → ``{"webhooks", "meta", "links"}``; show; PATCH and
PUT → 204; DELETE → 204; ``GET …/signing_secret`` → ``{"signing_secret": {"algorithm":
"SHA256", "secret"}}`` and ``POST …/signing_secret`` resets it. A webhook either subscribes
to ``zen:event-type:…`` events (then POST + json) or to ``conditional_ticket_events``
(connected to triggers); the method cannot change later.

Triggers (``/api/v2/triggers``): create → 201 ``{"trigger": {...}}``; list and
``/search?query=`` → ``{"triggers", "count", "next_page", "previous_page"}``; show; PUT → 200;
DELETE → 204. A ``notification_webhook`` action is ``[webhook_id, body_template]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from tactful.testing.sim.objects import iso
from tactful.testing.sim.web import Handler, base_of, body_of, error, json_response, not_found

if TYPE_CHECKING:
    from tactful.testing.sim.state import ZendeskSimulator

TRIGGER_EVENTS = "conditional_ticket_events"
_WEBHOOK_EDITABLE: tuple[str, ...] = ("name", "endpoint", "http_method", "request_format")
_WEBHOOK_EDITABLE += ("status", "subscriptions", "description", "authentication", "custom_headers")


def _invalid(detail: str, pointer: str) -> Response:
    item = {"code": "InvalidValue", "title": "Invalid value", "detail": detail}
    item["source"] = {"pointer": pointer}  # type: ignore[assignment]
    return json_response({"errors": [item]}, 400)


def _check_webhook(hook: dict[str, Any]) -> Response | None:
    for name in ("name", "endpoint", "http_method", "request_format", "status", "subscriptions"):
        if not hook.get(name):
            return _invalid(f"{name} is required", f"/webhook/{name}")
    subs = hook["subscriptions"]
    if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
        return _invalid("subscriptions must be a list of strings", "/webhook/subscriptions")
    if hook["status"] not in ("active", "inactive"):
        return _invalid("status must be active or inactive", "/webhook/status")
    if hook["http_method"] not in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return _invalid("unknown http_method", "/webhook/http_method")
    if subs == [TRIGGER_EVENTS]:
        return None
    if not all(s.startswith("zen:event-type:") for s in subs):
        return _invalid(
            "subscriptions are event types or conditional_ticket_events", "/webhook/subscriptions"
        )
    if hook["http_method"] != "POST" or hook["request_format"] != "json":
        return _invalid("event subscriptions need POST and json", "/webhook/http_method")
    return None


async def create_webhook(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    data = (await body_of(request)).get("webhook")
    if not isinstance(data, dict):
        return _invalid('expected {"webhook": {...}}', "/webhook")
    problem = _check_webhook(data)
    if problem is not None:
        return problem
    with sim.lock:
        now = iso(sim.now())
        hook = {k: data[k] for k in _WEBHOOK_EDITABLE if k in data}
        hook.update(id=sim.new_ulid(), created_at=now, created_by=str(sim.agent_id))
        hook.update(updated_at=now, updated_by=str(sim.agent_id))
        sim.webhooks[hook["id"]] = hook
        sim.since[hook["id"]] = len(sim.activities)
        given = data.get("signing_secret")
        secret = given.get("secret") if isinstance(given, dict) else None
        sim.signing_secrets[hook["id"]] = secret if isinstance(secret, str) else sim.new_secret()
        return json_response({"webhook": hook}, 201)


async def list_webhooks(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    contains = request.query_params.get("filter[name_contains]", "").lower()
    status = request.query_params.get("filter[status]")
    with sim.lock:
        hooks = [
            h
            for h in sim.webhooks.values()
            if contains in h["name"].lower() and status in (None, h["status"])
        ]
    meta = {"has_more": False, "after_cursor": None, "before_cursor": None}
    return json_response({"webhooks": hooks, "meta": meta, "links": {"next": None, "prev": None}})


async def webhook(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    """GET shows, PATCH/PUT change (204), DELETE removes (204)."""
    hook_id = p["webhook_id"]
    with sim.lock:
        hook = sim.webhooks.get(hook_id)
    if hook is None:
        return not_found()
    if request.method == "GET":
        return json_response({"webhook": hook})
    if request.method == "DELETE":
        with sim.lock:
            del sim.webhooks[hook_id]
        return Response(status_code=204)
    data = (await body_of(request)).get("webhook")
    if not isinstance(data, dict):
        return _invalid('expected {"webhook": {...}}', "/webhook")
    changed = {k: data[k] for k in _WEBHOOK_EDITABLE if k in data}
    merged = changed if request.method == "PUT" else {**hook, **changed}
    merged = {**{k: hook[k] for k in hook if k not in _WEBHOOK_EDITABLE}, **merged}
    problem = _check_webhook(merged)
    if problem is not None:
        return problem
    if (merged["subscriptions"] == [TRIGGER_EVENTS]) != (hook["subscriptions"] == [TRIGGER_EVENTS]):
        return _invalid("a webhook's connection method cannot change", "/webhook/subscriptions")
    with sim.lock:
        merged.update(updated_at=iso(sim.now()), updated_by=str(sim.agent_id))
        sim.webhooks[hook_id] = merged
    return Response(status_code=204)


async def signing_secret(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    with sim.lock:
        if p["webhook_id"] not in sim.webhooks:
            return not_found()
        if request.method == "POST":
            sim.signing_secrets[p["webhook_id"]] = sim.new_secret()
        secret = sim.signing_secrets[p["webhook_id"]]
    body = {"signing_secret": {"algorithm": "SHA256", "secret": secret}}
    return json_response(body, 201 if request.method == "POST" else 200)


def _trigger_problem(sim: ZendeskSimulator, data: dict[str, Any]) -> str | None:
    if not isinstance(data.get("title"), str) or not data["title"].strip():
        return "Title: cannot be blank"
    actions = data.get("actions")
    if not isinstance(actions, list) or not actions:
        return "Actions: cannot be blank"
    conditions = data.get("conditions")
    if not isinstance(conditions, dict) or not (conditions.get("all") or conditions.get("any")):
        return "Conditions: cannot be blank"
    for action in actions:
        if isinstance(action, dict) and action.get("field") == "notification_webhook":
            value = action.get("value")
            if not (isinstance(value, list) and len(value) == 2):
                return "notification_webhook takes [webhook_id, body]"
            hook = sim.webhooks.get(str(value[0]))
            if hook is None or hook["subscriptions"] != [TRIGGER_EVENTS]:
                return f"Webhook {value[0]} is not connected to triggers"
    return None


def _trigger_json(
    sim: ZendeskSimulator, base: str, trigger_id: int, data: dict[str, Any]
) -> dict[str, Any]:
    conditions = data["conditions"]
    return {
        "url": f"{base}/api/v2/triggers/{trigger_id}.json",
        "id": trigger_id,
        "title": data["title"],
        "active": data.get("active", True) is not False,
        "updated_at": iso(sim.now()),
        "created_at": data.get("created_at") or iso(sim.now()),
        "default": False,
        "actions": data["actions"],
        "conditions": {"all": conditions.get("all") or [], "any": conditions.get("any") or []},
        "description": data.get("description"),
        "position": data.get("position") or len(sim.triggers) + 1,
        "raw_title": data["title"],
        "category_id": str(data.get("category_id") or "360000000001"),
    }


async def create_trigger(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    data = (await body_of(request)).get("trigger")
    with sim.lock:
        problem = _trigger_problem(sim, data) if isinstance(data, dict) else "trigger missing"
        if problem is not None or not isinstance(data, dict):
            return _record_invalid(problem or "trigger missing")
        trigger_id = sim.next_id("trigger")
        sim.triggers[trigger_id] = _trigger_json(sim, base_of(request), trigger_id, data)
        sim.since[str(trigger_id)] = len(sim.activities)
        return json_response({"trigger": sim.triggers[trigger_id]}, 201)


def _record_invalid(problem: str) -> Response:
    details = {"base": [{"description": problem, "error": "InvalidValue"}]}
    body = {"error": "RecordInvalid", "description": "Record validation errors", "details": details}
    return json_response(body, 422)


async def list_triggers(sim: ZendeskSimulator, request: Request, _: dict[str, str]) -> Response:
    query = request.query_params.get("query", "").lower()
    active = request.query_params.get("active")
    with sim.lock:
        found = [
            t
            for t in sorted(sim.triggers.values(), key=lambda t: (t["position"], t["id"]))
            if query in t["title"].lower() and active in (None, str(t["active"]).lower())
        ]
    return json_response(
        {"triggers": found, "next_page": None, "previous_page": None, "count": len(found)}
    )


async def trigger(sim: ZendeskSimulator, request: Request, p: dict[str, str]) -> Response:
    trigger_id = int(p["trigger_id"])
    with sim.lock:
        current = sim.triggers.get(trigger_id)
        if current is None:
            return not_found()
        if request.method == "GET":
            return json_response({"trigger": current})
        if request.method == "DELETE":
            del sim.triggers[trigger_id]
            return Response(status_code=204)
    data = (await body_of(request)).get("trigger")
    if not isinstance(data, dict):
        return error(400, "InvalidValue", 'expected {"trigger": {...}}')
    with sim.lock:
        merged = {**current, **data, "created_at": current["created_at"]}
        problem = _trigger_problem(sim, merged)
        if problem is not None:
            return _record_invalid(problem)
        sim.triggers[trigger_id] = _trigger_json(sim, base_of(request), trigger_id, merged)
        return json_response({"trigger": sim.triggers[trigger_id]})


ROUTES: list[tuple[str, Handler, list[str]]] = [
    ("/api/v2/webhooks", create_webhook, ["POST"]),
    ("/api/v2/webhooks", list_webhooks, ["GET"]),
    ("/api/v2/webhooks/{webhook_id}/signing_secret", signing_secret, ["GET", "POST"]),
    ("/api/v2/webhooks/{webhook_id}", webhook, ["GET", "PATCH", "PUT", "DELETE"]),
    ("/api/v2/triggers", create_trigger, ["POST"]),
    ("/api/v2/triggers", list_triggers, ["GET"]),
    ("/api/v2/triggers/search", list_triggers, ["GET"]),
    ("/api/v2/triggers/{trigger_id:int}", trigger, ["GET", "PUT", "DELETE"]),
]
