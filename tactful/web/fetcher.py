"""Fetch tickets whose webhook body was not valid JSON (a trigger with a stray quote).

The receiver keeps such a body (document source ``webhook:unparsed:ticket:<id>``) and answers
202. This background task fetches ``/api/v2/tickets/{id}.json`` through the Zendesk API and
commits the ticket like any other event. The work list is durable: at start-up every kept
body after the ``unparsed_fetched_until`` checkpoint is queued again, so a restart loses
nothing. With several processes one fetches at a time (``store.claim``), and the checkpoint
stays ``SETTLE_US`` behind the newest body: on PostgreSQL a body with a smaller id can commit
after one with a larger id, and must not fall behind the checkpoint unseen. Bodies between
the checkpoint and now are remembered in memory, so they are not fetched twice.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from tactful.engine import Incoming
from tactful.web.context import WebContext
from tactful.zendesk.client import ZendeskClient, ZendeskError, ZendeskNotFound
from tactful.zendesk.parse import parse_object

log = logging.getLogger("tactful.fetcher")
CHECKPOINT = "unparsed_fetched_until"
PREFIX = "webhook:unparsed:ticket:"


SETTLE_US = 60_000_000  # a transaction open longer than this has failed


def pending_from_store(ctx: WebContext) -> list[tuple[int, int, int]]:
    """(document id, ticket id, received µs) of kept bodies after the checkpoint."""
    with ctx.engine.store.reader() as reader:
        done = int(reader.get_meta(CHECKPOINT) or 0)
        rows = reader.documents_with_source_prefix(PREFIX, after_id=done)
    return [(doc_id, int(source[len(PREFIX) :]), at) for doc_id, source, at in rows]


async def fetch_one(ctx: WebContext, client: ZendeskClient, ticket_id: int) -> bool:
    try:
        data = await asyncio.to_thread(
            client.get_json,
            f"/api/v2/tickets/{ticket_id}.json",
            endpoint="/api/v2/tickets/{id}.json",
        )
    except ZendeskNotFound:
        log.warning("ticket named by an unparsed webhook no longer exists")
        return True
    except ZendeskError as exc:
        log.warning("fetching a ticket failed, will retry: %s", exc)
        return False
    incoming = [Incoming(parse_object(data).events, orjson.dumps(data), "api:ticket")]
    requester = (data.get("ticket") or {}).get("requester_id")
    if isinstance(requester, int) and not _known_user(ctx, requester):
        try:
            user = await asyncio.to_thread(client.get_user, requester)
        except ZendeskError as exc:
            log.warning("fetching a requester failed, will retry: %s", exc)
            return False
        if user is not None:
            doc = {"user": user}
            incoming.append(Incoming(parse_object(doc).events, orjson.dumps(doc), "api:user"))
    await ctx.commit(incoming)
    return True


def _known_user(ctx: WebContext, user_id: int) -> bool:
    with ctx.engine.store.reader() as reader:
        return bool(reader.find_persons("zendesk_user_id", str(user_id)))


async def run_fetcher(ctx: WebContext, client: ZendeskClient, every: float = 2.0) -> None:
    """Fetch forever: everything kept since the checkpoint, plus what just arrived."""
    fetched: set[int] = set()  # documents after the checkpoint already fetched
    while True:
        with ctx.engine.store.claim("fetch-unparsed") as mine:
            if mine:
                await _fetch_round(ctx, client, fetched)
        await asyncio.sleep(every)


async def _fetch_round(ctx: WebContext, client: ZendeskClient, fetched: set[int]) -> None:
    kept = [k for k in await asyncio.to_thread(pending_from_store, ctx) if k[0] not in fetched]
    tickets = {ticket for _, ticket, _ in kept} | ctx.pending_fetches
    ctx.pending_fetches.clear()
    failed: set[int] = set()
    for ticket_id in sorted(tickets):
        if not await fetch_one(ctx, client, ticket_id):
            failed.add(ticket_id)
    fetched.update(doc for doc, ticket, _ in kept if ticket not in failed)
    settled = time.time_ns() // 1000 - SETTLE_US
    done = [doc for doc, ticket, at in kept if at < settled and ticket not in failed]
    if done and not failed:
        await ctx.commit([], meta={CHECKPOINT: str(max(done))})
        fetched.difference_update(d for d in list(fetched) if d <= max(done))
