"""Folding a known set of events person by person instead of in time order.

An import in time order (``Engine.apply_many`` a batch at a time) loads, evaluates and saves
a person once for every batch their events fall into, and the batches' persons are spread
over the whole store. Here the events are split first into *components*: events that can
concern one person (sharing an identifier, a ticket, a merged Zendesk user, or a person
already stored) are in one component, and two components share nothing a fold reads or
writes. Each component is folded whole, by the same ``Batch`` and in time order inside it,
so each person is loaded and saved once; components are packed into batches in order of
their persons' ids, so those writes go to the store's pages in key order.

Components that share nothing give the same result folded one after the other as folded
together in time order, provided that every batch sweeps from the same engine clock (the
clock before the import) to the same end (the latest event), and fires only its own
persons' timers (``Batch(own_timers=True)``). A last pass fires the timers of persons no
component names and advances the clock, as the last batch of a time-ordered import does.

``fold_grouped`` takes events already read (an import's, or, later, a replay's log);
``partition`` is the pure part.
"""

from __future__ import annotations

import multiprocessing
import queue
import traceback
from array import array
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Protocol

from tactful.bootstrap import engine_on_own_store
from tactful.core import codec
from tactful.core.events import (
    EVENT_KIND,
    Event,
    RatingGiven,
    TicketStatusChanged,
    TicketText,
    TicketVersion,
    UserMerged,
)
from tactful.core.graph import IdentityPlan, Unresolvable, person_id_for
from tactful.engine.batch import Batch, BatchStats
from tactful.engine.engine import Engine, Rules
from tactful.reasons import saved as saved_models
from tactful.store.base import EventRow, Store, Tx
from tactful.store.records import to_us

Node = tuple[str, str]  # ("i", "kind\0value") identifier, ("t", id) ticket, ("p", id) person


@dataclass(frozen=True)
class Pending:
    """One event to fold and where it came from (its row in the event log)."""

    event: Event
    source: str
    document_id: int | None
    canonical: bytes | None = None  # ``codec.dumps(event)``, when already made


def event_nodes(plan: IdentityPlan, event: Event) -> list[Node]:
    """What an event's fold can read or write through: its identifiers, its ticket, the
    Zendesk users of a merge (none: the event is rejected, and concerns nobody)."""
    nodes: list[Node] = []
    if isinstance(event, UserMerged):
        nodes += [
            ("i", f"zendesk_user_id\0{event.source_user_id}"),
            ("i", f"zendesk_user_id\0{event.target_user_id}"),
        ]
    else:
        try:
            keys = plan.identifiers(event)
        except Unresolvable:
            keys = None
        if keys is not None:
            nodes += [("i", f"{kind}\0{value}") for kind, value in (*keys[0], *keys[1])]
    if (
        isinstance(event, TicketVersion | TicketStatusChanged | TicketText | RatingGiven)
        and event.ticket_id is not None
    ):
        nodes.append(("t", str(event.ticket_id)))
    return nodes


# What the store knows links nodes too: (identifier keys, ticket ids, person ids) -> pairs
# of (node, person id) for the stored persons they lead to.
StoredLinks = Callable[[list[tuple[str, str]], list[int], list[str]], Iterable[tuple[Node, str]]]


def partition(
    plan: IdentityPlan, salt: str, events: Sequence[Event], stored: StoredLinks
) -> list[list[int]]:
    """The components of ``events`` (each a list of indexes into it, in their order), in
    the order ``Planner.order`` gives them."""
    planner = Planner(plan)
    for event in events:
        planner.add(event)
    indexes, ends = planner.order(salt, stored)
    return [list(indexes[start:end]) for start, end in zip([0, *ends[:-1]], ends, strict=True)]


