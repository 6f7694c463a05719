"""The store's dialects render statements as they are built: SQLite's ``?`` marks and IN
lists, PostgreSQL's ``%s`` marks and one array parameter per list; ``PgConn`` hands the
statement to psycopg as it is."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest

from tactful.store.dialect import POSTGRESQL, SQLITE, contains_pattern
from tactful.store.migrations import MIGRATIONS, statements
from tactful.store.postgres import PgConn
from tests import pgcheck


def test_each_dialect_renders_its_marks_and_lists() -> None:
    assert SQLITE.marks(3) == "?, ?, ?"
    assert POSTGRESQL.marks(3) == "%s, %s, %s"
    assert SQLITE.among("k", ["a", "b"]) == ("k IN (?, ?)", ("a", "b"))
    assert POSTGRESQL.among("k", ["a", "b"]) == ("k = ANY(%s)", (["a", "b"],))
    assert SQLITE.not_among("k", ["a"]) == ("k NOT IN (?)", ("a",))
    assert POSTGRESQL.not_among("k", ["a"]) == ("k <> ALL(%s)", (["a"],))
    # One PostgreSQL statement whatever the list's length (psycopg parses it once).
    assert POSTGRESQL.among("k", list(range(500)))[0] == POSTGRESQL.among("k", [1])[0]


@pytest.mark.parametrize("values", [[], ["b"], ["a", "c", "zz"]])
def test_sqlite_lists_select_what_they_name(values: list[str]) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (k TEXT, n INTEGER)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [("a", 1), ("b", 2), ("c", 3)])
    among, params = SQLITE.among("k", values)
    found = conn.execute(f"SELECT k FROM t WHERE n > ? AND {among} ORDER BY k", (0, *params))
    assert [r[0] for r in found] == sorted(set(values) & {"a", "b", "c"})
    outside, params = SQLITE.not_among("k", values)
    rest = conn.execute(f"SELECT k FROM t WHERE {outside} ORDER BY k", params)
    assert [r[0] for r in rest] == sorted({"a", "b", "c"} - set(values))


def test_contains_pattern_takes_like_wildcards_literally() -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?)", [("50%_off",), ("500 off",), ("a\\b",)])
    for needle, expected in (("0%_", ["50%_off"]), ("0%", ["50%_off"]), ("\\", ["a\\b"])):
        rows = conn.execute(
            "SELECT v FROM t WHERE v LIKE ? ESCAPE '\\'", (contains_pattern(needle),)
        )
        assert [r[0] for r in rows] == expected


class _Cursor:
    def __init__(self, seen: list[tuple[str, Any]]) -> None:
        self.seen = seen

    def execute(self, sql: str, params: Any = None) -> None:
        self.seen.append((sql, params))

    def executemany(self, sql: str, params: Any) -> None:
        self.seen.append((sql, params))


class _Raw:
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def cursor(self) -> _Cursor:
        return _Cursor(self.seen)


def test_pg_conn_hands_statements_to_psycopg_as_they_are() -> None:
    raw = _Raw()
    conn = PgConn(raw)
    sql = "SELECT a FROM t WHERE k = %s AND v = ANY(%s) AND w LIKE %s"
    conn.execute(sql, (1, ["x", "y"], "50%"))
    conn.executemany("INSERT INTO t VALUES (%s, %s)", [(1, 2), (3, 4)])
    conn.execute("SELECT 1")
    assert raw.seen[0][0] == sql and list(raw.seen[0][1]) == [1, ["x", "y"], "50%"]
    assert raw.seen[1][0] == "INSERT INTO t VALUES (%s, %s)"
    assert [tuple(r) for r in raw.seen[1][1]] == [(1, 2), (3, 4)]
    assert raw.seen[2] == ("SELECT 1", None)


def test_the_session_check_refuses_statements_not_written_for_postgresql() -> None:
    assert pgcheck.problem("SELECT 1 FROM t WHERE k = %s", True) is None
    assert pgcheck.problem("SELECT 1 FROM t WHERE k LIKE 'a%%' AND j = %s", True) is None
    assert pgcheck.problem("SELECT 1 FROM t WHERE k = ?", True) is not None
    assert pgcheck.problem("SELECT 1 FROM t WHERE k IN (?, ?)", True) is not None
    assert pgcheck.problem("SELECT 1 FROM t WHERE k LIKE 'a%' AND j = %s", True) is not None
    raw = _Raw()
    before = PgConn.execute  # checked already when the session's cluster runs
    with pgcheck.checking():
        with pytest.raises(AssertionError, match="'\\?' mark"):
            PgConn(raw).execute("SELECT 1 FROM t WHERE k = ?", (1,))
        PgConn(raw).execute("SELECT 1 FROM t WHERE k = %s", (1,))
    assert PgConn.execute is before  # the check ends with the block
    assert [s for s, _ in raw.seen] == ["SELECT 1 FROM t WHERE k = %s"]


def test_every_text_column_of_a_postgresql_table_compares_bytewise() -> None:
    """Text compares bytewise on PostgreSQL (``COLLATE "C"``), as on SQLite, so ordering
    and paging by ids agree: every table's text column is written ``{text}``."""
    bare = re.compile(r'\bTEXT\b(?! COLLATE "C")')
    found = [
        (version, sql.split("(")[0].strip())
        for version, _, migration in MIGRATIONS
        for sql in statements("postgresql", migration)
        if sql.startswith(("CREATE TABLE", "ALTER")) and bare.search(sql)
    ]
    assert found == []
    sqlite = [sql for _, _, m in MIGRATIONS for sql in statements("sqlite", m)]
    assert not any("COLLATE" in sql for sql in sqlite)
