"""One lane per destination: each destination delivers in a thread of its own, so a slow,
hanging or broken destination never holds back another.

A round starts a lane for every destination whose previous lane has finished, then waits
for them (all of them, at most ``wait`` seconds, or until ``stop``). A lane still running
when the round returns keeps going; its destination is skipped by the next rounds until it
ends, and its counts are collected by the first round after it ends. Lanes are daemon
threads: a process asked to stop never waits for a request hanging on a dead socket.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class SyncReport:
    routed: int = 0
    sent: int = 0
    retried: int = 0
    dead: int = 0
    skipped: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # destination -> why unusable
    busy: list[str] = field(default_factory=list)  # destinations still in a previous round

    def add(self, other: SyncReport) -> None:
        self.sent += other.sent
        self.retried += other.retried
        self.dead += other.dead
        self.skipped += other.skipped
        self.errors.update(other.errors)


@dataclass
class _Lane:
    report: SyncReport
    done: bool = False
    collected: bool = False


class Lanes:
    def __init__(self) -> None:
        self._lanes: dict[str, _Lane] = {}
        self._changed = threading.Condition()
        self.stopping = threading.Event()

    def busy(self, name: str) -> bool:
        lane = self._lanes.get(name)
        return lane is not None and not lane.done

    def start(self, name: str, work: Callable[[SyncReport], None]) -> None:
        lane = _Lane(SyncReport())

        def run() -> None:
            try:
                work(lane.report)
            finally:
                with self._changed:
                    lane.done = True
                    self._changed.notify_all()

        self._lanes[name] = lane
        threading.Thread(target=run, name=f"deliver:{name}", daemon=True).start()

    def wait(self, names: list[str], seconds: float | None) -> None:
        """Until the lanes of ``names`` are done, ``seconds`` have passed, or ``stop``."""
        end = None if seconds is None else time.monotonic() + seconds
        with self._changed:
            while not self.stopping.is_set() and any(self.busy(n) for n in names):
                left = 1.0 if end is None else end - time.monotonic()
                if left <= 0:
                    return
                self._changed.wait(min(left, 1.0))

    def collect(self, into: SyncReport) -> None:
        """Add the counts of the lanes that ended and were not counted yet."""
        with self._changed:
            for lane in self._lanes.values():
                if lane.done and not lane.collected:
                    into.add(lane.report)
                    lane.collected = True

    def stop(self, grace: float) -> list[str]:
        """Ask every lane to stop after its current request; wait ``grace`` seconds at most.
        Returns the destinations whose lanes are still running (hanging)."""
        self.stopping.set()
        end = time.monotonic() + grace
        with self._changed:
            self._changed.notify_all()
            while any(self.busy(n) for n in self._lanes) and time.monotonic() < end:
                self._changed.wait(max(0.0, min(0.1, end - time.monotonic())))
        return [n for n in self._lanes if self.busy(n)]