class Planner:
    """The components of events added one at a time (``add``), keeping only what planning
    needs: each node's place in a union-find (arrays indexed by the node's number, union by
    size, path halving) and each event's first node, not the events themselves."""

    def __init__(self, plan: IdentityPlan) -> None:
        self.plan = plan
        self.numbers: dict[str, int] = {}  # node ("i"/"t"/"p" + its name) -> its number
        self.parent = array("i")
        self.size = array("i")
        self.firsts = array("i")  # per event added: its first node's number (-1: none)

    def __len__(self) -> int:
        return len(self.firsts)

    def add(self, event: Event) -> None:
        nodes = event_nodes(self.plan, event)
        if not nodes:
            self.firsts.append(-1)
            return
        first = self._number(nodes[0])
        self.firsts.append(first)
        for node in nodes[1:]:
            self._union(first, self._number(node))

    def _number(self, node: Node) -> int:
        name = node[0] + node[1]
        number = self.numbers.get(name)
        if number is None:
            number = self.numbers[name] = len(self.parent)
            self.parent.append(number)
            self.size.append(1)
        return number

    def _find(self, number: int) -> int:
        parent = self.parent
        while parent[number] != number:
            parent[number] = parent[parent[number]]
            number = parent[number]
        return number

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def order(self, salt: str, stored: StoredLinks) -> tuple[array[int], array[int]]:
        """The events' indexes component by component (each component in the order its
        events were added) and where each component ends in them. Components are ordered by
        the smallest person id each can lead to (a stored person's, or the id a new person
        would get from one of its identifiers); events that name no node come first, each
        alone."""
        self._link(stored)
        least = self._least(salt)
        firsts = self.firsts
        roots = array("i", (self._find(f) if f >= 0 else -1 for f in firsts))
        ranked = sorted({r for r in roots if r >= 0}, key=lambda r: (least[r], r))
        alone = len(roots) - sum(1 for r in roots if r >= 0)
        rank = array("i", bytes(4 * len(self.parent)))
        for position, root in enumerate(ranked):
            rank[root] = position
        counts = array("i", bytes(4 * len(ranked)))
        for root in roots:
            if root >= 0:
                counts[rank[root]] += 1
        ends = array("i", range(1, alone + 1))
        end = alone
        for n in counts:
            end += n
            ends.append(end)
        starts = array("i", [alone]) + ends[alone:-1] if ranked else array("i")
        indexes = array("i", bytes(4 * len(roots)))
        solo = 0
        for i, root in enumerate(roots):
            if root < 0:
                indexes[solo] = i
                solo += 1
            else:
                position = rank[root]
                indexes[starts[position]] = i
                starts[position] += 1
        return indexes, ends

    def _link(self, stored: StoredLinks) -> None:
        """Join the nodes the store links (to a stored person), a chunk of nodes at a time."""
        names = list(self.numbers)
        for start in range(0, len(names), LOOKUP_CHUNK):
            keys: list[tuple[str, str]] = []
            tickets: list[int] = []
            for name in names[start : start + LOOKUP_CHUNK]:
                if name[0] == "t":
                    tickets.append(int(name[1:]))
                else:
                    keys.append(_key(name[1:]))
            person_ids = [value for kind, value in keys if kind == "person_id"]
            for node, pid in stored(keys, tickets, person_ids):
                self._union(self._number(node), self._number(("p", pid)))

    def _least(self, salt: str) -> array[int]:
        """Per component root, the place in key order of the least person id it leads to."""
        least = array("q", [_LAST]) * len(self.parent)
        for name, number in self.numbers.items():
            kind = name[0]
            if kind == "t":
                continue
            pid = name[1:] if kind == "p" else person_id_for(salt, _key(name[1:]))
            root = self._find(number)
            least[root] = min(least[root], _place(pid))
        return least


LOOKUP_CHUNK = 10_000  # nodes whose stored links are looked up at once
_LAST = 2**63 - 1


def _place(pid: str) -> int:
    """A person id's place in key order, as an int (its first 8 bytes, which tell apart
    about 16 million ids; components that tie are ordered by their root)."""
    return int.from_bytes(pid.encode()[:8].ljust(8, b"\0"), "big") >> 1


def _key(name: str) -> tuple[str, str]:
    kind, _, value = name.partition("\0")
    return kind, value


def stored_links(tx: Tx) -> StoredLinks:
    """``StoredLinks`` read through a transaction."""

    def links(
        keys: list[tuple[str, str]], tickets: list[int], person_ids: list[str]
    ) -> Iterable[tuple[Node, str]]:
        for (kind, value), pids in tx.lookup_identifiers(keys).items():
            for pid in pids:
                yield ("i", f"{kind}\0{value}"), pid
        for tid, (owner, _) in tx.load_tickets(tickets).items():
            if owner:
                yield ("t", str(tid)), owner
        for value in person_ids:
            found = tx.resolve_person_id(value)
            if found is not None:
                yield ("i", f"person_id\0{value}"), found

    return links


