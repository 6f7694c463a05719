"""Ticket events: one ``Audit`` per status change with ``Create`` / ``Change`` / ``Comment``
child events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from tactful.testing.sample.constants import _AGENT, _RULE, _SYSTEM_UPDATER, _iso
from tactful.testing.sample.model import _Step
from tactful.testing.sample.state import _GeneratorState
from tactful.testing.sample.story import _CREATE_VIA


class _EventGenerator(_GeneratorState):
    """Writes the audits of a ticket."""

    def _events(
        self,
        ticket_id: int,
        steps: Sequence[_Step],
        channel: str,
        requester_id: int,
        agent: int,
        priority: str | None,
        tags: list[str],
        merged: bool,
    ) -> None:
        previous = None
        for step in steps:
            self.next_event += 1
            audit_id = self.next_event  # the audit is created before its child events
            if step.actor == _RULE:
                updater, via = _SYSTEM_UPDATER, "Rule"
            elif step.actor == _AGENT:
                updater, via = agent, "Web form"
            else:
                updater, via = requester_id, _CREATE_VIA[channel]
            children: list[dict[str, Any]] = []
            if previous is None:
                children.append(self._child(via, "Create", status=step.status))
                children.append(self._child(via, "Create", priority=priority))
                if tags:
                    children.append(
                        self._child(via, "Create", tags=tags, added_tags=tags, removed_tags=[])
                    )
                children.append(self._child(via, "Comment", comment_present=True))
            else:
                children.append(
                    self._child(via, "Change", status=step.status, previous_value=previous)
                )
                if merged and step.status == "closed":
                    children.append(
                        self._child(
                            via,
                            "Change",
                            tags=sorted({*tags, "closed_by_merge"}),
                            added_tags=["closed_by_merge"],
                            removed_tags=[],
                            previous_value=tags,
                        )
                    )
                if step.actor != _RULE and step.status != "deleted":
                    children.append(self._child(via, "Comment", comment_present=True))
            previous = step.status
            event = {
                "id": audit_id,
                "ticket_id": ticket_id,
                "timestamp": step.at,
                "created_at": _iso(step.at),
                "updater_id": updater,
                "via": via,
                "event_type": "Audit",
                "child_events": children,
            }
            self.events.add(step.at, audit_id, orjson.dumps(event))

    def _child(self, via: str, event_type: str, **values: Any) -> dict[str, Any]:
        self.next_event += 1
        child: dict[str, Any] = {"id": self.next_event, "via": via, "via_reference_id": None}
        if "comment_present" in values:
            child["comment_present"] = True
            child["comment_public"] = True
        else:
            for key, value in values.items():
                if key != "previous_value":
                    child[key] = value
        child["event_type"] = event_type
        if "previous_value" in values:
            child["previous_value"] = values["previous_value"]
        return child
