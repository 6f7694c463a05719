"""The test tiers stay honest: what is slow carries the ``slow`` marker, so ``make test-fast``
(``-m "not slow"``) is the quick inner loop and ``make test`` is everything.

A test outside the slow tier that starts a process fails at run time (``tests/conftest.py``'s
``Spawns``); these tests check that guard, and what it cannot see: property tests asking
Hypothesis for more examples than its default."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SLOW_FOLDERS, Spawns

TESTS = Path(__file__).resolve().parents[1]
MANY_EXAMPLES = 100  # Hypothesis' default: asking for more makes a property test slow


@pytest.mark.slow  # it starts processes itself (the suite's own guard is off for it)
def test_a_process_started_outside_the_slow_tier_fails_the_test() -> None:
    spawns = Spawns()
    spawns.watch(slow=False)
    subprocess.run(["true"], check=True)
    with pytest.raises(pytest.fail.Exception, match="starts a process"):
        spawns.check()

    spawns.watch(slow=False)
    spawns.check()  # nothing started: fine
    spawns.watch(slow=True)
    subprocess.run(["true"], check=True)
    spawns.check()  # a slow test may


def _marks_slow(decorators: list[ast.expr]) -> bool:
    return any("pytest.mark.slow" in ast.unparse(d) for d in decorators)


def _module_is_slow(tree: ast.Module) -> bool:
    return any(
        isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "pytestmark" for t in node.targets)
        and "pytest.mark.slow" in ast.unparse(node.value)
        for node in tree.body
    )


def _examples(decorators: list[ast.expr]) -> int:
    for d in decorators:
        if isinstance(d, ast.Call) and ast.unparse(d.func).endswith("settings"):
            for kw in d.keywords:
                value = kw.value.value if isinstance(kw.value, ast.Constant) else None
                if kw.arg == "max_examples" and isinstance(value, int):
                    return value
    return 0


def many_examples_not_slow(path: Path) -> list[str]:
    text = path.read_text()
    if "max_examples" not in text:
        return []
    tree = ast.parse(text)
    if path.parent.name in SLOW_FOLDERS or _module_is_slow(tree):
        return []
    return [
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and _examples(node.decorator_list) > MANY_EXAMPLES
        and not _marks_slow(node.decorator_list)
    ]


def test_property_tests_with_many_examples_are_slow() -> None:
    found = [
        f"{p.relative_to(TESTS)}::{name}"
        for p in sorted(TESTS.rglob("test_*.py"))
        for name in many_examples_not_slow(p)
    ]
    assert found == []


def test_the_check_sees_an_unmarked_property_test(tmp_path: Path) -> None:
    body = """
from hypothesis import given, settings, strategies as st
import pytest

@settings(max_examples=400, deadline=None)
@given(st.integers())
def test_many(n): ...

@pytest.mark.slow
@settings(max_examples=400)
@given(st.integers())
def test_many_marked(n): ...

@settings(max_examples=50)
@given(st.integers())
def test_few(n): ...
"""
    path = tmp_path / "test_x.py"
    path.write_text(body)
    assert many_examples_not_slow(path) == ["test_many"]
    path.write_text("import pytest\npytestmark = pytest.mark.slow\n" + body)
    assert many_examples_not_slow(path) == []
