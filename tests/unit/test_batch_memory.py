"""A batch is freed by reference counting alone: no cycle keeps it for the garbage collector.

A cycle here (the identity resolver's merge callback once held the whole batch) made every
batch wait for the cyclic collector, whose passes over the heap took a third of an import.
"""

from __future__ import annotations

import gc

from tactful.engine.batch import Batch
from tactful.engine.engine import gc_paused
from tactful.testing import at, harness, ticket, user, user_merge

CONFIG = """
[[segments]]
name = "suppress"
when = "has_open_ticket"
cooldown = "1h"
"""


def test_batches_leave_nothing_for_the_garbage_collector() -> None:
    h = harness(CONFIG)
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        h.engine.apply(
            [
                user(1, emails=("a@example.com",)),
                user(2, emails=("b@example.com",)),
                ticket(1, at(0), "open", requester_id=1),
                ticket(2, at(0), "open", requester_id=2),
                user_merge(2, 1, at(1)),  # a merge: the path that held the batch
                ticket(1, at(2), "solved", requester_id=1),
            ]
        )
        h.engine.tick(at(5))
        alive = [o for o in gc.get_objects() if isinstance(o, Batch)]
    finally:
        if was:
            gc.enable()
    assert alive == []


def test_gc_paused_nests_and_restores() -> None:
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the outer pause still holds
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # was off before: stays off
    finally:
        gc.enable()
