"""Recording a destination's delivery round as a sync run (``tactful.store.runs``).

A run is opened when the round first has something to record (rows due, rows aged out, or
an error), so idle rounds of a serving process leave no rows. Its counts come from the
decisions the worker made, its platform answer from the destinations' ``Sent.report``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from tactful.core.platform import PlatformReport
from tactful.store.runs import RunCounts, RunStore

Skip = Literal["no_identifier", "no_consent", "holdout", "other"]
SKIPPED: dict[Skip, str] = {
    "no_identifier": "the person has no identifier the destination can use (or is gone)",
    "no_consent": "no consent for this purpose",
    "holdout": "the person is in the segment's holdout",
    "other": "nothing to do at this destination (not added by Tactful, or left the segment)",
}
DELIVERED: dict[str, str] = {  # item kind -> the count it adds to
    "audience_add": "added",
    "audience_remove": "removed",
    "erase": "removed",
    "profile": "updated",
    "unsubscribe": "updated",
    "event": "events",
}


class RunRecorder:
    def __init__(
        self,
        runs: RunStore,
        destination: str,
        now_us: Callable[[], int],
        keep_us: int | None,
    ) -> None:
        self.runs = runs
        self.destination = destination
        self.now_us = now_us
        self.keep_us = keep_us
        self.started_us = now_us()
        self._started = time.monotonic()
        self.id: int | None = None
        self.counts = RunCounts()
        self.platform: PlatformReport | None = None
        self.error = ""

    def open(self) -> int:
        if self.id is None:
            self.id = self.runs.open(self.destination, self.started_us)
        return self.id

    def skipped(self, why: Skip, count: int = 1) -> None:
        name = f"skipped_{why}"
        setattr(self.counts, name, getattr(self.counts, name) + count)

    def delivered(self, kind: str) -> None:
        name = DELIVERED.get(kind, "events")
        setattr(self.counts, name, getattr(self.counts, name) + 1)

    def answered(self, report: PlatformReport | None) -> None:
        if report is not None:
            self.platform = report if self.platform is None else self.platform.merge(report)

    def close(self) -> None:
        """Record the run, if it did anything or failed."""
        if self.id is None and not self.error:
            return
        run_id = self.open()
        keep = None if self.keep_us is None else self.now_us() - self.keep_us
        duration = int((time.monotonic() - self._started) * 1_000_000)
        self.runs.close(run_id, duration, self.counts, self.error, self.platform, keep)
