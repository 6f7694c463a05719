"""The layout's rules, read from the source: the store owns its SQL and its connections;
the core imports nothing outside the core; the import graph (its cycles are checked in
``test_architecture_runtime``)."""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from pathlib import Path

import tactful

ROOT = Path(tactful.__file__).parent
STORE = ROOT / "store"
# A destination's SQL runs in the customer's warehouse (its own ``events`` table), not in
# Tactful's store: the warehouse destinations and their fakes may speak SQL.
WAREHOUSES = ROOT / "destinations"
WAREHOUSE_FAKES = ROOT / "testing" / "fakes"  # the warehouses' fakes speak their SQL

_SQL = re.compile(r"\b(SELECT|INSERT INTO|UPDATE|DELETE FROM|CREATE TABLE)\b")


def _store_tables() -> set[str]:
    text = (STORE / "migrations.py").read_text()
    return set(re.findall(r"CREATE TABLE (?:IF NOT EXISTS )?([a-z_]+)", text))


def _modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "__pycache__" not in p.parts)


def _outside(path: Path, *folders: Path) -> bool:
    return not any(path.is_relative_to(f) for f in folders)


def _store_sql(tree: ast.AST, tables: set[str]) -> list[int]:
    """Lines of string constants that are SQL on one of the store's tables."""
    names = re.compile(r"\b(" + "|".join(sorted(tables)) + r")\b")
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _SQL.search(node.value)
        and names.search(node.value)
    ]


def _conn_reaches(tree: ast.AST) -> list[int]:
    """Lines that reach a ``conn`` attribute (``x.conn``, ``getattr(x, "conn")``)."""
    return [
        node.lineno
        for node in ast.walk(tree)
        if (isinstance(node, ast.Attribute) and node.attr == "conn")
        or (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in ("getattr", "hasattr")
            and len(node.args) > 1
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value == "conn"
        )
    ]


def test_the_checks_see_what_they_look_for() -> None:
    """The rules below would catch a reach into the store (they are not vacuous)."""
    tables = _store_tables()
    assert {"outbox", "deliveries", "persons", "membership_history"} <= tables
    leak = ast.parse(
        'def f(reader):\n    c = reader.conn\n    getattr(reader, "conn", None)\n'
        '    return c.execute("SELECT id FROM deliveries WHERE status = ?", ("dead",))\n'
    )
    assert _store_sql(leak, tables) == [4]
    assert _conn_reaches(leak) == [2, 3]


def test_no_store_sql_outside_the_store() -> None:
    tables = _store_tables()
    found = {
        str(p.relative_to(ROOT)): lines
        for p in _modules()
        if _outside(p, STORE, WAREHOUSES, WAREHOUSE_FAKES)
        and (lines := _store_sql(ast.parse(p.read_text()), tables))
    }
    assert found == {}, "SQL on the store's tables belongs in a port under tactful/store"


def test_no_connection_leaves_the_store() -> None:
    server = ROOT / "web" / "server.py"  # its ``self.conn`` is an h11 connection
    found = {
        str(p.relative_to(ROOT)): lines
        for p in _modules()
        if _outside(p, STORE) and p != server and (lines := _conn_reaches(ast.parse(p.read_text())))
    }
    assert found == {}, "reach the store through its ports (tx.deliveries, reader.read_models…)"


def test_no_type_ignore_around_the_store_seam() -> None:
    found = [
        f"{p.relative_to(ROOT)}:{n}"
        for p in _modules()
        if _outside(p, STORE)
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if "type: ignore[attr-defined]" in line
    ]
    assert found == []


