"""Ticket and rating story operations of the simulator (mixed into ``ZendeskSimulator``).

Every operation bumps ``updated_at``, keeps the new version, writes an ``Audit`` with child
events (the ticket events export) and an ``Activity`` (what webhooks report). Zendesk's rules
that matter downstream: closed and deleted tickets cannot be updated; a merged-away ticket is
closed with the tag ``closed_by_merge`` by an update ``via`` Merge; deleting gives status
``deleted`` and runs no triggers.
"""

from __future__ import annotations

from typing import Any

from tactful.testing.sim.core import UNSET, SimCore
from tactful.testing.sim.model import Activity, Actor, Json, SimAudit, SimTicket

STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")
_CREATE_VIA = {"web": "Web form", "email": "Mail", "native_messaging": "Messaging"}
_CREATE_VIA["api"] = "Web service"


class TicketStory(SimCore):
    def _via(self, ticket: SimTicket, actor: Actor) -> str:
        if actor == "rule":
            return "Rule"
        if actor == "requester":
            return _CREATE_VIA.get(ticket.channel, "Web form")
        return "Web form"

    def _actor_id(self, ticket: SimTicket, actor: Actor) -> int:
        return {"rule": -1, "requester": ticket.requester_id}.get(actor, self.agent_id)

    def _child(self, via: str, event_type: str, **values: Any) -> Json:
        child: Json = {"id": self.next_id("event"), "via": via, "via_reference_id": None}
        previous = values.pop("previous_value", UNSET)
        child.update(values)
        child["event_type"] = event_type
        if previous is not UNSET:
            child["previous_value"] = previous
        return child

    def _comment(self, via: str, actor_id: int, body: str, public: bool) -> tuple[Json, Json]:
        child = self._child(via, "Comment", comment_present=True, comment_public=public)
        # What ``include=comment_events`` adds to a Comment child (``audit_json``).
        child.update({"author_id": actor_id, "body": body, "public": public})
        author = {"id": str(actor_id), "is_staff": actor_id != -1, "name": ""}
        event = {"comment": {"id": str(child["id"]), "body": body, "is_public": public}}
        event["comment"]["author"] = author
        return child, event

    def _commit(
        self,
        ticket: SimTicket,
        previous: Json | None,
        audit: tuple[int, int, str, list[Json]],
        events: list[tuple[str, Json]],
        update_type: Any,
    ) -> Json:
        audit_id, actor_id, via, children = audit
        snapshot = self.ticket_api(ticket.id)
        ticket.versions.append(snapshot)
        self.audits.append(SimAudit(audit_id, ticket.id, self.now(), actor_id, via, children))
        requester = self.users.get(ticket.requester_id)
        self.record(
            Activity(
                seq=len(self.activities) + 1,
                at=self.now(),
                resource="ticket",
                resource_id=ticket.id,
                snapshot=snapshot,
                previous=previous,
                events=tuple(events),
                update_type=update_type,
                actor_id=actor_id,
                requester=self.user_api(requester.id) if requester else None,
            )
        )
        return snapshot

    def create_ticket(
        self,
        requester_id: int,
        subject: str,
        *,
        description: str = "",
        tags: tuple[str, ...] | list[str] = (),
        priority: str | None = None,
        type: str | None = None,
        channel: str = "web",
        custom_fields: dict[int, Any] | None = None,
        group_id: int | None = None,
        external_id: str | None = None,
        brand_id: int | None = None,
    ) -> int:
        """A new ticket (status ``new``) from ``requester_id`` (in ``brand_id``, else the
        account's default brand); returns its id."""
        with self.lock:
            if requester_id not in self.users:
                raise KeyError(f"no user {requester_id}")
            if priority not in (None, *PRIORITIES):
                raise ValueError(f"unknown priority {priority!r}")
            now = self.now()
            fields = [{"id": k, "value": v} for k, v in (custom_fields or {}).items()]
            submitter = self.agent_id if channel == "api" else requester_id
            ticket = SimTicket(
                self.next_id("ticket"), subject, description or subject, requester_id,
                submitter, "new", priority, type, list(dict.fromkeys(tags)), fields, channel,
                now, now, group_id=group_id, external_id=external_id, brand_id=brand_id,
            )  # fmt: skip
            self.tickets[ticket.id] = ticket
            via = self._via(ticket, "requester")
            audit_id = self.next_id("event")
            children = [
                self._child(via, "Create", status="new"),
                self._child(via, "Create", priority=priority),
            ]
            if ticket.tags:
                tag_list = sorted(set(ticket.tags))
                children.append(
                    self._child(via, "Create", tags=tag_list, added_tags=tag_list, removed_tags=[])
                )
            children.append(self._comment(via, requester_id, ticket.description, True)[0])
            audit = (audit_id, requester_id, via, children)
            self._commit(ticket, None, audit, [("ticket.created", {})], "Create")
            return ticket.id

    def update_ticket(
        self,
        ticket_id: int,
        *,
        status: Any = UNSET,
        priority: Any = UNSET,
        tags: Any = UNSET,
        add_tags: tuple[str, ...] | list[str] = (),
        remove_tags: tuple[str, ...] | list[str] = (),
        requester_id: Any = UNSET,
        subject: Any = UNSET,
        custom_fields: dict[int, Any] | None = None,
        actor: Actor = "agent",
        comment: str | None = "",
        public: bool = True,
        via: str | None = None,
        _allow_closed: bool = False,
    ) -> Json:
        """Change a ticket as ``actor``; ``comment=None`` for an update without a comment."""
        with self.lock:
            t = self.tickets[ticket_id]
            if t.status == "deleted" or (t.status == "closed" and not _allow_closed):
                raise ValueError(f"ticket {ticket_id} is {t.status} and cannot be updated")
            previous = self.ticket_api(ticket_id)
            via_text = via or self._via(t, actor)
            actor_id = self._actor_id(t, actor)
            audit_id = self.next_id("event")
            children: list[Json] = []
            events: list[tuple[str, Json]] = []
            event: Json

            def change(name: str, current: Any, old: Any, event: Json | None = None) -> None:
                children.append(
                    self._child(via_text, "Change", previous_value=old, **{name: current})
                )
                events.append(
                    (f"ticket.{name}_changed", event or {"current": current, "previous": old})
                )

            if status is not UNSET and status != t.status:
                if status not in STATUSES:
                    raise ValueError(f"unknown status {status!r}")
                change(
                    "status",
                    status,
                    t.status,
                    {"current": status.upper(), "previous": t.status.upper()},
                )
                t.status = status
            if priority is not UNSET and priority != t.priority:
                if priority not in (None, *PRIORITIES):
                    raise ValueError(f"unknown priority {priority!r}")
                up = {
                    "current": priority and priority.upper(),
                    "previous": t.priority and t.priority.upper(),
                }
                change("priority", priority, t.priority, up)
                t.priority = priority
            new_tags = list(t.tags if tags is UNSET else tags) + list(add_tags)
            new_tags = [x for x in dict.fromkeys(new_tags) if x not in set(remove_tags)]
            if set(new_tags) != set(t.tags):
                added = sorted(set(new_tags) - set(t.tags))
                removed = sorted(set(t.tags) - set(new_tags))
                children.append(
                    self._child(via_text, "Change", tags=sorted(set(new_tags)), added_tags=added,
                                removed_tags=removed, previous_value=sorted(set(t.tags)))
                )  # fmt: skip
                events.append(
                    ("ticket.tags_changed", {"tags_added": added, "tags_removed": removed})
                )
                t.tags = new_tags
            if requester_id is not UNSET and requester_id != t.requester_id:
                if requester_id not in self.users:
                    raise KeyError(f"no user {requester_id}")
                event = {"current": str(requester_id), "previous": str(t.requester_id)}
                change("requester_id", requester_id, t.requester_id, event)
                events[-1] = ("ticket.requester_changed", event)
                t.requester_id = requester_id
            if subject is not UNSET and subject != t.subject:
                change("subject", subject, t.subject)
                t.subject = subject
            for field_id, value in (custom_fields or {}).items():
                slot = next((f for f in t.custom_fields if f["id"] == field_id), None)
                old = slot["value"] if slot else None
                if old != value:
                    event = {
                        "custom_field": {"id": str(field_id)},
                        "current": value,
                        "previous": old,
                    }
                    child = {"value": value, "field_name": str(field_id), "previous_value": old}
                    children.append(self._child(via_text, "Change", **child))
                    events.append(("ticket.custom_field_changed", event))
                    if slot is None:
                        t.custom_fields.append({"id": field_id, "value": value})
                    else:
                        slot["value"] = value
            if actor == "agent" and t.assignee_id is None and t.status != "new":
                t.assignee_id = self.agent_id
                event = {"current": str(self.agent_id), "previous": None}
                events.append(("ticket.agent_assignment_changed", event))
            if comment is not None:
                child, event = self._comment(via_text, actor_id, comment or "(update)", public)
                children.append(child)
                events.append(("ticket.comment_added", event))
            if not children:
                return previous
            t.updated_at = self.now()
            return self._commit(
                t, previous, (audit_id, actor_id, via_text, children), events, "Change"
            )

    def solve(self, ticket_id: int, **kw: Any) -> Json:
        return self.update_ticket(ticket_id, status="solved", **kw)

    def reopen(self, ticket_id: int, **kw: Any) -> Json:
        kw.setdefault("actor", "requester")
        return self.update_ticket(ticket_id, status="open", **kw)

    def close(self, ticket_id: int) -> Json:
        """Closed by automation (Zendesk closes solved tickets after four days)."""
        return self.update_ticket(ticket_id, status="closed", actor="rule", comment=None)

    def merge_tickets(self, source_ids: list[int], target_id: int) -> None:
        """Close ``source_ids`` (tag ``closed_by_merge``, via Merge) into ``target_id``."""
        with self.lock:
            if self.tickets[target_id].status in ("closed", "deleted") or target_id in source_ids:
                raise ValueError("merge into another ticket that is not closed or deleted")
            for source in source_ids:
                note = f"This request was closed and merged into request #{target_id}."
                self.update_ticket(
                    source, status="closed", add_tags=["closed_by_merge"], comment=note,
                    public=False, via="Merge",
                )  # fmt: skip
            listed = ", ".join(f"#{s}" for s in source_ids)
            note = f"Requests {listed} were closed and merged into this request."
            self.update_ticket(target_id, comment=note, public=False, via="Merge")

    def move_requester(self, ticket: SimTicket, requester_id: int) -> None:
        """A user merge moves the ticket, closed or not."""
        self.update_ticket(ticket.id, requester_id=requester_id, comment=None, _allow_closed=True)

    def delete_ticket(self, ticket_id: int) -> None:
        """Soft delete: status ``deleted`` (it stays in the incremental export)."""
        with self.lock:
            t = self.tickets[ticket_id]
            if t.status == "deleted":
                raise ValueError(f"ticket {ticket_id} is already deleted")
            previous = self.ticket_api(ticket_id)
            audit_id = self.next_id("event")
            child = self._child("Web form", "Change", status="deleted", previous_value=t.status)
            t.status = "deleted"
            t.updated_at = self.now()
            audit = (audit_id, self.agent_id, "Web form", [child])
            self._commit(t, previous, audit, [("ticket.soft_deleted", {})], None)