def batches(ends: Sequence[int], batch_size: int) -> list[tuple[int, int]]:
    """Whole components (ending at ``ends`` in the ordered events) packed into batches of at
    least ``batch_size`` events (the last may be smaller; a component larger than that is a
    batch of its own): each batch's (start, end) in the ordered events."""
    spans: list[tuple[int, int]] = []
    start = 0
    for end in ends:
        if end - start >= batch_size:
            spans.append((start, end))
            start = end
    if ends and start < ends[-1]:
        spans.append((start, ends[-1]))
    return spans


class Read(Protocol):
    """Events read for a fold: how many, what planning needs (``planner``, every event
    added), the latest event's time, and some of them back by their index."""

    planner: Planner
    latest: datetime | None

    def __len__(self) -> int: ...

    def take(self, indexes: Sequence[int]) -> list[Pending]: ...


class Held:
    """Events held in memory, as a ``Read``."""

    def __init__(self, plan: IdentityPlan, pending: Sequence[Pending]) -> None:
        self.pending = pending
        self.planner = Planner(plan)
        for p in pending:
            self.planner.add(p.event)
        self.latest = max((p.event.at for p in pending), default=None)

    def __len__(self) -> int:
        return len(self.pending)

    def take(self, indexes: Sequence[int]) -> list[Pending]:
        return [self.pending[i] for i in indexes]


class Parts:
    """A fold's batches, each read when it is folded: ``parts[i]`` is batch ``i``'s events
    in event order (so a forked worker reads only the batches it folds)."""

    def __init__(self, read: Read, indexes: array[int], spans: list[tuple[int, int]]) -> None:
        self.read = read
        self.indexes = indexes
        self.spans = spans

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, index: int) -> list[Pending]:
        start, end = self.spans[index]
        return self.read.take(sorted(self.indexes[start:end]))


def fold_grouped(
    engine: Engine,
    pending: Sequence[Pending] | Read,
    *,
    batch_size: int,
    history_before: datetime | None,
    on_batch: Callable[[BatchStats], None] | None = None,
    workers: int = 1,
) -> BatchStats:
    """Log and fold ``pending`` component by component (see the module's docstring), each
    batch in one bulk transaction; return the stats of all batches together. ``pending``:
    the events in a list, or a ``Read`` that keeps them elsewhere (``tactful.engine.spill``).
    ``workers``: processes folding batches at once where the store takes several writers
    (``parallel``).
    """
    total = BatchStats()
    read = Held(engine.plan, pending) if isinstance(pending, Sequence) else pending
    if not len(read) or read.latest is None:
        return total
    with engine.store.transaction(durable=False, bulk=True) as tx:
        clock = Engine._clock(tx)
        salt = Engine._salt(tx)
        indexes, ends = read.planner.order(salt, stored_links(tx))
    until = read.latest
    if clock is not None and clock > until:
        until = clock

    def report(stats: BatchStats) -> None:
        _add(total, stats)
        if on_batch is not None:
            on_batch(stats)

    parts = Parts(read, indexes, batches(ends, batch_size))
    workers = min(workers, len(parts)) if parallel(engine.store) else 1
    if workers > 1:
        _fold_in_workers(engine, parts, until, history_before, workers, report)
    else:
        for index in range(len(parts)):
            work = partial(_fold_batch, engine, parts[index], until, history_before)
            report(engine._retrying(work))
    report(engine._retrying(partial(_last, engine, until, history_before)))
    return total


def parallel(store: Store) -> bool:
    """Whether batches may be folded by several processes at once: on PostgreSQL (each with
    its own connection). SQLite has one writer, and a ``Batch`` reads and writes the store
    while it folds, so a second process would only wait for the first."""
    return store.url.startswith(("postgresql:", "postgres:"))


