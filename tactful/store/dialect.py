"""What differs between the SQL of SQLite and of PostgreSQL, rendered where a statement is
built (never by rewriting its text later): the parameter mark, lists of values, the text
type of the schema, and the row lock of a read-then-write.

Each store's transactions and readers hold their ``Dialect`` (``SQLITE`` or ``POSTGRESQL``)
and write every statement with it::

    p = self.dialect.p
    conn.execute(f"SELECT value FROM meta WHERE key = {p}", (key,))
    among, values = self.dialect.among("person_id", chunk)
    conn.execute(f"SELECT person_id FROM persons WHERE {among}", values)

A list of values is ``col IN (?, ?, …)`` on SQLite and ``col = ANY(%s)`` with the list as one
array parameter on PostgreSQL: there every list, whatever its length, is the same short
statement, which psycopg parses once and caches (it converts a statement's placeholders in
Python, and caches only short statements)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Params = tuple[object, ...]


@dataclass(frozen=True, slots=True)
class Dialect:
    name: Literal["sqlite", "postgresql"]
    p: str  # the parameter mark
    text: str  # the schema's text type: compared bytewise on both stores
    for_update: str  # appended to a read whose rows the transaction then writes
    arrays: bool  # lists of values as one array parameter

    def marks(self, n: int) -> str:
        """``n`` parameter marks, comma-separated (a ``VALUES`` row)."""
        return ", ".join([self.p] * n)

    def among(self, column: str, values: Sequence[object]) -> tuple[str, Params]:
        """``column`` is one of ``values``: the condition and its parameters."""
        if self.arrays:
            return f"{column} = ANY({self.p})", (list(values),)
        return f"{column} IN ({self.marks(len(values))})", tuple(values)

    def not_among(self, column: str, values: Sequence[object]) -> tuple[str, Params]:
        """``column`` is none of ``values``: the condition and its parameters."""
        if self.arrays:
            return f"{column} <> ALL({self.p})", (list(values),)
        return f"{column} NOT IN ({self.marks(len(values))})", tuple(values)


SQLITE = Dialect("sqlite", p="?", text="TEXT", for_update="", arrays=False)
# Text compares bytewise (``COLLATE "C"``), as on SQLite, so ordering and paging by ids agree.
POSTGRESQL = Dialect(
    "postgresql", p="%s", text='TEXT COLLATE "C"', for_update=" FOR UPDATE", arrays=True
)


def contains_pattern(text: str) -> str:
    """A ``LIKE … ESCAPE '\\'`` pattern matching any value that holds ``text``: its ``%``,
    ``_`` and backslashes taken literally (a parameter, never part of the statement)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
