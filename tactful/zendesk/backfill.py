"""``tactful backfill``: pull Zendesk's exports through the API into the engine, resumably.

Streams: users, tickets, ticket events (exact status-change times) and satisfaction ratings.
They are pulled side by side and their events merged by time, so that every event is applied
at its own moment, as if it had arrived live (pulled one after another, a later stream's
events would fall behind the clock the earlier ones moved on, and be applied at the clock).
A transaction ends when a page has been applied whole: the page's stream checkpoint (meta key
``backfill:<stream>``) commits with the events applied so far, so a run killed at any moment
resumes each stream after its last whole page; events of a page begun but not finished come
again and are skipped as duplicates (events are deduplicated by key). A stream that fails
stops the run: the others wait rather than get ahead of it.

Where a stream starts: ``since`` (``start_time``) when given, else its stored checkpoint,
else the beginning (``start_time=0``). Requesters of tickets and ratings that no person has
yet (by ``zendesk_user_id``) are fetched once with ``GET /api/v2/users/{id}.json`` and
applied in a transaction of their tickets; while the users stream is still running they are
looked up only once it has ended (it may bring them itself).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from tactful.core.events import Event, RatingGiven, TicketVersion, merge_by_time, time_order
from tactful.engine.engine import Engine, Incoming
from tactful.exceptions import CommandError
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


class BackfillError(CommandError):
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

    @staticmethod
    def requester_ids(events: Iterable[Event]) -> list[int]:
        return [
            e.requester_id
            for e in events
            if isinstance(e, TicketVersion | RatingGiven) and e.requester_id is not None
        ]

    def _unknown(self, ids: Iterable[int]) -> list[int]:
        wanted = [rid for rid in ids if rid not in self.known and rid not in self.tried]
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

    def fetch(self, ids: Iterable[int], summary: BackfillSummary) -> list[Incoming]:
        out: list[Incoming] = []
        for rid in self._unknown(ids):
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
    """Pull every selected stream to its end, the streams' events merged by time (see the
    module doc)."""
    unknown = [s for s in streams if s not in STREAMS]
    if unknown:
        raise ValueError(f"unknown stream(s) {', '.join(unknown)}: use {', '.join(STREAM_NAMES)}")
    summary = BackfillSummary()
    started = time.perf_counter()
    selected = [s for s in STREAM_NAMES if s in streams]
    starts: dict[str, Checkpoint] = {}
    for stream in selected:
        try:
            starts[stream] = start_for(engine, stream, since)
        except ValueError as exc:
            raise BackfillError(
                f"the stored checkpoint of {stream} is unreadable ({exc}); "
                "run tactful backfill --since DATE to start that stream again",
                summary,
            ) from exc
    merge = _Merge(engine, client, summary, on_progress, users_pending="users" in selected)
    try:
        merge.run([_Feed(client, stream, starts[stream], summary) for stream in selected])
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


_LAST_KEY = "\U0010ffff"  # sorts after every event key: a page's end comes after its events
_EARLIEST = datetime.min.replace(tzinfo=UTC)


@dataclass
class _PageState:
    stream: str
    number: int  # 1-based within this run, per stream
    raw: bytes
    events: list[Event]
    checkpoint: Checkpoint
    end_of_stream: bool


class _Feed:
    """One stream's pages as items in time order: each page's events sorted by (time, key),
    then an end-of-page item (event None) at the page's last time."""

    def __init__(
        self, client: ZendeskClient, stream: str, start: Checkpoint, summary: BackfillSummary
    ) -> None:
        self.client = client
        self.stream = stream
        self.start = start
        self.summary = summary
        self.stream_summary = summary.streams[stream] = StreamSummary(started_from=start.describe())

    def items(self) -> Iterator[tuple[datetime, str, Event | None, _PageState]]:
        ss = self.stream_summary
        last = _EARLIEST
        for page in self.client.iter_pages(self.stream, self.start):
            parsed = parse_object(page.data)
            ss.pages += 1
            self.summary.pages += 1
            _count_skipped(self.summary, f"{self.stream} page {ss.pages}", parsed.skipped)
            events = sorted(parsed.events, key=time_order)
            state = _PageState(
                self.stream, ss.pages, page.raw, events, page.checkpoint, page.end_of_stream
            )
            for event in events:
                yield event.at, event.key, event, state
            if events:
                last = max(last, events[-1].at)
            yield last, _LAST_KEY, None, state


