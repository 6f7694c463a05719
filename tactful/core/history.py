"""One membership history out of two, when two persons merge.

Each person's history alternates ``entered`` / ``exited`` per segment. The merged person is
in a segment while either of the two was: of the two histories put together, in time order,
an ``entered`` is kept only when neither was in the segment yet, an ``exited`` only when the
other is not in it either. What is kept alternates again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Row:
    ref: tuple[str, int]  # the caller's handle on the row
    source: str  # whose history it was (a person id)
    segment: str
    change: str  # entered | exited
    at: datetime


def union_history(rows: Sequence[Row]) -> set[tuple[str, int]]:
    """The refs of the rows to keep. ``rows``: both histories, each in its own order (rows at
    one time keep the order they are given in)."""
    ordered = sorted(enumerate(rows), key=lambda item: (item[1].at, item[0]))
    inside: dict[str, set[str]] = {}
    kept: set[tuple[str, int]] = set()
    for _, row in ordered:
        members = inside.setdefault(row.segment, set())
        if row.change == "entered":
            if not members:
                kept.add(row.ref)
            members.add(row.source)
        elif row.source in members:
            members.discard(row.source)
            if not members:
                kept.add(row.ref)
    return kept
