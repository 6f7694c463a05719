"""Agent actions: health, promo override, opt-out, list removal, email change.

Each action is claimed in ``agent_actions`` under an idempotency key (agent + action + the
form's ``idem``) before anything happens, so a double click runs it once; the row records
the agent (the token's ``sub``), the time, and the outcome. Health and override become
canonical events committed through the writer (they flow to segments and destinations like
any other change); ESP actions call the ESP and nothing else, so a refusal leaves nothing
half-done. An email change goes ESP → Zendesk → Tactful and undoes the ESP step when
Zendesk refuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tactful.core.events import HealthSet, Identifier, OverrideSet, UserSeen
from tactful.core.identity import normalize_email
from tactful.destinations.profiles import MarketingProfile, ProfileError
from tactful.engine.engine import Incoming
from tactful.store.records import to_us
from tactful.web.sidebar import notes
from tactful.web.sidebar.auth import Agent
from tactful.web.sidebar.panel import HEALTH_CHOICES, find_person
from tactful.web.sidebar.records import begin_action, finish_action
from tactful.web.sidebar.state import EspUnavailable, SidebarState
from tactful.zendesk.client import ZendeskError

ACTIONS = ("health", "override", "optout", "remove-list", "change-email", "note")
MAX_OVERRIDE_DAYS = 365


class BadInput(ValueError):
    pass


@dataclass
class Result:
    ok: bool
    message: str
    email: str  # the address the panel should show afterwards


def _params(action: str, form: dict[str, str]) -> dict[str, Any]:
    if action == "health":
        health = form.get("health", "")
        if health not in HEALTH_CHOICES:
            raise BadInput(f"health must be one of {', '.join(HEALTH_CHOICES)}")
        return {"health": health}
    if action == "override":
        try:
            days = int(form.get("days", ""))
        except ValueError as exc:
            raise BadInput("days must be a whole number") from exc
        if not 0 <= days <= MAX_OVERRIDE_DAYS:
            raise BadInput(f"days must be between 0 and {MAX_OVERRIDE_DAYS}")
        return {"days": days}
    if action == "optout":
        value = form.get("opted_out", "")
        if value not in ("true", "false"):
            raise BadInput("opted_out must be true or false")
        return {"opted_out": value == "true"}
    if action == "remove-list":
        list_id = form.get("list_id", "").strip()
        if not list_id:
            raise BadInput("list_id is required")
        return {"list_id": list_id}
    if action == "change-email":
        new = normalize_email(form.get("new_email", ""))
        if new is None:
            raise BadInput("new_email is not a usable email address")
        return {"new_email": new}
    if action == "note":
        of = form.get("of", "")
        if not of.isascii() or not of.isdigit():
            raise BadInput("of (the action to add as a note) is required")
        return {"of": int(of)}
    raise BadInput(f"unknown action {action!r}")


async def run(state: SidebarState, agent: Agent, action: str, form: dict[str, str]) -> Result:
    email = form.get("email", "").strip()
    idem = form.get("idem", "").strip()
    if not email:
        raise BadInput("email is required")
    if not 8 <= len(idem) <= 100:
        raise BadInput("idem (the form's idempotency key) is required")
    params = _params(action, form)
    person_id, problem = find_person(state, email)
    if person_id is None and action in ("health", "override", "note"):
        raise BadInput(problem or "unknown requester")
    if action == "note":
        assert person_id is not None
        try:
            ok, message = await notes.add(state, agent, int(params["of"]), person_id)
        except notes.NoteRefused as exc:
            raise BadInput(str(exc)) from exc
        return Result(ok, message, email)
    now = state.clock()
    store = state.ctx.engine.store
    key = f"{agent.account}:{agent.sub}:{action}:{idem}"
    earlier = await asyncio.to_thread(
        begin_action,
        store,
        key,
        at_us=to_us(now),
        agent=agent.sub,
        account=agent.account,
        person_id=person_id,
        email=email,
        action=action,
        params=params,
    )
    if earlier is not None:
        if earlier.status == "running":
            return Result(True, "This action is already under way.", email)
        shown = params.get("new_email", email) if earlier.status == "done" else email
        return Result(earlier.status == "done", f"Already handled: {earlier.result}", shown)
    try:
        result = await _perform(state, agent, action, params, email, person_id, key)
    except Exception as exc:  # recorded, then shown; never left "running"
        result = Result(False, f"{action} failed: {type(exc).__name__}: {exc}", email)
    status = "done" if result.ok else ("partial" if "partly" in result.message else "failed")
    await asyncio.to_thread(finish_action, store, key, status, result.message, to_us(now))
    return result


async def _perform(
    state: SidebarState,
    agent: Agent,
    action: str,
    params: dict[str, Any],
    email: str,
    person_id: str | None,
    key: str,
) -> Result:
    now = state.clock()
    if action in ("health", "override"):
        assert person_id is not None
        who = Identifier("person_id", person_id)
        event: HealthSet | OverrideSet
        if action == "health":
            event = HealthSet(f"sidebar:{key}", now, who, params["health"], agent.sub)
            done = f"Health set to {params['health']}."
        else:
            days = int(params["days"])
            until = now + timedelta(days=days) if days else None
            event = OverrideSet(f"sidebar:{key}", now, who, until, agent.sub)
            done = (
                f"Promos suppressed for {days} days (until {until:%Y-%m-%d %H:%M} UTC)."
                if until
                else "Promo suppression lifted."
            )
        stats = await state.ctx.commit([Incoming([event], None, "sidebar")])
        refused = [reason for k, reason in stats.rejected if k == event.key]
        if refused:
            return Result(False, f"Tactful refused it: {refused[0]}", email)
        return Result(True, done, email)
    try:
        if action == "optout":
            wanted = bool(params["opted_out"])
            await state.call_esp(lambda esp: esp.set_optout(email, wanted))
            word = "opted out" if wanted else "opted back in"
            shown = await _read_back(
                state,
                email,
                lambda p: p is not None and p.opted_out is wanted,
                f"the profile reads {'opted out' if wanted else 'subscribed'}",
            )
            return Result(True, f"{email} {word} at {state.esp_name}. {shown}", email)
        if action == "remove-list":
            list_id = params["list_id"]
            await state.call_esp(lambda esp: esp.remove_from_list(email, list_id))
            shown = await _read_back(
                state,
                email,
                lambda p: p is not None and list_id not in p.lists,
                "the profile is no longer on that list",
            )
            return Result(True, f"Removed from list {list_id}. {shown}", email)
        return await _change_email(state, email, params["new_email"], person_id, now, key)
    except (ProfileError, EspUnavailable) as exc:
        return Result(
            False, f"{state.esp_name or 'The ESP'} refused it, nothing changed: {exc}", email
        )


async def _change_email(
    state: SidebarState, old: str, new: str, person_id: str | None, now: Any, key: str
) -> Result:
    """ESP first (the profile keeps its data), then the Zendesk user, then Tactful."""
    await state.call_esp(lambda esp: esp.change_email(old, new))
    shown = await _read_back(
        state, new, lambda p: p is not None and p.email == new, f"the profile is at {new}"
    )
    zendesk_id = _zendesk_user_id(state, person_id)
    if zendesk_id is None:
        return Result(
            True,
            f"{state.esp_name} profile moved to {new}. {shown} No Zendesk user is linked to "
            "this person in Tactful, so Zendesk and Tactful were not changed.",
            new,
        )
    client = state.zendesk()
    if client is None:
        return Result(
            True,
            f"{state.esp_name} profile moved to {new}. {shown} The Zendesk API is not "
            "configured ([zendesk] email and api_token), so the Zendesk user was not changed.",
            new,
        )
    try:
        await asyncio.to_thread(client.change_email, zendesk_id, old, new)
    except ZendeskError as exc:
        try:
            await state.call_esp(lambda esp: esp.change_email(new, old))
        except (ProfileError, EspUnavailable) as undo:
            return Result(
                False,
                f"partly done: {state.esp_name} profile moved to {new}, but Zendesk refused "
                f"({exc}) and moving it back failed ({undo}). Fix the ESP profile by hand.",
                new,
            )
        return Result(False, f"Zendesk refused the change, nothing changed: {exc}", old)
    finally:
        client.close()
    seen = UserSeen(f"sidebar:{key}", now, zendesk_id, emails=(new,))
    await state.ctx.commit([Incoming([seen], None, "sidebar")])
    done = f"Email changed to {new} at {state.esp_name}, Zendesk and Tactful. {shown}"
    return Result(True, done, new)


async def _read_back(
    state: SidebarState,
    email: str,
    done: Callable[[MarketingProfile | None], bool],
    expected: str,
) -> str:
    """The ESP's own word on a change it accepted (it answered 2xx: a refusal raises): the
    profile read back from it, and whether it shows ``expected``."""
    name = state.esp_name
    try:
        profile = await state.call_esp(lambda esp: esp.read_profile(email))
    except (ProfileError, EspUnavailable) as exc:
        return f"{name} accepted it; reading the profile back failed ({exc})."
    if done(profile):
        return f"{name} confirms: {expected}."
    if profile is None:
        return f"{name} accepted it, but has no profile for {email} when asked back."
    return f"{name} accepted it, but does not show yet that {expected}."


def _zendesk_user_id(state: SidebarState, person_id: str | None) -> int | None:
    if person_id is None:
        return None
    with state.ctx.engine.store.reader() as reader:
        idents = reader.identifiers_of([person_id]).get(person_id, [])
    ids = [int(v) for k, v in idents if k == "zendesk_user_id" and v.isdigit()]
    return ids[0] if ids else None