class _Merge:
    """Applies the streams' events in time order. A transaction ends when a page has been
    applied whole; it stores that page's checkpoint (and those of other pages finished in it)
    with its events, so a run stopped anywhere resumes each stream at its last whole page
    (events of a page begun but not finished are applied again: duplicates, skipped)."""

    MAX_EVENTS = 5000  # a transaction ends here even inside a page (no checkpoint moves)

    def __init__(
        self,
        engine: Engine,
        client: ZendeskClient,
        summary: BackfillSummary,
        on_progress: Callable[[PageDone], None] | None,
        *,
        users_pending: bool,
    ) -> None:
        self.engine = engine
        self.summary = summary
        self.on_progress = on_progress
        self.requesters = _Requesters(engine, client)
        # While the users stream runs, a requester not known yet may still come in it: look
        # them up (one API call each) only once the users stream has ended.
        self.users_pending = users_pending
        self.deferred: dict[int, None] = {}  # requester ids, in order
        self.pending: dict[tuple[str, int], Incoming] = {}
        self.finished: list[_PageState] = []
        self.count = 0

    def run(self, feeds: list[_Feed]) -> None:
        for _, _, event, page in merge_by_time(f.items() for f in feeds):
            if event is None:
                self.finished.append(page)
                if page.stream == "users" and page.end_of_stream:
                    self.users_pending = False
                self.flush()
                continue
            incoming = self.pending.get((page.stream, page.number))
            if incoming is None:
                source = checkpoint_key(page.stream)
                incoming = self.pending[(page.stream, page.number)] = Incoming([], page.raw, source)
            incoming.events.append(event)
            self.count += 1
            if self.count >= self.MAX_EVENTS:
                self.flush()
        self.users_pending = False
        self.flush()

    def _lookups(self) -> list[Incoming]:
        for incoming in self.pending.values():
            self.deferred.update(dict.fromkeys(_Requesters.requester_ids(incoming.events)))
        if self.users_pending or not self.deferred:
            return []
        ids, self.deferred = list(self.deferred), {}
        return self.requesters.fetch(ids, self.summary)

    def flush(self) -> None:
        lookups_due = bool(self.deferred) and not self.users_pending
        if not self.pending and not self.finished and not lookups_due:
            return
        lookups = self._lookups()
        incoming = lookups + list(self.pending.values())
        meta = {checkpoint_key(p.stream): p.checkpoint.to_text() for p in self.finished}
        stats = self.engine.apply_many(incoming, meta=meta, history=True)
        summary = self.summary
        records: Counter[str] = Counter()
        for item in self.pending.values():
            records[item.source] += len(item.events)
        rejected: Counter[str] = Counter()
        sources: dict[str, str] = {}
        if stats.rejected:  # which stream each rejected event came from
            sources = {e.key: i.source for i in self.pending.values() for e in i.events}
        for event_key, reason in stats.rejected:
            rejected[sources.get(event_key, LOOKUP_SOURCE)] += 1
            summary.rejected[reason] += 1
            if len(summary.examples) < MAX_EXAMPLES:
                summary.examples.append(f"{event_key}: {reason}")
        duplicates = stats.duplicates_by_source
        applied = Counter({s: records[s] - duplicates[s] - rejected[s] for s in records})
        for stream, ss in summary.streams.items():
            source = checkpoint_key(stream)
            ss.records += records[source]
            ss.duplicates += duplicates[source]
            ss.applied += applied[source]
        summary.records += sum(records.values())
        summary.applied += stats.applied
        summary.duplicates += stats.duplicates
        summary.entered += stats.entered
        summary.exited += stats.exited
        finished, self.finished, self.pending, self.count = self.finished, [], {}, 0
        for page in finished:
            ss = summary.streams[page.stream]
            ss.end_of_stream = page.end_of_stream
            if self.on_progress is not None:
                source = checkpoint_key(page.stream)
                self.on_progress(
                    PageDone(
                        page.stream,
                        page.number,
                        len(page.events),
                        applied[source],
                        duplicates[source],
                        len(lookups),
                        page.end_of_stream,
                        page.checkpoint,
                        page.events[0].at if page.events else None,
                        page.events[-1].at if page.events else None,
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
