"""``tactful backfill``: pull Zendesk's exports through the API into the engine, resumably.

Streams (in this order, so that requesters are usually known before their tickets): users,
tickets, ticket events (exact status-change times) and satisfaction ratings. Each page is one
transaction: the raw page, its events and the stream's checkpoint (meta key
``backfill:<stream>``) commit together, so a run killed at any moment resumes after the last
committed page and nothing is applied twice (events are also deduplicated by key).

Where a stream starts: ``since`` (``start_time``) when given, else its stored checkpoint,
else the beginning (``start_time=0``). Requesters of tickets and ratings that no person has
yet (by ``zendesk_user_id``) are fetched once with ``GET /api/v2/users/{id}.json`` and
applied in the page's transaction.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from tactful.core.events import Event, RatingGiven, TicketVersion
from tactful.engine import Engine, Incoming
from tactful.zendesk.client import (
    STREAM_NAMES,
    STREAMS,
    Checkpoint,
    ZendeskClient,
    ZendeskError,
)
from tactful.zendesk.parse import parse_object

CHECKPOINT_PREFIX = "backfill:"
LOOKUP_SOURCE = "backfill:user_lookup"
MAX_EXAMPLES = 10


def checkpoint_key(stream: str) -> str:
    return CHECKPOINT_PREFIX + stream


@dataclass(frozen=True)
class PageDone:
    """Reported to ``on_progress`` after each committed page."""

    stream: str
    page: int  # 1-based, within this run
    records: int
    applied: int
    duplicates: int
    lookups: int
    end_of_stream: bool
    checkpoint: Checkpoint
    earliest: datetime | None = None  # the oldest and newest event times in the page
    latest: datetime | None = None


@dataclass
class StreamSummary:
    started_from: str
    pages: int = 0
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    end_of_stream: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "started_from": self.started_from,
            "pages": self.pages,
            "records": self.records,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "end_of_stream": self.end_of_stream,
        }


@dataclass
class BackfillSummary:
    pages: int = 0
    records: int = 0  # canonical events read from the pages
    applied: int = 0
    duplicates: int = 0
    skipped: Counter[str] = field(default_factory=Counter)  # reason -> count (not imported)
    rejected: Counter[str] = field(default_factory=Counter)  # reason -> count (not applied)
    lookups: int = 0  # requesters fetched with GET /api/v2/users/{id}.json
    lookups_missing: int = 0  # of those, users Zendesk no longer has
    entered: int = 0
    exited: int = 0
    requests: int = 0
    throttled: int = 0  # 429 responses waited out
    waited: float = 0.0  # seconds slept (Retry-After, backoff, rate limiter)
    seconds: float = 0.0
    streams: dict[str, StreamSummary] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "records": self.records,
            "applied": self.applied,
            "duplicates": self.duplicates,
            "skipped": dict(self.skipped),
            "rejected": dict(self.rejected),
            "lookups": self.lookups,
            "lookups_missing": self.lookups_missing,
            "entered": self.entered,
            "exited": self.exited,
            "requests": self.requests,
            "throttled": self.throttled,
            "waited_seconds": round(self.waited, 3),
            "seconds": round(self.seconds, 3),
            "streams": {name: s.as_json() for name, s in self.streams.items()},
            "examples": self.examples,
        }


class BackfillError(Exception):
    """The backfill stopped (Zendesk failed, or a checkpoint is unreadable).

    Every page committed before the failure stays; ``summary`` tells how far it got and the
    next run continues from the checkpoints.
    """

    def __init__(self, message: str, summary: BackfillSummary) -> None:
        super().__init__(message)
        self.summary = summary


def start_for(engine: Engine, stream: str, since: datetime | None) -> Checkpoint:
    """``since``, else the stored checkpoint, else the beginning."""
    if since is not None:
        return Checkpoint(start_time=max(0, int(since.timestamp())))
    text = engine.get_meta(checkpoint_key(stream))
    if text is None:
        return Checkpoint.beginning()
    return Checkpoint.from_text(text)


class _Requesters:
    """Looks up requesters no person has yet, each at most once per run."""

    def __init__(self, engine: Engine, client: ZendeskClient) -> None:
        self.engine = engine
        self.client = client
        self.known: set[int] = set()
        self.tried: set[int] = set()

    def _unknown(self, events: Iterable[Event]) -> list[int]:
        wanted: list[int] = []
        for event in events:
            if isinstance(event, TicketVersion | RatingGiven):
                rid = event.requester_id
                if rid is not None and rid not in self.known and rid not in self.tried:
                    wanted.append(rid)
        if not wanted:
            return []
        unknown: list[int] = []
        with self.engine.store.reader() as reader:
            for rid in dict.fromkeys(wanted):
                if reader.find_persons("zendesk_user_id", str(rid)):
                    self.known.add(rid)
                else:
                    unknown.append(rid)
        return unknown

    def fetch(self, events: Sequence[Event], summary: BackfillSummary) -> list[Incoming]:
        out: list[Incoming] = []
        for rid in self._unknown(events):
            self.tried.add(rid)
            summary.lookups += 1
            user = self.client.get_user(rid)
            if user is None:
                summary.lookups_missing += 1
                continue
            document = orjson.dumps({"user": user})
            parsed = parse_object({"user": user})
            _count_skipped(summary, "users/{id}.json", parsed.skipped)
            if parsed.events:
                out.append(Incoming(parsed.events, document, LOOKUP_SOURCE))
                self.known.add(rid)
        return out


def _count_skipped(summary: BackfillSummary, where: str, skipped: Iterable[Any]) -> None:
    for s in skipped:
        summary.skipped[s.reason.split(":", 1)[0]] += 1
        if len(summary.examples) < MAX_EXAMPLES:
            summary.examples.append(f"{where}: {s.where}: {s.reason}")


def backfill(
    engine: Engine,
    client: ZendeskClient,
    *,
    since: datetime | None = None,
    streams: Sequence[str] = STREAM_NAMES,
    on_progress: Callable[[PageDone], None] | None = None,
) -> BackfillSummary:
    """Pull every selected stream to its end; one transaction per page (see module doc)."""
    unknown = [s for s in streams if s not in STREAMS]
    if unknown:
        raise ValueError(f"unknown stream(s) {', '.join(unknown)}: use {', '.join(STREAM_NAMES)}")
    summary = BackfillSummary()
    started = time.perf_counter()
    requesters = _Requesters(engine, client)
    try:
        for stream in [s for s in STREAM_NAMES if s in streams]:
            try:
                start = start_for(engine, stream, since)
            except ValueError as exc:
                raise BackfillError(
                    f"the stored checkpoint of {stream} is unreadable ({exc}); "
                    "run tactful backfill --since DATE to start that stream again",
                    summary,
                ) from exc
            _pull(engine, client, stream, start, requesters, summary, on_progress)
    except ZendeskError as exc:
        _finish(summary, client, started)
        saved = f"{summary.pages} page{'s' if summary.pages != 1 else ''}"
        raise BackfillError(
            f"{exc}. The backfill stopped; {saved} of this run were saved and the next run "
            "continues from there",
            summary,
        ) from exc
    _finish(summary, client, started)
    return summary


def _pull(
    engine: Engine,
    client: ZendeskClient,
    stream: str,
    start: Checkpoint,
    requesters: _Requesters,
    summary: BackfillSummary,
    on_progress: Callable[[PageDone], None] | None,
) -> None:
    key = checkpoint_key(stream)
    source = key
    ss = summary.streams[stream] = StreamSummary(started_from=start.describe())
    for page in client.iter_pages(stream, start):
        parsed = parse_object(page.data)
        ss.pages += 1
        summary.pages += 1
        _count_skipped(summary, f"{stream} page {ss.pages}", parsed.skipped)
        incoming = requesters.fetch(parsed.events, summary)
        lookups = len(incoming)
        if parsed.events:
            incoming.append(Incoming(parsed.events, page.raw, source))
        stats = engine.apply_many(incoming, meta={key: page.checkpoint.to_text()})
        records = len(parsed.events)
        ss.records += records
        ss.applied += stats.applied
        ss.duplicates += stats.duplicates
        ss.end_of_stream = page.end_of_stream
        summary.records += records
        summary.applied += stats.applied
        summary.duplicates += stats.duplicates
        summary.entered += stats.entered
        summary.exited += stats.exited
        for event_key, reason in stats.rejected:
            summary.rejected[reason] += 1
            if len(summary.examples) < MAX_EXAMPLES:
                summary.examples.append(f"{event_key}: {reason}")
        if on_progress is not None:
            on_progress(
                PageDone(
                    stream,
                    ss.pages,
                    records,
                    stats.applied,
                    stats.duplicates,
                    lookups,
                    page.end_of_stream,
                    page.checkpoint,
                    min((e.at for e in parsed.events), default=None),
                    max((e.at for e in parsed.events), default=None),
                )
            )


def _finish(summary: BackfillSummary, client: ZendeskClient, started: float) -> None:
    summary.requests = client.stats.requests
    summary.throttled = client.stats.throttled
    summary.waited = client.stats.waited
    summary.seconds = time.perf_counter() - started


__all__ = [
    "CHECKPOINT_PREFIX",
    "BackfillError",
    "BackfillSummary",
    "PageDone",
    "StreamSummary",
    "backfill",
    "checkpoint_key",
    "start_for",
]
