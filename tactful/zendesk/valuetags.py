"""The high-value tag: ``[zendesk] high_value_tag`` on the Zendesk users whose value score
is 4, removed when they drop out. Who Tactful tagged is kept in the store (meta
``high_value_tagged``), so only Tactful's own tags are ever removed and each round sends only
the changes."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from tactful.readmodels.valuescore import high_value_people
from tactful.store.base import Store
from tactful.zendesk.client import ZendeskNotFound

TAGGED_KEY = "high_value_tagged"
log = logging.getLogger("tactful.zendesk.valuetags")


class Tagger(Protocol):
    def add_user_tags(self, user_id: int, tags: Any) -> list[str]: ...
    def remove_user_tags(self, user_id: int, tags: Any) -> list[str]: ...


def sync_high_value_tags(
    store: Store, client: Tagger, tag: str, now: datetime
) -> tuple[list[int], list[int]]:
    """One round: (Zendesk user ids tagged, ids untagged). Progress is saved even when a
    call fails part way (the next round carries on)."""
    with store.reader() as reader:
        people = sorted(high_value_people(reader, now))
        idents = reader.identifiers_of(people) if people else {}
        previous = {int(x) for x in json.loads(reader.get_meta(TAGGED_KEY) or "[]")}
    wanted = {
        int(value)
        for pid in people
        for kind, value in idents.get(pid, [])
        if kind == "zendesk_user_id" and value.isdigit()
    }
    tagged, added, removed = set(previous), [], []
    try:
        for uid in sorted(wanted - previous):
            client.add_user_tags(uid, [tag])
            tagged.add(uid)
            added.append(uid)
        for uid in sorted(previous - wanted):
            with contextlib.suppress(ZendeskNotFound):  # a deleted user has no tags left
                client.remove_user_tags(uid, [tag])
            tagged.discard(uid)
            removed.append(uid)
    finally:
        if tagged != previous:
            with store.transaction() as tx:
                tx.set_meta(TAGGED_KEY, json.dumps(sorted(tagged)))
    return added, removed


async def run_value_tagger(
    store: Store,
    client: Tagger,
    tag: str,
    clock: Callable[[], datetime],
    every: float = 300.0,
) -> None:
    """Keep the tag current, every ``every`` seconds (failures retried at the next round)."""
    while True:
        try:
            await asyncio.to_thread(sync_high_value_tags, store, client, tag, clock())
        except Exception:
            log.exception("high-value tagging failed")
        await asyncio.sleep(every)