def _imports(*, inside_functions: bool = False) -> dict[str, set[str]]:
    """Each module's imports of other tactful modules: at module level (what runs at import
    time), or anywhere in it with ``inside_functions``; ``if TYPE_CHECKING:`` blocks aside.
    Importing ``a.b.c`` runs the package ``a.b`` first, so that counts as an import of
    ``a.b`` too (unless the importer is inside ``a.b``, which is then already running)."""
    names = {
        ".".join(p.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__"): p
        for p in _modules()
    }

    def known(name: str) -> str | None:
        while name and name not in names:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        tree = ast.parse(path.read_text())
        typing_only = {
            id(sub)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for sub in ast.walk(node)
        }
        nodes = ast.walk(tree) if inside_functions else iter(tree.body)
        found: set[str] = set()
        for node in nodes:
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            found |= {t for x in targets if (t := known(x)) and t != name}
        runs = {p for t in found for p in _packages(t, names)}
        graph[name] = found | {p for p in runs if not f"{name}.".startswith(f"{p}.")}
    return graph


def _packages(module: str, names: Mapping[str, Path]) -> list[str]:
    """The packages that importing ``module`` runs first (``tactful`` itself aside)."""
    parts = module.split(".")
    return [p for i in range(2, len(parts)) if (p := ".".join(parts[:i])) in names]


def test_the_core_imports_only_the_core() -> None:
    graph = _imports()
    out = {m: sorted(t for t in ts if not t.startswith("tactful.core")) for m, ts in graph.items()}
    assert {m: ts for m, ts in out.items() if m.startswith("tactful.core") and ts} == {}


# What the store may import: the core, itself, and the root's clock and errors. Nothing that
# delivers, serves or is served (destinations, delivery, web, cli) sits below it.
STORE_MAY_IMPORT = ("tactful.core", "tactful.store", "tactful.clock", "tactful.exceptions")


def test_the_store_imports_no_layer_above_it() -> None:
    graph = _imports()
    above = {
        m: sorted(t for t in ts if t != "tactful" and not t.startswith(STORE_MAY_IMPORT))
        for m, ts in graph.items()
        if m.startswith("tactful.store")
    }
    assert {m: ts for m, ts in above.items() if ts} == {}


def _calls(tree: ast.AST, name: str) -> list[int]:
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


def test_one_composition_root() -> None:
    """The engine is put together in ``tactful/bootstrap.py`` only: the command line, the
    server, the worker, the demo and the tests' harness all start there. The server's delivery
    worker is built by its supervisor (``tactful/runtime.py``); the CLI commands take theirs
    from the bootstrap runtime."""
    root = ROOT / "bootstrap.py"
    engines = {
        str(p.relative_to(ROOT)): lines
        for p in _modules()
        if p != root and (lines := _calls(ast.parse(p.read_text()), "Engine"))
    }
    assert engines == {}
    workers = {
        str(p.relative_to(ROOT))
        for p in _modules()
        if p != root and _calls(ast.parse(p.read_text()), "DeliveryWorker")
    }
    assert workers == {"runtime.py"}


def test_the_readmes_layout_is_the_tree() -> None:
    """Every package under tactful/ is in the README's layout, and every name it lists
    exists."""
    readme = (ROOT.parent / "README.md").read_text()
    block = readme.split("## Project layout", 1)[1].split("```")[1]
    listed = re.findall(r"^  ([a-z_]+/|[a-z_]+\.py) ", block, re.M)
    packages = {f"{p.parent.name}/" for p in ROOT.glob("*/__init__.py")}
    assert packages <= set(listed), f"missing from the README: {sorted(packages - set(listed))}"
    assert [n for n in listed if not (ROOT / n.rstrip("/")).exists()] == []
    tests = block.split("\ntests/", 1)[1].split("\nbench/", 1)[0]
    named = set(re.findall(r"\b([a-z_]+)/", tests))
    folders = {p.name for p in (ROOT.parent / "tests").iterdir() if p.is_dir()} - {"__pycache__"}
    assert sorted(folders - named) == [], "tests/ folders missing from the README's layout"
    assert sorted(named - folders - {"core", "tactful"}) == [], "README names no such tests/"


def test_the_commands_do_not_import_the_cli() -> None:
    """``tactful.cli.main`` imports the commands; they take what they share from
    ``tactful.cli.base``, at module level or inside a function."""
    commands = [p for p in (ROOT / "cli").glob("*.py") if p.name != "main.py"]
    assert len(commands) > 10  # the check looks where the commands are
    found = {
        str(p.relative_to(ROOT))
        for p in commands
        for node in ast.walk(ast.parse(p.read_text()))
        if (isinstance(node, ast.ImportFrom) and node.module == "tactful.cli.main")
        or (isinstance(node, ast.Import) and any(a.name == "tactful.cli.main" for a in node.names))
    }
    assert found == set()


def test_every_core_module_has_its_test_module() -> None:
    """``tests/unit/core`` mirrors ``tactful/core``: ``core/x.py`` is tested in
    ``tests/unit/core/test_x.py`` (a new core module comes with its tests)."""
    tests = ROOT.parent / "tests" / "unit" / "core"
    modules = {p.stem for p in (ROOT / "core").glob("*.py") if p.stem != "__init__"}
    tested = {p.stem.removeprefix("test_") for p in tests.glob("test_*.py")}
    assert sorted(modules - tested) == [], "core modules without tests/unit/core/test_<name>.py"
    assert sorted(tested - modules) == [], "tests/unit/core/test_<name>.py without a core module"
