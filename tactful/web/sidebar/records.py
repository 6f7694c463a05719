"""What the sidebar records and reads through the store's ports: the person's latest
deliveries with their last attempt (``tactful.store.deliveries``), and the
``agent_actions`` log (``tactful.store.actions``), whose unique idempotency key makes
double clicks harmless."""

from __future__ import annotations

from typing import Any

from tactful.store.actions import ActionRow, NewAction
from tactful.store.base import Reader, Store
from tactful.store.deliveries import SentChange

__all__ = [
    "ActionRow",
    "SentChange",
    "actions_of",
    "begin_action",
    "finish_action",
    "recent_changes",
]


def recent_changes(reader: Reader, person_id: str, limit: int = 8) -> list[SentChange]:
    """The person's latest deliveries, newest first, each with its last attempt's HTTP
    status."""
    return reader.deliveries.of_person(person_id, limit)


def begin_action(
    store: Store,
    key: str,
    *,
    at_us: int,
    agent: str,
    account: str,
    person_id: str | None,
    email: str,
    action: str,
    params: dict[str, Any],
) -> ActionRow | None:
    """Claim ``key``: None when claimed now (go ahead), else the earlier row (do nothing)."""
    new = NewAction(key, at_us, agent, account, person_id, email, action, params)
    with store.transaction() as tx:
        return tx.actions.begin(new)


def finish_action(store: Store, key: str, status: str, result: str, at_us: int) -> None:
    with store.transaction() as tx:
        tx.actions.finish(key, status, result, at_us)


def actions_of(reader: Reader, person_id: str, limit: int = 20) -> list[dict[str, Any]]:
    return reader.actions.of_person(person_id, limit)
