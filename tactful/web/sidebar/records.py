"""The sidebar's ``agent_actions`` log through the store's ports (``tactful.store.pages``):
claim an action under its idempotency key in a transaction of its own, record how it ended,
read one back."""

from __future__ import annotations

from typing import Any

from tactful.store.base import Store
from tactful.store.pages import ActionRow, Claim


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
    retry_failed: bool = False,
) -> ActionRow | None:
    """Claim ``key``: None when claimed now (go ahead), else the earlier row (do nothing)."""
    claim = Claim(key, at_us, agent, account, person_id, email, action, params)
    with store.transaction() as tx:
        return tx.claim_action(claim, retry_failed=retry_failed)


def finish_action(store: Store, key: str, status: str, result: str, at_us: int) -> None:
    with store.transaction() as tx:
        tx.finish_action(key, status, result, at_us)


def action_by_id(store: Store, action_id: int) -> dict[str, Any] | None:
    with store.reader() as reader:
        return reader.action_by_id(action_id)
