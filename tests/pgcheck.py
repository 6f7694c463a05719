"""Every statement the PostgreSQL store runs is written for PostgreSQL when it is built: no
``?`` mark (SQLite's), and no ``%`` psycopg would read as a placeholder but ``%s`` (or a
literal ``%%``). ``checking`` makes ``PgConn`` refuse any other (``tests/conftest.py`` holds
it for the whole session, with the cluster), so the PostgreSQL store suite runs through the
check: nothing rewrites a statement on its way to psycopg."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tactful.store.postgres import PgConn

_PERCENT = re.compile(r"%[s%]")  # a placeholder, or a literal % written %%


def problem(sql: str, has_params: bool) -> str | None:
    """Why ``sql`` is not a PostgreSQL statement psycopg can run as it is (None: it is)."""
    if "?" in sql:
        return "a '?' mark (SQLite's): write the statement with the store's Dialect"
    if has_params and "%" in _PERCENT.sub("", sql):
        return "a '%' that is not a %s placeholder (write %% for a literal one)"
    return None


def _checked(run: Callable[..., Any], many: bool) -> Callable[..., Any]:
    def execute(self: PgConn, sql: str, params: Any = ()) -> Any:
        if many:
            params = list(params)
        why = problem(sql, bool(params))
        if why is not None:
            raise AssertionError(f"PostgreSQL statement with {why}:\n{sql}")
        return run(self, sql, params)

    return execute


@contextmanager
def checking() -> Iterator[None]:
    """``PgConn`` checks every statement while this lasts."""
    patch = pytest.MonkeyPatch()
    patch.setattr(PgConn, "execute", _checked(PgConn.execute, many=False))
    patch.setattr(PgConn, "executemany", _checked(PgConn.executemany, many=True))
    try:
        yield
    finally:
        patch.undo()
