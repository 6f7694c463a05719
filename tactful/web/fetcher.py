"""Fetch through the Zendesk API what a webhook body could not be trusted to say.

The receiver keeps such a body as a document and answers 202; this background task fetches
and commits the authoritative version:

- ``webhook:unparsed:ticket:<id>``: the body was not JSON (a trigger with a stray quote);
- ``webhook:untrusted:ticket:<id>``: a trigger body that cannot be trusted (duplicate JSON
  keys) or cannot tell whether it is newer than another body of the same ticket in the same
  minute (trigger times have minute precision): ``/api/v2/tickets/{id}.json`` decides;
- ``webhook:awaiting-users:<id>,<id>``: the body introduces Zendesk users whose consent
  fields (``[consent] fields``) are not known yet (``user.created`` envelopes and ticket
  bodies carry no user fields). ``/api/v2/users/{id}.json`` is fetched and the body's
  events commit together with the user, so no identifier of that person leaves before
  their consent is known.

The work list is durable: at start-up every kept body after the ``unparsed_fetched_until``
checkpoint is queued again, so a restart loses nothing. With several processes one fetches
at a time (``store.claim``), and the checkpoint stays ``SETTLE_US`` behind the newest body:
on PostgreSQL a body with a smaller id can commit after one with a larger id, and must not
fall behind the checkpoint unseen. Bodies between the checkpoint and now are remembered in
memory, so they are not fetched twice.

Every ``[privacy] deleted_users_check`` it also lists Zendesk's deleted users and erases the
persons whose user was permanently deleted (``tactful.zendesk.deleted_users``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from tactful.clock import now_us
from tactful.core.events import Event, RatingGiven, TicketVersion, UserSeen
from tactful.engine.engine import Incoming
from tactful.store.base import Reader
from tactful.web.context import WebContext
from tactful.zendesk.client import ZendeskClient, ZendeskError, ZendeskNotFound
from tactful.zendesk.deleted_users import permanent_deletions
from tactful.zendesk.parse import parse_object

log = logging.getLogger("tactful.fetcher")
CHECKPOINT = "unparsed_fetched_until"
PREFIX = "webhook:unparsed:ticket:"
UNTRUSTED_PREFIX = "webhook:untrusted:ticket:"
USERS_PREFIX = "webhook:awaiting-users:"
PREFIXES = (PREFIX, UNTRUSTED_PREFIX, USERS_PREFIX)

SETTLE_US = 60_000_000  # a transaction open longer than this has failed


@dataclass(frozen=True, slots=True)
class Kept:
    """A kept body waiting for a fetch."""

    doc_id: int
    source: str
    received_us: int

    @property
    def ticket(self) -> int | None:
        for prefix in (PREFIX, UNTRUSTED_PREFIX):
            if self.source.startswith(prefix):
                return int(self.source[len(prefix) :])
        return None

    @property
    def users(self) -> tuple[int, ...]:
        if not self.source.startswith(USERS_PREFIX):
            return ()
        return tuple(int(u) for u in self.source[len(USERS_PREFIX) :].split(",") if u)


def pending_from_store(ctx: WebContext) -> list[Kept]:
    """Kept bodies after the checkpoint, in the order they were received."""
    with ctx.engine.store.reader() as reader:
        done = int(reader.get_meta(CHECKPOINT) or 0)
        rows = [r for p in PREFIXES for r in reader.documents_with_source_prefix(p, after_id=done)]
    return [Kept(doc_id, source, at) for doc_id, source, at in sorted(rows)]


# -- consent not known yet ------------------------------------------------------------------
def named_users(events: Sequence[Event]) -> set[int]:
    """Zendesk users whose identifiers these events can send somewhere."""
    out: set[int] = set()
    for e in events:
        if isinstance(e, UserSeen) and e.active:
            out.add(e.zendesk_user_id)
        elif isinstance(e, TicketVersion | RatingGiven) and e.requester_id is not None:
            out.add(e.requester_id)
    return out


def consent_known(reader: Reader, governed: Sequence[str], user_id: int) -> bool:
    """Whether every purpose governed by a Zendesk field is known for this user's person."""
    if not governed:
        return True
    persons = reader.load_persons(reader.find_persons("zendesk_user_id", str(user_id)))
    return any(
        all(row.facts.consent_for(purpose) is not None for purpose in governed)
        for row in persons.values()
    )


def users_awaiting_consent(ctx: WebContext, events: Sequence[Event]) -> list[int]:
    """Users these events introduce whose consent fields are not known (and that the API can
    tell: empty without a Zendesk client or without ``[consent] fields``)."""
    fields = ctx.settings.consent.fields
    if not ctx.zendesk_api or not fields:
        return []
    stated = {
        e.zendesk_user_id
        for e in events
        if isinstance(e, UserSeen) and set(fields.values()) <= {k for k, _ in e.fields}
    }
    wanted = sorted(named_users(events) - stated)
    if not wanted:
        return []
    with ctx.engine.store.reader() as reader:
        return [u for u in wanted if not consent_known(reader, list(fields), u)]


