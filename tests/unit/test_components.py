"""``tactful.engine.components``: the planner's compact node table numbers names in order of
first sight and gives them back in that order, whether they are still in memory, in its
temporary file, or both, and across the table's growth."""

from __future__ import annotations

import pytest

from tactful.engine import components
from tactful.engine.components import _Nodes


@pytest.mark.parametrize("on_disk", [False, True])
def test_nodes_are_numbered_in_order_of_first_sight_and_named_back(
    on_disk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(components, "_NAMES_IN_MEMORY", 100)  # the file takes most names
    monkeypatch.setattr(components, "_READ", 37)  # read back in parts that split names
    nodes = _Nodes(on_disk)
    names = [f"iemail\0person{n}@example.com" if n % 3 else f"t{n}" for n in range(5000)]
    assert [nodes.number(name) for name in names] == list(range(5000))  # grew several times
    assert [nodes.number(name) for name in reversed(names)] == list(reversed(range(5000)))
    assert nodes.count == 5000
    assert list(nodes.names(5000)) == names
    assert list(nodes.names(10)) == names[:10]
    listed = nodes.names(5000)
    seen = [next(listed) for _ in range(3)]
    nodes.number("p_new")  # a name added while the names are read does not disturb them
    assert seen + list(listed) == names
    assert list(nodes.names(5001))[-1] == "p_new"
    nodes.close()