def _fold_in_workers(
    engine: Engine,
    parts: Parts,
    until: datetime,
    history_before: datetime | None,
    workers: int,
    report: Callable[[BatchStats], None],
) -> None:
    """Fold ``parts`` in ``workers`` forked processes, each on its own connection, taking
    the next part as it finishes one (the components are disjoint: no two lock, read or
    write the same person, identifier or ticket)."""
    context = multiprocessing.get_context("fork")  # the rules are closures: not pickled
    tasks: multiprocessing.Queue[int | None] = context.Queue()
    results: multiprocessing.Queue[tuple[bool, BatchStats | str]] = context.Queue()
    for index in range(len(parts)):
        tasks.put(index)
    for _ in range(workers):
        tasks.put(None)
    args = (engine, parts, until, history_before, tasks, results)
    processes = [context.Process(target=_worker, args=args, daemon=True) for _ in range(workers)]
    for process in processes:
        process.start()
    try:
        for _ in range(len(parts)):
            while True:
                try:
                    ok, value = results.get(timeout=1.0)
                    break
                except queue.Empty:
                    if not any(process.is_alive() for process in processes):
                        raise WorkerFailed("the workers ended before every batch") from None
            if not ok:
                raise WorkerFailed(str(value))
            assert isinstance(value, BatchStats)
            report(value)
    except BaseException:
        for process in processes:
            process.terminate()
        raise
    finally:
        for process in processes:
            process.join()


class WorkerFailed(RuntimeError):
    """A worker process could not fold its batch (its traceback is the message); batches
    other workers committed stay committed, and a re-run folds the rest."""


def _worker(
    parent: Engine,
    parts: Parts,
    until: datetime,
    history_before: datetime | None,
    tasks: multiprocessing.Queue[int | None],
    results: multiprocessing.Queue[tuple[bool, BatchStats | str]],
) -> None:
    engine = engine_on_own_store(parent)
    try:
        while (index := tasks.get()) is not None:
            try:
                work = partial(_fold_batch, engine, parts[index], until, history_before)
                results.put((True, engine._retrying(work)))
            except Exception:
                results.put((False, traceback.format_exc()))
                return
    finally:
        engine.store.close()


def _last(engine: Engine, until: datetime, history_before: datetime | None) -> BatchStats:
    """Fire the timers no batch fired (persons the events do not name) and move the clock."""
    with engine.store.transaction(durable=False, bulk=True) as tx:
        return _run(engine, tx, [], until, history_before, own_timers=False)


def _fold_batch(
    engine: Engine,
    part: Sequence[Pending],
    until: datetime,
    history_before: datetime | None,
) -> BatchStats:
    with engine.store.transaction(durable=False, bulk=True) as tx:
        rows = [
            EventRow(
                key=p.event.key,
                kind=EVENT_KIND[type(p.event)],
                at_us=to_us(p.event.at),
                source=p.source,
                document_id=p.document_id,
                canonical=p.canonical or codec.dumps(p.event),
            )
            for p in part
        ]
        inserted = tx.insert_events(rows)
        fresh = [p.event for p, ok in zip(part, inserted, strict=True) if ok]
        stats = _run(engine, tx, fresh, until, history_before, own_timers=True)
        stats.received = len(part)
        stats.duplicates = len(part) - len(fresh)
        for row, ok in zip(rows, inserted, strict=True):
            if not ok:
                stats.duplicates_by_source[row.source] += 1
        return stats


def _run(
    engine: Engine,
    tx: Tx,
    events: Sequence[Event],
    until: datetime,
    history_before: datetime | None,
    *,
    own_timers: bool,
) -> BatchStats:
    # The clock as the batch finds it: this fold moves it only at the end (``_last``), so
    # every batch sweeps from where the import started, unless another process moved it.
    clock = Engine._clock(tx)
    until = until if clock is None or clock < until else clock
    rules: Rules = engine.rules
    batch = Batch(
        tx,
        rules,
        engine.plan,
        Engine._salt(tx),
        history_before=history_before,
        model=saved_models.active(tx) if rules.learn_reasons else None,
        threshold=rules.reason_threshold,
        own_timers=own_timers,
    )
    owners = batch.resolve(events)
    batch.load(events, owners, until)
    batch.sweep(events, owners, clock, until)
    batch.flush()
    if not own_timers:
        tx.advance_clock(until)
    stats = batch.stats
    stats.applied = len(events) - len({k for k, _ in stats.rejected})
    return stats


def _add(total: BatchStats, stats: BatchStats) -> None:
    total.received += stats.received
    total.applied += stats.applied
    total.duplicates += stats.duplicates
    total.rejected += stats.rejected
    total.entered += stats.entered
    total.exited += stats.exited
    total.state_changes += stats.state_changes
    total.timers_fired += stats.timers_fired
    total.persons_touched += stats.persons_touched
    total.duplicates_by_source += stats.duplicates_by_source
