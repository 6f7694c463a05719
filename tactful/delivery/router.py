"""Outbox rows → per-destination deliveries (pure, given the persons' memberships).

Each row is decoded once into its typed message (``tactful.core.messages``); what it becomes
depends on the message's type and the destinations' roles.

Rules (product.md §9), by the roles each destination type declares (its module's ``SPEC``,
``tactful.destinations.spec.Roles``), never by type name:
- Ad audiences follow exactly one ``segment``: an entry becomes ``audience_add``, an exit
  ``audience_remove``. Holdout entries are never sent.
- Profile sinks (ESPs, warehouse) get a ``profile`` delivery for every state change;
  event sinks (webhooks, analytics, warehouse) get ``support_state_changed`` and
  ``segment_membership_changed`` events; ESPs (``support_events``) get
  ``segment_membership_changed`` and ``zendesk_ticket_created``,
  ``zendesk_ticket_resolved`` and ``zendesk_csat_received`` derived from what changed.
- ``segments = [...]`` narrows a profile/event destination to those segments' changes and to
  persons who are (non-holdout) members of one of them; without it, everything.
- Holdout members' segment changes go nowhere.
- A membership change also updates profiles: their ``eligible_<segment>`` flags follow it.
- Rows stamped ``history`` (an import's changes older than the horizon, told as one net
  change per person) reach profiles and audiences only, never event destinations, which
  bill or act per event.
- ``plan``: the deliveries of a run of rows; a person's profile is sent once per run (it is
  built from the freshest state at send time, so a second one would say the same).
- Withdrawn consent: ad audiences of that purpose remove the person, destinations that
  ``unsubscribes`` (ESPs) of that purpose unsubscribe them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from tactful.core import messages
from tactful.core.messages import (
    ConsentChanged,
    MembershipChanged,
    Message,
    PersonErased,
    StateChanged,
)
from tactful.core.state import INFERRED_FIELD_NAMES
from tactful.delivery.store import NewDelivery
from tactful.destinations import registry
from tactful.destinations.spec import Roles
from tactful.store.base import OutboxRow
from tactful.store.records import to_us

INFERRED = frozenset(INFERRED_FIELD_NAMES)


@cache
def roles_of(type_name: str) -> Roles:
    """The roles a destination type declares (its module's ``SPEC``)."""
    return registry.spec(type_name).roles


@dataclass(frozen=True, slots=True)
class Route:
    """What the router needs to know of a configured destination."""

    name: str
    type: str
    segment: str | None  # ad audiences
    segments: tuple[str, ...] | None  # others: None = everything
    purpose: str = "analytics"
    inferences: bool = False  # told the fields inferred from what customers write

    @property
    def roles(self) -> Roles:
        return roles_of(self.type)

    @property
    def is_audience(self) -> bool:
        return self.roles.audience

    @property
    def wants_profiles(self) -> bool:
        return self.roles.profiles

    @property
    def wants_membership_events(self) -> bool:
        return self.roles.events or self.roles.support_events


def esp_events(message: StateChanged) -> list[str]:
    """Named ESP events implied by a state change."""
    changed = set(message.changed)
    values = message.values
    out = []
    if "ticket_count" in changed or "last_ticket_at" in changed:
        out.append("zendesk_ticket_created")
    if "last_resolved_at" in changed and values.get("last_resolved_at"):
        out.append("zendesk_ticket_resolved")
    if "csat_at" in changed and values.get("csat_at"):
        out.append("zendesk_csat_received")
    return out


def route(
    outbox_id: int,
    message: Message,
    at_us: int,
    routes: Sequence[Route],
    member_of: frozenset[str],
) -> list[NewDelivery]:
    """Deliveries for one outbox row's message. ``member_of``: the person's non-holdout
    segments now."""
    out: list[NewDelivery] = []
    person_id = message.person_id
    history = message.stamp.history
    payload = messages.body(message)

    def add(dest: Route, kind: str, name: str, segment: str | None) -> None:
        if history and kind == "event":
            return
        key = f"{outbox_id}:{kind}:{name}"
        out.append(NewDelivery(dest.name, person_id, kind, name, segment, key, at_us, payload))

    if isinstance(message, MembershipChanged):
        segment = message.segment
        if message.holdout:
            return out
        for dest in routes:
            if dest.is_audience:
                if dest.segment == segment:
                    add(dest, "audience_add" if message.entered else "audience_remove", "", segment)
            elif dest.segments is None or segment in dest.segments:
                if dest.wants_profiles:
                    add(dest, "profile", "profile", None)
                if dest.wants_membership_events:
                    add(dest, "event", message.TOPIC, segment)
    elif isinstance(message, ConsentChanged):
        # Ad audiences of that purpose: withdrawn → remove (if Tactful added them); given →
        # add when the person is a (non-holdout) member of the audience's segment now.
        # ESPs of that purpose: withdrawn → the vendor's unsubscribe (stop marketing to an
        # address the ESP already holds); given → nothing (an unsubscribe stands).
        for dest in routes:
            if dest.roles.unsubscribes and dest.purpose == message.purpose:
                if not message.granted:
                    add(dest, "unsubscribe", "", None)
                continue
            if not dest.is_audience or dest.purpose != message.purpose:
                continue
            if not message.granted:
                add(dest, "audience_remove", "", dest.segment)
            elif dest.segment in member_of:
                add(dest, "audience_add", "", dest.segment)
    elif isinstance(message, PersonErased):
        for dest in routes:  # every destination forgets the person, holdout or not
            add(dest, "erase", message.TOPIC, None)
    else:
        changed = set(message.changed)
        only_inferred = bool(changed) and changed <= INFERRED
        for dest in routes:
            if dest.is_audience or (only_inferred and not dest.inferences):
                continue  # nothing this destination is told of changed
            if dest.segments is not None and not (member_of & set(dest.segments)):
                continue
            if dest.wants_profiles:
                add(dest, "profile", "profile", None)
            if dest.roles.support_events:
                for name in esp_events(message):
                    add(dest, "event", name, None)
            if dest.roles.events:
                add(dest, "event", message.TOPIC, None)
    return out


def plan(
    rows: Iterable[tuple[int, str, str, int, bytes]],
    routes: Sequence[Route],
    members: Mapping[str, frozenset[str]],
) -> list[NewDelivery]:
    """Deliveries for a run of outbox rows (id, person, topic, at, payload); ``members``:
    each person's non-holdout segments now. One profile delivery per person and destination.
    Each row is decoded once, into its typed message (``tactful.core.messages``)."""
    out: list[NewDelivery] = []
    profiled: set[tuple[str, str]] = set()
    for oid, pid, topic, at_us, raw in rows:
        message = messages.loads(topic, raw)
        for d in route(oid, message, at_us, routes, members.get(pid, frozenset())):
            if d.kind == "profile":
                if (d.destination, pid) in profiled:
                    continue
                profiled.add((d.destination, pid))
            out.append(d)
    return out


def routes_of(settings: Any) -> list[Route]:
    """The routes of the configured destinations."""
    return [
        Route(
            d.name,
            d.type,
            d.segment,
            tuple(d.segments) if d.segments else None,
            d.purpose,
            bool(getattr(d, "inferences", False)),
        )
        for d in settings.destinations
    ]


def preview(
    rows: Iterable[tuple[OutboxRow, frozenset[str]]], routes: Sequence[Route]
) -> dict[str, Counter[str]]:
    """Per destination, how many deliveries of each kind (``audience_add``,
    ``audience_remove``, ``profile``, ``event``) these outbox rows would make."""
    counts: dict[str, Counter[str]] = {r.name: Counter() for r in routes}
    numbered = []
    members: dict[str, frozenset[str]] = {}
    for i, (row, segments) in enumerate(rows):
        numbered.append((i, row.person_id, row.topic, to_us(row.at), row.payload))
        members[row.person_id] = segments
    for d in plan(numbered, routes, members):
        counts[d.destination][d.kind] += 1
    return counts
