"""Group commit: one thread applies everything that arrives, many submissions a transaction.

Webhook requests, API events and clock ticks are submitted here; the writer drains its queue,
applies what it took in ONE durable transaction and then resolves every submission's future.
A request is acknowledged only after its future resolves, i.e. after the commit: nothing
acknowledged is lost, and fsync cost is shared by every request of the batch.

While a replay holds the store (``Store.replay_lock``, maybe in another process), the writer
does not wait for it: it writes what it took to the store's inbox (a durable insert that the
replay's locks do not block), resolves the futures (``BatchStats.queued``) and applies the
inbox, in arrival order, before anything else once the replay ends; also at start, so a
process stopped in between loses nothing. Clock ticks during a replay are skipped (the next
tick does their work). Applying twice is harmless: events are deduplicated by key. A
request's events about a person erased after it arrived (an erasure made directly in the
store meanwhile) are not applied (``Engine.apply_many``).
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field, replace
from datetime import datetime

import orjson

from tactful.core import codec
from tactful.core.events import EVENT_KIND
from tactful.engine.batch import BatchStats
from tactful.engine.engine import Engine, Incoming
from tactful.store.base import Inbox, InboxRow, StoreError

log = logging.getLogger("tactful.engine.writer")

MAX_GROUP = 500  # documents per transaction
POLL = 0.05  # seconds between looks at a replay's end while the inbox holds requests
LOOK = 1.0  # seconds between looks at the inbox otherwise (another process may have left rows)


@dataclass
class _Job:
    incoming: list[Incoming] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    tick: datetime | None = None
    future: Future[BatchStats] = field(default_factory=Future)


def encode(incoming: list[Incoming], meta: dict[str, str]) -> bytes:
    """One request as an inbox payload: its documents, their events, its meta."""
    return orjson.dumps(
        {
            "meta": meta,
            "incoming": [
                {
                    "source": item.source,
                    "document": None
                    if item.document is None
                    else base64.b64encode(item.document).decode(),
                    "events": [[EVENT_KIND[type(e)], codec.dumps(e).decode()] for e in item.events],
                }
                for item in incoming
            ],
        }
    )


def decode(payload: bytes) -> tuple[list[Incoming], dict[str, str]]:
    data = orjson.loads(payload)
    incoming = [
        Incoming(
            [codec.loads(kind, blob.encode()) for kind, blob in item["events"]],
            None if item["document"] is None else base64.b64decode(item["document"]),
            item["source"],
        )
        for item in data["incoming"]
    ]
    return incoming, dict(data["meta"])


def _settle(
    future: Future[BatchStats], stats: BatchStats | None = None, error: BaseException | None = None
) -> None:
    """Resolve a submitter's future. A submitter that went away (its request or the ticker
    was cancelled, e.g. at shutdown) cancelled the future: the work is still committed (it is
    idempotent), there is just nobody left to tell."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            assert stats is not None
            future.set_result(stats)
    except InvalidStateError:
        pass


