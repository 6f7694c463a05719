"""Planning a fold by person: which events can concern one person (a *component*), and
the batches of whole components in the order they are folded (``tactful.engine.grouped``).

Events are added one at a time (``Planner.add``), so the events themselves need not be held
while every event is planned: an import spills them to disk (``tactful.engine.spill``). What
planning keeps per event (its first node; then its component's place, sorted) is on disk
too (``tactful.engine.ondisk``); in memory it keeps the nodes' table and union-find, and
frees them once the events are ordered.
"""

from __future__ import annotations

import itertools
import os
import struct
import tempfile
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from hashlib import blake2b
from typing import IO, Protocol

from tactful.core.events import (
    Event,
    RatingGiven,
    TicketStatusChanged,
    TicketText,
    TicketVersion,
    UserMerged,
)
from tactful.core.graph import IdentityPlan, Unresolvable, person_id_for
from tactful.engine.ondisk import Column, external_sort

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
    try:
        for event in events:
            planner.add(event)
        indexes, ends = planner.order(salt, stored)
        bounds = list(ends)
        starts = [0, *bounds[:-1]]
        return [list(indexes[start:end]) for start, end in zip(starts, bounds, strict=True)]
    finally:
        planner.close()


class Planner:
    """The components of events added one at a time (``add``), keeping only what planning
    needs: each node's number (``_Nodes``), its place in a union-find (arrays indexed by
    the number, union by size, path halving) and each event's first node, not the events.
    ``on_disk``: the nodes' names go to a temporary file past a megabyte, and the events'
    first nodes and order to others (``ondisk``; all removed by ``close``)."""

    def __init__(self, plan: IdentityPlan, *, on_disk: bool = True) -> None:
        self.plan = plan
        self.nodes = _Nodes(on_disk)  # node ("i"/"t"/"p" + its name) -> its number
        self.parent = array("i")
        self.size = array("i")
        # per event added: its first node's number (-1: none)
        self.firsts = Column("i", on_disk=on_disk)
        self._ordered: list[Column] = []  # what ``order`` gave

    def close(self) -> None:
        self.nodes.close()
        self.firsts.close()
        for column in self._ordered:
            column.close()

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
        number = self.nodes.number(node[0] + node[1])
        if number == len(self.parent):  # a new node
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

    def order(self, salt: str, stored: StoredLinks) -> tuple[Column, Column]:
        """The events' indexes component by component (each component in the order its
        events were added) and where each component ends in them, both as columns (on disk
        when the planner is). Components are ordered by the smallest person id each can
        lead to (a stored person's, or the id a new person would get from one of its
        identifiers), then by their root; events that name no node come first, each alone.

        Called once, after every event was added: it frees the node table, and then the
        union-find, as it goes (what it keeps per event is on disk: ``ondisk``)."""
        self._link(stored)
        self.nodes.forget()  # numbers of names are not looked up again
        least = self._least(salt)

        def keys() -> Iterator[int]:
            # (component's least place + 1, or 0 alone) << 64 | (root, or itself) << 32 | i
            find = self._find
            for i, first in enumerate(self.firsts):
                if first < 0:
                    yield i << 32 | i
                else:
                    root = find(first)
                    yield (least[root] + 1) << 64 | root << 32 | i

        on_disk = self.nodes.on_disk
        indexes, ends = Column("i", on_disk=on_disk), Column("i", on_disk=on_disk)
        self._ordered += [indexes, ends]
        ordered = external_sort(keys(), on_disk=on_disk)  # takes every key now
        least, self.parent, self.size = array("q"), array("i"), array("i")  # done with
        component, count = -1, 0
        for key in ordered:
            if key >> 32 != component:
                if count:
                    ends.append(count)
                component = key >> 32
            indexes.append(key & _LOW)
            count += 1
        if count:
            ends.append(count)
        indexes.flush()
        ends.flush()
        return indexes, ends

    def _link(self, stored: StoredLinks) -> None:
        """Join the nodes the store links (to a stored person), a chunk of nodes at a time."""
        names = self.nodes.names(self.nodes.count)
        while chunk := list(itertools.islice(names, LOOKUP_CHUNK)):
            keys: list[tuple[str, str]] = []
            tickets: list[int] = []
            for name in chunk:
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
        for number, name in enumerate(self.nodes.names(self.nodes.count)):
            kind = name[0]
            if kind == "t":
                continue
            pid = name[1:] if kind == "p" else person_id_for(salt, _key(name[1:]))
            root = self._find(number)
            least[root] = min(least[root], _place(pid))
        return least