# -- fetching -------------------------------------------------------------------------------
class _Users:
    """Users fetched in one round (a user named by several bodies is fetched once)."""

    def __init__(self, client: ZendeskClient) -> None:
        self.client = client
        self.fetched: dict[int, Incoming | None] = {}

    async def get(self, user_id: int) -> Incoming | None:
        """The user as an ``api:user`` document (empty when Zendesk has no such user);
        raises ZendeskError when the API failed."""
        if user_id not in self.fetched:
            user = await asyncio.to_thread(self.client.get_user, user_id)
            if user is None:
                self.fetched[user_id] = None
            else:
                doc = {"user": user}
                events = parse_object(doc).events
                self.fetched[user_id] = Incoming(events, orjson.dumps(doc), "api:user")
        return self.fetched[user_id]


async def fetch_one(
    ctx: WebContext, client: ZendeskClient, ticket_id: int, users: _Users | None = None
) -> bool:
    users = users or _Users(client)
    try:
        data = await asyncio.to_thread(
            client.get_json,
            f"/api/v2/tickets/{ticket_id}.json",
            endpoint="/api/v2/tickets/{id}.json",
        )
    except ZendeskNotFound:
        log.warning("ticket named by a kept webhook no longer exists")
        return True
    except ZendeskError as exc:
        log.warning("fetching a ticket failed, will retry: %s", exc)
        return False
    events = parse_object(data).events
    incoming = [Incoming(events, orjson.dumps(data), "api:ticket")]
    try:
        incoming += await _users_of(ctx, users, events)
    except ZendeskError as exc:
        log.warning("fetching a requester failed, will retry: %s", exc)
        return False
    await ctx.commit(incoming)
    return True


async def _users_of(ctx: WebContext, users: _Users, events: Sequence[Event]) -> list[Incoming]:
    """The users these events name whose consent is not known, fetched."""
    governed = list(ctx.settings.consent.fields)
    out: list[Incoming] = []
    for user_id in sorted(named_users(events)):
        with ctx.engine.store.reader() as reader:
            known = bool(reader.find_persons("zendesk_user_id", str(user_id))) and (
                consent_known(reader, governed, user_id)
            )
        if not known and (found := await users.get(user_id)) is not None:
            out.append(found)
    return out


async def apply_awaiting(ctx: WebContext, users: _Users, kept: Kept) -> bool:
    """Commit a body that waited for its users, together with them."""
    with ctx.engine.store.reader() as reader:
        body = reader.document_body(kept.doc_id)
    if body is None:
        return True  # erased meanwhile
    parsed = parse_object(orjson.loads(body))
    incoming = [Incoming(parsed.events, body, f"webhook:{parsed.shape}")]
    try:
        for user_id in kept.users:
            found = await users.get(user_id)
            if found is not None:
                incoming.append(found)
    except ZendeskError as exc:
        log.warning("fetching a user failed, will retry: %s", exc)
        return False
    await ctx.commit(incoming)
    return True


async def run_fetcher(ctx: WebContext, client: ZendeskClient, every: float = 2.0) -> None:
    """Fetch forever: everything kept since the checkpoint, plus what just arrived; and,
    every ``[privacy] deleted_users_check``, the users Zendesk permanently deleted."""
    fetched: set[int] = set()  # documents after the checkpoint already fetched
    privacy = ctx.settings.privacy
    checked = float("-inf")
    while True:
        with ctx.engine.store.claim("fetch-unparsed") as mine:
            if mine:
                await _fetch_round(ctx, client, fetched)
        due = time.monotonic() - checked >= privacy.deleted_users_check.total_seconds()
        if due and privacy.erase_deleted_users == "when_permanently_deleted":
            checked = time.monotonic()
            with ctx.engine.store.claim("deleted-users") as mine:
                if mine:
                    await check_deleted_users(ctx, client)
        await asyncio.sleep(every)


async def check_deleted_users(ctx: WebContext, client: ZendeskClient) -> int:
    """Erase the persons whose Zendesk user was permanently deleted; how many."""

    def find() -> list[Event]:
        with ctx.engine.store.reader() as reader:
            return list(permanent_deletions(client, reader, ctx.engine.wall_clock()))

    try:
        events = await asyncio.to_thread(find)
    except ZendeskError as exc:
        log.warning("listing deleted users failed, will retry: %s", exc)
        return 0
    if events:
        await ctx.commit([Incoming(events, None, "api:deleted_users")])
    return len(events)


async def _fetch_round(ctx: WebContext, client: ZendeskClient, fetched: set[int]) -> None:
    kept = [k for k in await asyncio.to_thread(pending_from_store, ctx) if k.doc_id not in fetched]
    tickets = {k.ticket for k in kept if k.ticket is not None} | ctx.pending_fetches
    ctx.pending_fetches.clear()
    users = _Users(client)
    failed_tickets: set[int] = set()
    for ticket_id in sorted(tickets):
        if not await fetch_one(ctx, client, ticket_id, users):
            failed_tickets.add(ticket_id)
    failed = {k.doc_id for k in kept if k.ticket is not None and k.ticket in failed_tickets}
    for k in kept:
        if k.users and not await apply_awaiting(ctx, users, k):
            failed.add(k.doc_id)
    fetched.update(k.doc_id for k in kept if k.doc_id not in failed)
    settled = now_us() - SETTLE_US
    done = [k.doc_id for k in kept if k.received_us < settled and k.doc_id not in failed]
    if done and not failed:
        await ctx.commit([], meta={CHECKPOINT: str(max(done))})
        fetched.difference_update(d for d in list(fetched) if d <= max(done))