class Writer:
    def __init__(self, engine: Engine, on_applied: Callable[[BatchStats], None] | None = None):
        self.engine = engine
        self.on_applied = on_applied
        self._queue: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tactful-writer", daemon=True)
        self._started = False
        self.inbox: Inbox | None = engine.store.inbox()
        self._waiting = True  # the inbox may hold requests: look (at start, and after a hold)
        self._next_look = 0.0  # monotonic time of the next look at the inbox regardless
        self._more = False  # the last look applied a whole group: the inbox may hold more

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def submit(
        self, incoming: list[Incoming], *, meta: dict[str, str] | None = None
    ) -> Future[BatchStats]:
        job = _Job(incoming=incoming, meta=dict(meta or {}))
        self._queue.put(job)
        return job.future

    def tick(self, now: datetime) -> Future[BatchStats]:
        job = _Job(tick=now)
        self._queue.put(job)
        return job.future

    def stop(self, timeout: float = 10.0) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout)

    def _take(self) -> tuple[list[_Job], bool]:
        try:
            wait = 0.0 if self._more else POLL if self._waiting else LOOK
            first = self._queue.get(timeout=wait)
        except queue.Empty:
            return [], False
        if first is None:
            return [], True
        jobs = [first]
        stop = False
        while len(jobs) < MAX_GROUP:
            try:
                more = self._queue.get_nowait()
            except queue.Empty:
                break
            if more is None:
                stop = True
                break
            jobs.append(more)
        return jobs, stop

    def _run(self) -> None:
        while True:
            if self._waiting or time.monotonic() >= self._next_look:
                self._catch_up()
            jobs, stop = self._take()
            ticks = [j for j in jobs if j.tick is not None]
            writes = [j for j in jobs if j.tick is None]
            if writes:
                self._write(writes)
            for job in ticks:
                self._do_tick(job)
            if stop:
                return

    # -- the inbox --------------------------------------------------------------------------
    def _catch_up(self) -> None:
        """Apply the inbox unless a replay still holds the store."""
        try:
            with self.engine.store.unless_replaying() as free:
                if free:
                    self._drain()
        except Exception:  # the store is unreachable: tried again at the next poll
            log.exception("applying the inbox failed; trying again")

    def _drain(self) -> None:
        """Apply the inbox's oldest group of requests (called without a replay). Only after
        a hold, at start, and once every ``LOOK`` seconds: a look costs a query. While rows
        remain, ``_waiting`` stays set: the writer comes back for the next group after
        taking what arrived meanwhile, which goes into the inbox behind them (acknowledged
        at once, applied in arrival order) instead of waiting for the whole backlog."""
        if not self._waiting and time.monotonic() < self._next_look:
            return
        rows = [] if self.inbox is None else self.inbox.take(MAX_GROUP)
        if rows:
            self._apply_rows(rows)
        self._more = len(rows) == MAX_GROUP
        if self._more:
            return
        self._waiting = False
        self._next_look = time.monotonic() + LOOK

    def _apply_rows(self, rows: list[InboxRow]) -> None:
        """Apply inbox rows in one transaction; if that fails, one at a time. A row that
        fails alone for its content is kept with its error; a store failure (disk, network)
        leaves every row for the next look."""
        decoded: list[tuple[InboxRow, list[Incoming], dict[str, str]]] = []
        for row in rows:
            try:
                incoming, meta = decode(row.payload)
            except Exception as exc:
                self._keep_failed(row, exc)
            else:
                incoming = [replace(item, received_us=row.received_us) for item in incoming]
                decoded.append((row, incoming, meta))
        if not decoded:
            return
        try:
            stats = self.engine.apply_many(
                [item for _, incoming, _ in decoded for item in incoming],
                meta={k: v for _, _, meta in decoded for k, v in meta.items()},
            )
        except StoreError:
            raise
        except Exception:
            for row, incoming, meta in decoded:
                try:
                    stats = self.engine.apply_many(incoming, meta=meta)
                except StoreError:
                    raise
                except Exception as exc:
                    self._keep_failed(row, exc)
                    continue
                self._record(stats)
                self._inbox().done([row.seq])
            return
        self._record(stats)
        self._inbox().done([row.seq for row, _, _ in decoded])

    def _inbox(self) -> Inbox:
        assert self.inbox is not None  # rows come from it
        return self.inbox

    def _keep_failed(self, row: InboxRow, exc: Exception) -> None:
        """Kept, with its error, for the operator; skipped by later looks."""
        log.error("inbox request %d cannot be applied; kept: %s", row.seq, exc)
        self._inbox().fail(row.seq, f"{type(exc).__name__}: {exc}")

    def _hold(self, jobs: list[_Job]) -> None:
        """A replay holds the store: keep the jobs in the inbox and acknowledge them."""
        assert self.inbox is not None
        try:
            self.inbox.put([encode(job.incoming, job.meta) for job in jobs])
        except BaseException as exc:
            for job in jobs:
                _settle(job.future, error=exc)
            return
        self._waiting = True
        for job in jobs:
            events = sum(len(item.events) for item in job.incoming)
            _settle(job.future, BatchStats(received=events, queued=True))

    def _record(self, stats: BatchStats) -> None:
        if self.on_applied is not None:
            self.on_applied(stats)

    # -- writes and ticks -------------------------------------------------------------------
    def _write(self, jobs: list[_Job]) -> None:
        try:
            with self.engine.store.unless_replaying() as free:
                if free:
                    self._drain()  # what arrived during a replay goes first
                if not free or (self._waiting and self.inbox is not None):
                    self._hold(jobs)  # behind what the inbox still holds
                    return
                self._apply(jobs)
        except BaseException as exc:  # the store failed before the jobs were applied
            self._waiting = True
            for job in jobs:
                _settle(job.future, error=exc)

    def _apply(self, jobs: list[_Job]) -> None:
        incoming = [item for job in jobs for item in job.incoming]
        meta = {k: v for job in jobs for k, v in job.meta.items()}
        try:
            stats = self.engine.apply_many(incoming, meta=meta)
        except BaseException:
            # Fall back to one transaction per job so one bad submission fails alone.
            for job in jobs:
                try:
                    job_stats = self.engine.apply_many(job.incoming, meta=job.meta)
                except BaseException as exc:  # reported to the submitter, not lost
                    _settle(job.future, error=exc)
                else:
                    self._done(job, job_stats)
            return
        self._record(stats)
        for job in jobs:
            _settle(job.future, stats)

    def _do_tick(self, job: _Job) -> None:
        assert job.tick is not None
        try:
            with self.engine.store.unless_replaying() as free:
                if free:
                    self._drain()
                if not free or self._waiting:  # the next tick after the backlog does its work
                    _settle(job.future, BatchStats())
                    return
                stats = self.engine.tick(job.tick)
        except BaseException as exc:
            self._waiting = True
            _settle(job.future, error=exc)
        else:
            self._done(job, stats)

    def _done(self, job: _Job, stats: BatchStats) -> None:
        self._record(stats)
        _settle(job.future, stats)
