"""A replay's report and its progress marker (``Engine.replay``).

A replay commits a chunk at a time. Where it stands is kept in meta ``replay``
(``store.base.REPLAY_KEY``) in the same commit as each chunk's work: the phase, the last
event replayed or person compared, the clock before it, and the report so far (counts and
samples only, so its size does not grow with the persons). A replay stopped half way (killed,
a power cut) resumes from there; while the marker is there, writers keep what they
acknowledge in the inbox and ticks and delivery routing wait.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

import orjson

from tactful.core import codec
from tactful.core.graph import IdentityPlan
from tactful.engine.components import Node, Parts, batches
from tactful.engine.messages import NOBODY, REPLAYED, Image, net_rows
from tactful.engine.spill import Spill
from tactful.exceptions import TryAgain
from tactful.store.base import OutboxRow, Tx
from tactful.store.records import dump_state

SAMPLE = 50  # persons named per segment (entering, exiting) and in ``changed``
PERSON_PAGE = 2000  # persons compared (and their corrections written) per commit

# The phases, in order: replay the log a chunk at a time; run the clock to where it was;
# compare each person with the snapshot; persons of the snapshot no longer there; done.
RECOMPUTE, SETTLE, COMPARE, GONE, DONE = "recompute", "settle", "compare", "gone", "done"

Corrections = Sequence[tuple[OutboxRow, frozenset[str]]]
# Per destination, how many deliveries of each kind some corrections make (the router's
# ``preview``): summed page by page into ``ReplayReport.destinations``.
Count = Callable[[Corrections], Mapping[str, Counter[str]]]
Progress = Callable[[int, int], None]  # (events replayed, events in the log)


class ReplayInProgress(TryAgain):
    """A replay is unfinished (meta ``replay``): the store is being rebuilt. Run
    ``tactful replay`` to finish it; writes wait for it (the server queues them)."""


@dataclass
class ReplayReport:
    """What a replay changed (or, with ``dry_run``, would change; nothing was written).

    ``segments``: per segment, how many persons enter and exit (``enter``, ``exit``) and the
    first ``SAMPLE`` of them (``entering``, ``exiting``). ``changed``: the first ``SAMPLE``
    persons whose state or segments changed (``persons_changed`` counts them all).
    ``messages``: the outbox rows of the net change; ``destinations``: per destination the
    deliveries they make, by kind (when the replay was given a ``Count``). ``resumed``: this
    run finished a replay stopped half way (the counts cover the whole replay)."""

    events: int
    persons_before: int
    persons_after: int
    changed: list[dict[str, Any]]  # person_id, before, after
    dry_run: bool = False
    segments: dict[str, dict[str, Any]] = field(default_factory=dict)
    persons_changed: int = 0
    messages: int = 0
    destinations: dict[str, Counter[str]] = field(default_factory=dict)
    resumed: bool = False

    def correct(self, pid: str, told: Image | None, now: Image) -> None:
        """Count one person's net change."""
        told = told or NOBODY
        if told.state != now.state or told.memberships != now.memberships:
            self.persons_changed += 1
            if len(self.changed) < SAMPLE:
                self.changed.append(
                    {"person_id": pid, "before": _describe(told), "after": _describe(now)}
                )
        for segment in sorted(set(told.memberships) | set(now.memberships)):
            was, will = segment in told.memberships, segment in now.memberships
            if was == will:
                continue
            entry = self.segments.setdefault(
                segment, {"enter": 0, "exit": 0, "entering": [], "exiting": []}
            )
            entry["enter" if will else "exit"] += 1
            sample = entry["entering" if will else "exiting"]
            if len(sample) < SAMPLE:
                sample.append(pid)

    def count(self, rows: Corrections, count: Count | None) -> None:
        self.messages += len(rows)
        if count is not None and rows:
            for name, kinds in count(rows).items():
                self.destinations.setdefault(name, Counter()).update(kinds)


def corrections(
    pid: str, told: Image | None, now: Image, at: datetime, rules: dict[str, str]
) -> list[tuple[OutboxRow, frozenset[str]]]:
    """One person's net change as outbox rows (stamped ``replayed``), each with the person's
    non-holdout segments after the replay (what the router needs to preview deliveries)."""
    rows = net_rows(pid, told or NOBODY, now, at, rules, REPLAYED)
    members = frozenset(s for s, holdout in now.memberships.items() if not holdout)
    return [(row, members) for row in rows]


