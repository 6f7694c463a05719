"""Group commit: one thread applies everything that arrives, many submissions a transaction.

Webhook requests, API events and clock ticks are submitted here; the writer drains its queue,
applies what it took in ONE durable transaction and then resolves every submission's future.
A request is acknowledged only after its future resolves, i.e. after the commit: nothing
acknowledged is lost, and fsync cost is shared by every request of the batch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field
from datetime import datetime

from tactful.batch import BatchStats
from tactful.engine import Engine, Incoming

MAX_GROUP = 500  # documents per transaction


@dataclass
class _Job:
    incoming: list[Incoming] = field(default_factory=list)
    meta: dict[str, str] = field(default_factory=dict)
    tick: datetime | None = None
    future: Future[BatchStats] = field(default_factory=Future)


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
        first = self._queue.get()
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
            jobs, stop = self._take()
            ticks = [j for j in jobs if j.tick is not None]
            writes = [j for j in jobs if j.tick is None]
            if writes:
                self._apply(writes)
            for job in ticks:
                self._do_tick(job)
            if stop:
                return

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
        if self.on_applied is not None:
            self.on_applied(stats)
        for job in jobs:
            _settle(job.future, stats)

    def _do_tick(self, job: _Job) -> None:
        assert job.tick is not None
        try:
            stats = self.engine.tick(job.tick)
        except BaseException as exc:
            _settle(job.future, error=exc)
        else:
            self._done(job, stats)

    def _done(self, job: _Job, stats: BatchStats) -> None:
        if self.on_applied is not None:
            self.on_applied(stats)
        _settle(job.future, stats)
