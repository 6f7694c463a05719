"""The store writes each statement for its dialect as it builds it (``tactful.store.dialect``)
and never rewrites SQL text afterwards: no placeholder swapping, no regex over statements,
no parameter named ``sql`` reassigned on its way to the database. (That every statement run
on PostgreSQL is written for it is checked at run time, for the whole PostgreSQL suite:
``tests/pgcheck.py``, installed with the cluster.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tactful

STORE = Path(tactful.__file__).parent / "store"

# Text transformations, and what they would have to mention to rewrite SQL: a mark (``?``
# alone, or ``\?`` in a pattern), psycopg's ``%s`` or ``%%``, a list, a type.
_TRANSFORMS = frozenset(
    {"replace", "sub", "subn", "compile", "finditer", "findall", "search", "match",
     "fullmatch", "split", "translate", "maketrans", "count"}
)  # fmt: skip
_SQL_TEXT = re.compile(r"^\?$|\\\?|%s|%%|IN \\?\(|ANY\(|TEXT|COLLATE")
_REWRITER_NAMES = re.compile(r"translate|arrays_for_lists|rewrite", re.IGNORECASE)
_STATEMENT_PARAMS = frozenset({"sql", "query", "statement"})


def _rewrites(tree: ast.AST) -> list[str]:
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if _REWRITER_NAMES.search(node.name):
                found.append(f"{node.lineno}: a function named {node.name}")
            params = {a.arg for a in (*node.args.posonlyargs, *node.args.args)}
            for sub in ast.walk(node):
                targets = (
                    sub.targets
                    if isinstance(sub, ast.Assign)
                    else [sub.target]
                    if isinstance(sub, ast.AugAssign | ast.AnnAssign)
                    else []
                )
                names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                for name in names & params & _STATEMENT_PARAMS:
                    found.append(f"{sub.lineno}: {node.name} reassigns its statement {name!r}")
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in _TRANSFORMS
        ):
            for arg in node.args:
                if (
                    isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and _SQL_TEXT.search(arg.value)
                ):
                    found.append(f"{node.lineno}: .{node.func.attr}({arg.value!r}, …)")
    return found


def test_the_check_sees_a_rewriter() -> None:
    """What the store did until the dialect: each of these is caught."""
    main = ast.parse(
        "import functools, re\n"
        "@functools.lru_cache(maxsize=1024)\n"
        "def translate(sql):\n"
        '    return sql.replace("%", "%%").replace("?", "%s")\n'
        '_IN_LIST = re.compile(r"(?<!NOT )\\bIN \\((\\?(?:, ?\\?)*)\\)")\n'
        '_MARK = re.compile(r"\\?")\n'
        '_TEXT = re.compile(r"\\bTEXT\\b")\n'
        "class PgConn:\n"
        "    def execute(self, sql, params=()):\n"
        "        sql, params = arrays_for_lists(sql, params)\n"
        "        return self.raw.cursor().execute(translate(sql), params)\n"
    )
    found = _rewrites(main)
    assert sorted({int(f.split(":")[0]) for f in found}) == [3, 4, 5, 6, 7, 10], found
    # What the store does now passes: marks and lists rendered as the statement is built,
    # a LIKE pattern's wildcards escaped in its parameter, a redaction pattern with ``?``.
    now = ast.parse(
        "import re\n"
        "def among(self, column, values):\n"
        '    return f"{column} IN ({self.marks(len(values))})", tuple(values)\n'
        "def contains_pattern(text):\n"
        '    return text.replace("%", "\\\\%").replace("_", "\\\\_")\n'
        '_PHONE = re.compile(r"\\+?[\\d\\s]{7,}")\n'
    )
    assert _rewrites(now) == []


def test_nothing_in_the_store_rewrites_sql() -> None:
    found = {
        str(path.relative_to(STORE)): lines
        for path in sorted(STORE.glob("*.py"))
        if (lines := _rewrites(ast.parse(path.read_text())))
    }
    assert found == {}, "write each statement with the store's Dialect, as it is built"


def test_the_store_suite_runs_through_the_postgresql_check() -> None:
    """The session fixture that starts PostgreSQL holds ``pgcheck.checking``."""
    conftest = Path(__file__).parents[1] / "conftest.py"
    tree = ast.parse(conftest.read_text())
    [fixture] = [
        n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "pg_cluster"
    ]
    assert "pgcheck.checking()" in ast.unparse(fixture)
