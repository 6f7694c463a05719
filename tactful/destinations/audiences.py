"""Audience planning shared by the ad-platform audience destinations (``meta``, ``tiktok``):
grouping adds and removes so that a person's items keep their order, chunking rows into
requests, and building multi-key rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from tactful.destinations.base import Identifiers, Item, ItemKind, Outcome

Row = tuple[str, ...]
T = TypeVar("T")


@dataclass
class Group:
    """Consecutive work of one kind: ``entries`` are ``(item index, rows)``."""

    kind: ItemKind
    entries: list[tuple[int, list[Row]]] = field(default_factory=list)


def plan_audience_ops(
    items: Sequence[Item],
    rows_of: Callable[[Identifiers], list[Row]],
    outcomes: list[Outcome | None],
) -> list[Group]:
    """Group adds and removes, flushing a group before a later opposite item of one of its
    people. Items of other kinds or without rows get their ``reject`` outcome here."""
    groups: list[Group] = []
    pending = {kind: Group(kind) for kind in ("audience_add", "audience_remove")}
    people: dict[str, set[str]] = {kind: set() for kind in pending}
    for index, item in enumerate(items):
        if item.kind not in pending:
            outcomes[index] = Outcome("reject", f"unsupported item kind {item.kind!r}")
            continue
        rows = rows_of(item.identifiers)
        if not rows:
            outcomes[index] = Outcome("skip", "no identifier this platform can match on")
            continue
        other = "audience_remove" if item.kind == "audience_add" else "audience_add"
        if item.person_id in people[other]:
            groups.append(pending[other])
            pending[other], people[other] = Group(pending[other].kind), set()
        pending[item.kind].entries.append((index, rows))
        people[item.kind].add(item.person_id)
    groups.extend(group for group in pending.values() if group.entries)
    return groups


def chunk_rows(entries: list[tuple[int, list[T]]], limit: int) -> list[list[tuple[int, list[T]]]]:
    """Split entries into chunks of at most ``limit`` rows without splitting an entry."""
    chunks: list[list[tuple[int, list[T]]]] = []
    current: list[tuple[int, list[T]]] = []
    size = 0
    for entry in entries:
        if current and size + len(entry[1]) > limit:
            chunks.append(current)
            current, size = [], 0
        current.append(entry)
        size += len(entry[1])
    if current:
        chunks.append(current)
    return chunks


def zip_rows(*columns: list[str]) -> list[Row]:
    """One row per position; a missing key is ``""`` (distinct values per column)."""
    unique = [list(dict.fromkeys(column)) for column in columns]
    width = max((len(column) for column in unique), default=0)
    return [tuple(col[i] if i < len(col) else "" for col in unique) for i in range(width)]
