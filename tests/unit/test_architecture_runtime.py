"""Layout rules of the runtime, read from the source: the wall clock is read in one place,
``Retry-After`` is parsed and Basic authentication built in one place each."""

from __future__ import annotations

import ast
from pathlib import Path

import tactful
from tests.unit.test_architecture import _imports, _modules

ROOT = Path(tactful.__file__).parent
CLOCK = ROOT / "clock.py"
HTTP_AUTH = ROOT / "http" / "auth.py"
HTTP_RETRY = ROOT / "http" / "retry.py"


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


_WALL_CALLS = {
    "datetime.now",
    "datetime.utcnow",
    "datetime.today",
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "date.today",
    "datetime.date.today",
    "time.time",
    "time.time_ns",
}


def _wall_reads(tree: ast.AST) -> list[int]:
    """Lines that read the wall clock: ``datetime.now()``, ``time.time()`` and kin, or
    import ``time``/``time_ns`` from ``time`` to call them bare."""
    found = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and _dotted(node.func) in _WALL_CALLS
    ]
    found += [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and node.module == "time"
        and any(a.name in ("time", "time_ns") for a in node.names)
    ]
    return found


def test_the_wall_clock_is_read_in_one_place() -> None:
    """Business logic asks an injected clock (the engine's ``wall_clock``, given to the
    delivery worker, the web app and its background work); protocols that must carry the
    real time (JWT, signatures, HTTP dates) ask ``tactful.clock`` for it. Durations use
    ``time.monotonic``/``perf_counter``. 29 places read the clock before."""
    reads = {
        str(p.relative_to(ROOT)): lines
        for p in _modules()
        if p != CLOCK and (lines := _wall_reads(ast.parse(p.read_text())))
    }
    assert reads == {}, "read the time through tactful.clock (or an injected clock)"


def test_the_check_sees_every_form() -> None:
    source = (
        "import datetime, time\nfrom datetime import date\nfrom time import time as t\n"
        "datetime.datetime.now()\ndatetime.now(UTC)\ntime.time()\ndate.today()\n"
        "time.monotonic()\ntime.perf_counter()\nself.now()\n"
    )
    assert _wall_reads(ast.parse(source)) == [4, 5, 6, 7, 3]


def _defines(tree: ast.AST, name: str) -> bool:
    return any(
        isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name
        for node in ast.walk(tree)
    )


def test_one_retry_after_parser_and_one_basic_auth_helper() -> None:
    """``tactful.http.retry`` parses ``Retry-After`` (the destinations and the Zendesk
    client each had a parser and a policy); ``tactful.http.auth`` builds the Basic
    ``Authorization`` value (the Zendesk client built its own). The vendor fakes check
    the header on the vendor's side and may build it themselves."""
    parsers, basic = [], []
    for path in _modules():
        text = path.read_text()
        name = str(path.relative_to(ROOT))
        if path != HTTP_RETRY and _defines(ast.parse(text), "parse_retry_after"):
            parsers.append(name)
        fake = path.is_relative_to(ROOT / "testing" / "fakes")
        if path != HTTP_AUTH and not fake and ('"Basic "' in text or 'f"Basic {' in text):
            basic.append(name)
    assert parsers == []
    assert basic == []


def _cycle_groups(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group: list[str] = []
            while not group or group[-1] != node:
                group.append(stack.pop())
            if len(group) > 1:
                groups.append(sorted(group))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return sorted(groups)


def test_no_import_cycles() -> None:
    """No group of modules imports each other, counting the imports made inside functions
    and the packages an import runs first (``tactful.config``'s ``__init__`` for any
    ``tactful.config.x``). Five groups were left through function-level imports, then one
    (``config.models`` → ``destinations.registry`` → ``spec`` → ``config.models``), and
    ``alerts.config`` ↔ ``tactful.config`` through the package, which made
    ``import tactful.alerts.config`` on its own fail."""
    assert _cycle_groups(_imports(inside_functions=True)) == []


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycle_groups(graph) == [["a", "b", "c"]]


def test_an_import_runs_the_packages_above_the_module() -> None:
    """The graph counts ``import a.b.c`` as an import of the package ``a.b`` too, but not of
    a package the importer is itself inside (it is already running)."""
    graph = _imports(inside_functions=True)
    assert "tactful.config" in graph["tactful.destinations.customerio"]
    assert "tactful.config" not in graph["tactful.config.models"]