@dataclass
class Marker:
    """Where a replay stands (meta ``replay``)."""

    phase: str
    seq: int  # the last event replayed
    after: str | None  # the last person compared (COMPARE, GONE)
    clock: str | None  # the engine clock before the replay (it returns there)
    at: str  # the time the corrections are stamped with
    total: int  # events in the log
    report: ReplayReport
    by_person: bool = False  # the log is folded component by component (``ByPerson``)
    part: int = 0  # by person: the batches of components folded, the first ``part`` of them
    batch_size: int = 0  # by person: the events per batch the components were packed into
    # by person: batches past ``part`` folded too (workers on PostgreSQL commit out of order)
    done: list[int] = field(default_factory=list)

    def todo(self, batches: int) -> list[int]:
        """Of a replay by person's ``batches``, those not folded yet, in order."""
        done = set(self.done)
        return [index for index in range(self.part, batches) if index not in done]

    def folded(self, index: int, events: int) -> None:
        """Batch ``index`` (of ``events`` events) of a replay by person is folded (stored in
        the batch's own commit)."""
        done = {*self.done, index}
        while self.part in done:
            done.remove(self.part)
            self.part += 1
        self.done = sorted(done)
        self.report.events += events

    def dumps(self) -> str:
        report = self.report
        # not ``asdict``: it would rebuild each Counter from its items, counting them
        data = {
            **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "report"},
            "report": {
                **{f.name: getattr(report, f.name) for f in fields(report)},
                "destinations": {k: dict(v) for k, v in report.destinations.items()},
            },
        }
        return orjson.dumps(data).decode()

    @staticmethod
    def loads(text: str) -> Marker:
        data = orjson.loads(text)
        report = data.pop("report")
        report["destinations"] = {k: Counter(v) for k, v in report["destinations"].items()}
        return Marker(**data, report=ReplayReport(**report))

    @property
    def corrected_at(self) -> datetime:
        return codec.parse_time(self.at)


class ByPerson:
    """A replay's log planned by person (``Engine.replay(by_person=True)``): its events,
    spilled to a temporary file in log order (``tactful.engine.spill``), in batches of whole
    components in the order they are folded, as ``tactful import --by-person`` folds an
    export. Planned from the log alone when first needed: the replay forgot every person
    first, and the log does not change while its marker is there, so a resumed replay plans
    the same batches and goes on from the marker's ``part``."""

    def __init__(self, plan: IdentityPlan, batch_size: int) -> None:
        self.plan = plan
        self.batch_size = batch_size
        self.spill: Spill | None = None
        self.parts: Parts | None = None
        self.until: datetime | None = None  # the latest event: every batch sweeps to it

    def planned(self, tx: Tx, salt: str) -> Parts:
        if self.parts is None:
            spill = self.spill = Spill(self.plan)
            spill.documents[0] = ("log", None)
            seq = 0
            while chunk := tx.event_chunk(seq, LOG_PAGE):
                for _, kind, blob in chunk:
                    spill.add(codec.loads(kind, blob), 0, canonical=blob)
                seq = chunk[-1][0]
            spill.flush()
            indexes, ends = spill.planner.order(salt, _nothing_stored)
            self.parts = Parts(spill, indexes, batches(ends, self.batch_size))
            self.until = spill.latest
        return self.parts

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()


LOG_PAGE = 5000  # events read from the log at a time while planning


def _nothing_stored(
    keys: list[tuple[str, str]], tickets: list[int], person_ids: list[str]
) -> Iterable[tuple[Node, str]]:
    """A replay plans from the log alone: the persons it finds stored are its own work."""
    return ()


# A person's image in a form that compares as stored: the state as stored (bytes),
# memberships and consents.
Compact = tuple[bytes, tuple[tuple[str, bool], ...], tuple[bool | None, ...]]


def compact(image: Image) -> Compact:
    return (dump_state(dict(image.state)), tuple(sorted(image.memberships.items())), image.consents)


def _describe(value: Image | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {
        "support_state": value.state.get("support_state", "clear"),
        "segments": sorted(value.memberships),
        "state": orjson.loads(dump_state(dict(value.state))),
    }
