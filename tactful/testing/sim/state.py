"""``ZendeskSimulator``: a fake Zendesk account on a simulated clock.

Story operations (``create_user``, ``create_ticket``, ``update_ticket``, ``solve``,
``merge_tickets``, ``delete_ticket``, ``rate``, ``merge_users`` …) change in-memory state at
the simulated ``now`` and record what Zendesk would report: a new ticket version, an audit for
the ticket events export, and an ``Activity`` that webhook senders turn into deliveries.
``advance(timedelta)`` moves the clock; nothing here reads the wall clock.

Shared state is in ``tactful.testing.sim.core``, tickets in ``tactful.testing.sim.tickets``,
ratings in ``tactful.testing.sim.ratings``, the
HTTP side (``sim.app``) in ``tactful.testing.sim.api``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tactful.testing.sim.controls import Fault, RequestRecord
from tactful.testing.sim.core import UNSET
from tactful.testing.sim.model import PERMANENT_NAME, Activity, Json, SimUser
from tactful.testing.sim.ratings import RatingStory


class ZendeskSimulator(RatingStory):
    """A fake Zendesk account: see ``SimCore`` for the constructor's options."""

    _app: Any = None

    # -- HTTP side

    @property
    def app(self) -> Any:
        """The Starlette ASGI app serving this account's API."""
        if self._app is None:
            from tactful.testing.sim.api import build_app

            self._app = build_app(self)
        return self._app

    @property
    def auth(self) -> tuple[str, str]:
        """HTTP Basic credentials for the API: ``("{email}/token", api_token)``."""
        return f"{self.email}/token", self.api_token

    def serve(self) -> tuple[str, Callable[[], None]]:
        """Serve ``app`` on 127.0.0.1 (``run_in_thread``); object URLs then point at it."""
        from tactful.testing.sim.server import run_in_thread

        base_url, stop = run_in_thread(self.app)
        self.base_url = base_url
        return base_url, stop

    def fail_next(self, n: int = 1, status: int = 503, *, path_prefix: str = "/") -> None:
        """Answer the next ``n`` requests (under ``path_prefix``) with ``status``."""
        with self.lock:
            self.faults.add(Fault(n, status, 0.0, path_prefix, None))

    def rate_limit_next(self, n: int = 1, retry_after: int = 30, *, path_prefix: str = "/") -> None:
        """Answer the next ``n`` requests with 429 and ``Retry-After: retry_after``."""
        with self.lock:
            self.faults.add(Fault(n, 429, 0.0, path_prefix, retry_after))

    def slow_next(self, n: int = 1, seconds: float = 1.0, *, path_prefix: str = "/") -> None:
        """Delay the next ``n`` requests by ``seconds`` of real time, then answer normally."""
        with self.lock:
            self.faults.add(Fault(n, None, seconds, path_prefix, None))

    def requests_to(self, path_prefix: str) -> list[RequestRecord]:
        with self.lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    # -- users

    def _record_user(
        self, user: SimUser, previous: Json | None, events: list[tuple[str, Json]]
    ) -> None:
        self.record(
            Activity(
                seq=len(self.activities) + 1,
                at=self.now(),
                resource="user",
                resource_id=user.id,
                snapshot=self.user_api(user.id),
                previous=previous,
                events=tuple(events),
                update_type=None,
                actor_id=self.agent_id,
            )
        )

    def create_user(
        self,
        name: str,
        email: str | None = None,
        *,
        phone: str | None = None,
        external_id: str | None = None,
        tags: tuple[str, ...] | list[str] = (),
        user_fields: Json | None = None,
    ) -> int:
        with self.lock:
            now = self.now()
            user = SimUser(
                self.next_id("user"), name, email, phone, external_id, now, now, list(tags)
            )
            user.user_fields = dict(user_fields or {})
            self.users[user.id] = user
            self._record_user(user, None, [("user.created", {})])
            return user.id

    def update_user(
        self,
        user_id: int,
        *,
        name: Any = UNSET,
        email: Any = UNSET,
        phone: Any = UNSET,
        external_id: Any = UNSET,
        tags: Any = UNSET,
        user_fields: Json | None = None,
    ) -> Json:
        """Change a user (``user_fields`` are merged key by key); returns its API JSON."""
        with self.lock:
            user = self.users[user_id]
            previous = self.user_api(user_id)
            events: list[tuple[str, Json]] = []
            if name is not UNSET and name != user.name:
                events.append(("user.name_changed", {"current": name, "previous": user.name}))
                user.name = name
            if email is not UNSET and email != user.email:
                events.append(
                    ("user.identity_changed", _identity_event("email", email, user.email))
                )
                user.email = email
            if phone is not UNSET and phone != user.phone:
                events.append(
                    ("user.identity_changed", _identity_event("phone_number", phone, user.phone))
                )
                user.phone = phone
            if external_id is not UNSET and external_id != user.external_id:
                event = {"current": external_id or "", "previous": user.external_id or ""}
                events.append(("user.external_id_changed", event))
                user.external_id = external_id
            if tags is not UNSET and sorted(set(tags)) != sorted(set(user.tags)):
                event = {"current": sorted(set(tags)), "previous": sorted(set(user.tags))}
                events.append(("user.tags_changed", event))
                user.tags = list(dict.fromkeys(tags))
            for key, value in (user_fields or {}).items():
                if user.user_fields.get(key) != value:
                    event = {"field": {"key": key}, "current": value}
                    event["previous"] = user.user_fields.get(key)
                    events.append(("user.custom_field_changed", event))
                    user.user_fields[key] = value
            if events:
                user.updated_at = self.now()
                self._record_user(user, previous, events)
            return self.user_api(user_id)

    def add_user_tags(self, user_id: int, tags: list[str]) -> list[str]:
        with self.lock:
            self.update_user(user_id, tags=[*self.users[user_id].tags, *tags])
            return list(self.users[user_id].tags)

    def remove_user_tags(self, user_id: int, tags: list[str]) -> list[str]:
        with self.lock:
            gone = set(tags)
            self.update_user(user_id, tags=[t for t in self.users[user_id].tags if t not in gone])
            return list(self.users[user_id].tags)

    def delete_user(self, user_id: int) -> None:
        """Soft delete: the user turns inactive and its identifiers are scrubbed."""
        with self.lock:
            user = self.users[user_id]
            previous = self.user_api(user_id)
            user.active = False
            user.deleted = True
            user.email = user.phone = user.external_id = None
            user.updated_at = self.now()
            self._record_user(user, previous, [("user.deleted", {})])

    def permanently_delete_user(self, user_id: int) -> None:
        """``DELETE /api/v2/deleted_users/{id}``: only a deleted user; its data goes, and it
        stays listed by ``GET /api/v2/deleted_users`` as "Permanently Deleted User"."""
        with self.lock:
            user = self.users[user_id]
            if not user.deleted:
                raise ValueError("delete the user first")
            user.permanently_deleted = True
            user.name = PERMANENT_NAME
            user.user_fields = {}
            user.tags = []
            user.updated_at = self.now()

    def merge_users(self, source_id: int, target_id: int) -> None:
        """Merge ``source_id`` into ``target_id``: its tickets move, the source is deleted."""
        with self.lock:
            source = self.users[source_id]
            if source_id == target_id or not self.users[target_id].active:
                raise ValueError("merge into another, active user")
            for ticket in sorted(self.tickets.values(), key=lambda t: t.id):
                if ticket.requester_id == source_id and ticket.status != "deleted":
                    self.move_requester(ticket, target_id)
            previous = self.user_api(source_id)
            source.active = False
            source.merged_into = target_id
            source.email = source.phone = source.external_id = None
            source.updated_at = self.now()
            event = {"current": {"id": str(target_id)}, "previous": {"id": str(source_id)}}
            self._record_user(source, previous, [("user.merged", event)])


def _identity_event(kind: str, value: str | None, old: str | None) -> Json:
    return {
        "current": {"type": kind, "value": value or "", "primary": True},
        "previous": {"type": kind, "value": old or "", "primary": True},
    }
