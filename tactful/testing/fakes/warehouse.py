"""What the cloud warehouse fakes (BigQuery, Snowflake) share: tables of rows, left as the
warehouse destination's ``MERGE`` and ``DELETE`` statements would leave them, and a
snapshot of them that the conformance suite compares."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from tactful.testing.fakes.base import FakeBase

INSERT = "WHEN NOT MATCHED THEN INSERT"
UPDATE = "WHEN MATCHED"


class FakeWarehouse(FakeBase):
    def __init__(self, *, max_rows: int) -> None:
        super().__init__()
        self.max_rows = max_rows
        self.tables: dict[str, list[dict[str, Any]]] = {}

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """Rows by table (``loaded_at`` left out), sorted."""
        with self.lock:
            return {
                name: sorted(
                    ({k: v for k, v in row.items() if k != "loaded_at"} for row in rows),
                    key=lambda r: json.dumps(r, sort_keys=True),
                )
                for name, rows in self.tables.items()
            }

    def max_items_per_request(self) -> int:
        return self.max_rows

    def _merge(
        self, table: str, sources: Iterable[dict[str, Any]], *, on: str, rest: str, guard: str
    ) -> None:
        """``MERGE INTO table … ON t.on = s.on`` + ``rest`` (its ``WHEN`` clauses): a source
        row is inserted when not matched, else updates its target (only when its
        ``updated_at`` is not older, if ``rest`` holds ``guard``)."""
        rows = self.tables[table]
        index = {row[on]: row for row in rows}
        for source in sources:
            row, target = source | {"loaded_at": "now"}, index.get(source[on])
            if target is None and INSERT in rest:
                rows.append(row)
                index[source[on]] = row
            elif target is not None and UPDATE in rest and _newer(source, target, rest, guard):
                target.update(row)

    def _delete(self, table: str, persons: Iterable[str]) -> None:
        """``DELETE FROM table WHERE person_id IN (persons)``."""
        gone = set(persons)
        self.tables[table][:] = [r for r in self.tables[table] if r["person_id"] not in gone]


def _newer(source: dict[str, Any], target: dict[str, Any], rest: str, guard: str) -> bool:
    """Whether a matched row is updated: always, unless the statement holds ``guard`` and
    the source is older than the target."""
    return guard not in rest or source["updated_at"] >= target["updated_at"]