class _Nodes:
    """Node names to numbers (0, 1, 2… in order of first sight), in a few bytes a node: an
    open-addressing table (linear probing, at most half full) of each name's 63-bit BLAKE2b
    digest, and the names in order, length-prefixed, in a buffer that goes to an unnamed
    temporary file past ``_NAMES_IN_MEMORY`` bytes (``on_disk``). A Python dict of the
    names took about 200 bytes a node. Two names with one digest (about one chance in a
    million at 4 million nodes) would be one node: their events would be planned into one
    group, folded as one time-ordered batch folds them, so the result would not change."""

    def __init__(self, on_disk: bool) -> None:
        self.on_disk = on_disk
        self.count = 0
        self._keys = array("q", bytes(8 * 1024))
        self._numbers = array("i", bytes(4 * 1024))
        self._names = bytearray()
        self._file: IO[bytes] | None = None
        self._filed = 0  # bytes of names in the file

    def number(self, name: str) -> int:
        encoded = name.encode()
        key = int.from_bytes(blake2b(encoded, digest_size=8).digest(), "little") >> 1 | 1
        keys, mask = self._keys, len(self._keys) - 1
        slot = key & mask
        while (found := keys[slot]) != 0:
            if found == key:
                return self._numbers[slot]
            slot = (slot + 1) & mask
        number = self.count
        keys[slot], self._numbers[slot] = key, number
        self.count += 1
        self._names += _SIZE.pack(len(encoded)) + encoded
        if self.on_disk and len(self._names) >= _NAMES_IN_MEMORY:
            self._spill()
        if 2 * self.count > mask:
            self._grow()
        return number

    def _grow(self) -> None:
        old_keys, old_numbers = self._keys, self._numbers
        size = 2 * len(old_keys)
        keys, numbers, mask = array("q", bytes(8 * size)), array("i", bytes(4 * size)), size - 1
        for key, number in zip(old_keys, old_numbers, strict=True):
            if key:
                slot = key & mask
                while keys[slot]:
                    slot = (slot + 1) & mask
                keys[slot], numbers[slot] = key, number
        self._keys, self._numbers = keys, numbers

    def forget(self) -> None:
        """Free the table: names are numbered no more (``names`` still reads them)."""
        self._keys, self._numbers = array("q"), array("i")

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="tactful-nodes-")  # noqa: SIM115
        self._file.write(self._names)
        self._file.flush()
        self._filed += len(self._names)
        self._names.clear()

    def names(self, count: int) -> Iterator[str]:
        """The first ``count`` names, in order (names added meanwhile may follow)."""
        if self._file is not None and self._names:
            self._spill()
        fd, offset, left = (None if self._file is None else self._file.fileno()), 0, count
        pending, last = b"", False
        while left > 0 and not last:
            if fd is not None and offset < self._filed:  # the file, a part at a time
                data = pending + os.pread(fd, min(_READ, self._filed - offset), offset)
                offset += len(data) - len(pending)
            else:  # then the names not in the file
                data, last = pending + bytes(self._names), True
            at = 0
            while left > 0 and at + _SIZE.size <= len(data):
                (size,) = _SIZE.unpack_from(data, at)
                if at + _SIZE.size + size > len(data):
                    break
                yield data[at + _SIZE.size : at + _SIZE.size + size].decode()
                at += _SIZE.size + size
                left -= 1
            pending = data[at:]

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


_SIZE = struct.Struct("<I")
_NAMES_IN_MEMORY = 1 << 20
_READ = 1 << 20
LOOKUP_CHUNK = 10_000  # nodes whose stored links are looked up at once
_LAST = 2**63 - 1
_LOW = (1 << 32) - 1


def _place(pid: str) -> int:
    """A person id's place in key order, as an int (its first 8 bytes, which tell apart
    about 16 million ids; components that tie are ordered by their root)."""
    return int.from_bytes(pid.encode()[:8].ljust(8, b"\0"), "big") >> 1


def _key(name: str) -> tuple[str, str]:
    kind, _, value = name.partition("\0")
    return kind, value


def batches(ends: Iterable[int], batch_size: int) -> list[tuple[int, int]]:
    """Whole components (ending at ``ends`` in the ordered events) packed into batches of at
    least ``batch_size`` events (the last may be smaller; a component larger than that is a
    batch of its own): each batch's (start, end) in the ordered events."""
    spans: list[tuple[int, int]] = []
    start = last = 0
    for last in ends:
        if last - start >= batch_size:
            spans.append((start, last))
            start = last
    if start < last:
        spans.append((start, last))
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
        self.planner = Planner(plan, on_disk=False)
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

    def __init__(self, read: Read, indexes: Column, spans: list[tuple[int, int]]) -> None:
        self.read = read
        self.indexes = indexes
        self.spans = spans

    def __len__(self) -> int:
        return len(self.spans)

    def __getitem__(self, index: int) -> list[Pending]:
        start, end = self.spans[index]
        return self.read.take(sorted(self.indexes[start:end]))
