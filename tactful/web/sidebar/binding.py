"""The sidebar acts only for the requester of the ticket it was opened on.

The page tells which ticket it is on (``?ticket=``, from the Zendesk Apps framework); the
first request binds the session to that ticket (a re-signed session comes back in the
``X-Tactful-Session`` header) and every later request must name the same ticket. The panel
and every action are then limited to the ticket's requester as Tactful knows them (the
``tickets`` table, after merges): an email of anyone else, or another ticket, is a 403.
"""

from __future__ import annotations

import dataclasses

from tactful.core.identity import normalize_email
from tactful.web.sidebar.auth import Agent
from tactful.web.sidebar.state import SidebarState
from tactful.zendesk.records import as_int

SESSION_HEADER = "X-Tactful-Session"


class Forbidden(Exception):
    """Not this session's ticket, or not its requester (HTTP 403)."""


def bind(agent: Agent, ticket_text: str | None) -> Agent:
    """``agent`` bound to the ticket the request names (which must be its ticket, if any)."""
    ticket = as_int((ticket_text or "").strip())
    if not ticket:
        raise Forbidden("ticket is required (the ticket the sidebar is open on)")
    if agent.ticket is not None and agent.ticket != ticket:
        raise Forbidden(f"this sidebar session belongs to ticket {agent.ticket}")
    return dataclasses.replace(agent, ticket=ticket)


def requester_emails(state: SidebarState, ticket: int) -> list[str]:
    """The emails of the ticket's requester; Forbidden when Tactful does not know the ticket."""
    with state.ctx.engine.store.reader() as reader:
        person_id = reader.ticket_person(ticket)
        if person_id is None:
            raise Forbidden(f"Tactful does not know ticket {ticket} (yet): reopen it shortly")
        idents = reader.identifiers_of([person_id]).get(person_id, [])
    return [value for kind, value in idents if kind == "email"]


def allowed_email(state: SidebarState, agent: Agent, email: str) -> str:
    """``email`` when it is the bound ticket's requester's (none given: their first email)."""
    assert agent.ticket is not None
    emails = requester_emails(state, agent.ticket)
    if not email:
        if not emails:
            raise Forbidden(f"the requester of ticket {agent.ticket} has no email in Tactful")
        return emails[0]
    if normalize_email(email) not in emails:
        raise Forbidden(f"{email} is not the requester of ticket {agent.ticket}")
    return email
