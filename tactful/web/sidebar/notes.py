"""The proof of an agent action as a private note on the ticket (``[zendesk] private_notes``).

The agent asks for it (a button beside each action that was done); Tactful writes what the
action did and what the tools were told since, in the words the sidebar shows, as an
internal comment (``public: false``) on the ticket the sidebar is open on. Nothing else goes
in: no person id, no identifier the sidebar does not already show the agent.

Each action gets one note at most: the note is claimed in ``agent_actions`` under the key
``note:{account}:{action id}`` (whichever agent asks, however often). A refusal from Zendesk
(4xx, 429) changed nothing, so it can be asked again; a timeout or a 5xx may have added the
note, so Tactful does not send it again ("unconfirmed": look at the ticket).
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from tactful.store.records import from_us, to_us
from tactful.web.present import At, text
from tactful.web.sidebar import proof
from tactful.web.sidebar.auth import Agent
from tactful.web.sidebar.records import action_by_id, begin_action, finish_action
from tactful.web.sidebar.state import SidebarState
from tactful.web.sidebar.summary import label_of
from tactful.zendesk.client import ZendeskError

NOTED = ("done", "running", "unconfirmed")  # a note that exists, or may


class NoteRefused(ValueError):
    """The note cannot be asked for: not enabled, not this requester's action, not done."""


def body(state: SidebarState, action: dict[str, object], person_id: str, now: datetime) -> str:
    """The note: the action's result and what the tools were told since, in words (UTC)."""
    at_us = int(str(action["at_us"]))
    ctx = state.ctx
    with ctx.engine.store.reader() as reader:
        sent = reader.sent_changes(person_id, limit=20, since_us=at_us)
    types = {d.name: d.type for d in ctx.settings.destinations}
    labels = {s.name: label_of(s) for s in ctx.settings.segments}
    when = text((At(from_us(at_us), "exact"),), now)
    lines = [
        f"Tactful: an agent action in the Tactful sidebar, {when}.",
        f"Result: {action['result']}",
    ]
    if sent:
        lines.append("What the marketing tools were told since:")
        lines += [f"- {proof.line(c, types, labels, now)}" for c in reversed(sent)]
    else:
        lines.append("No marketing tool had been told anything about it yet.")
    return "\n".join(lines)


async def add(
    state: SidebarState, agent: Agent, action_id: int, person_id: str
) -> tuple[bool, str]:
    """Add the note for ``action_id`` (an action on ``person_id``, the ticket's requester) to
    the agent's ticket: (ok, what happened)."""
    ctx = state.ctx
    if not ctx.settings.zendesk.private_notes:
        raise NoteRefused("private notes are off ([zendesk] private_notes)")
    if agent.ticket is None:
        raise NoteRefused("the sidebar did not say which ticket it is on")
    store = ctx.engine.store
    action = await asyncio.to_thread(action_by_id, store, action_id)
    if (
        action is None
        or action["person_id"] != person_id
        or action["account"] != agent.account
        or action["action"] == "note"
    ):
        raise NoteRefused("no such action on this ticket's requester")
    if action["status"] != "done":
        raise NoteRefused("only an action that was done can be added as proof")
    now = state.clock()
    key = f"note:{agent.account}:{action_id}"
    earlier = await asyncio.to_thread(
        begin_action,
        store,
        key,
        at_us=to_us(now),
        agent=agent.sub,
        account=agent.account,
        person_id=person_id,
        email="",
        action="note",
        params={"of": action_id, "ticket": agent.ticket},
        retry_failed=True,
    )
    if earlier is not None:
        if earlier.status == "done":
            return True, f"Already on the ticket: {earlier.result}"
        return False, f"Already asked: {earlier.result or 'under way'}"
    client = state.zendesk()
    if client is None:
        status, result = "failed", "The Zendesk API is not configured: no note was added."
    else:
        note = await asyncio.to_thread(body, state, action, person_id, now)
        try:
            await asyncio.to_thread(client.add_private_note, agent.ticket, note)
            status, result = "done", f"Private note added to ticket #{agent.ticket}."
        except ZendeskError as exc:
            refused = exc.status is not None and 400 <= exc.status < 500
            status = "failed" if refused else "unconfirmed"
            result = (
                f"Zendesk refused the note, nothing was added: {exc}"
                if refused
                else f"Zendesk did not confirm the note ({exc}): look at ticket "
                f"#{agent.ticket} before adding it by hand; Tactful will not send it again."
            )
        finally:
            client.close()
    await asyncio.to_thread(finish_action, store, key, status, result, to_us(now))
    return status == "done", result
