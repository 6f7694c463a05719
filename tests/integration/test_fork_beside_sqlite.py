"""A fork while the SQLite checkpointer's thread is inside SQLite left the child with SQLite's
mutexes held by a thread it does not have: a worker of a replay by person hung in
``sqlite3Malloc`` opening its store (``tactful.store.sqlite.NO_FORK``). A fork now waits
until that thread is out of SQLite."""

from __future__ import annotations

import os
import threading

import pytest

from tactful.store.sqlite import NO_FORK


@pytest.mark.slow  # forks a process
def test_a_fork_waits_while_the_checkpointer_is_inside_sqlite() -> None:
    inside, leave = threading.Event(), threading.Event()

    def checkpoint() -> None:  # the checkpointer's thread, in a checkpoint
        with NO_FORK:
            inside.set()
            leave.wait(30)

    forked: list[int] = []

    def fork() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        forked.append(pid)

    checkpointer = threading.Thread(target=checkpoint)
    checkpointer.start()
    assert inside.wait(10)
    forking = threading.Thread(target=fork)
    forking.start()
    forking.join(0.5)
    assert not forked, "forked while the checkpointer was inside SQLite"
    leave.set()
    forking.join(30)
    checkpointer.join(30)
    assert len(forked) == 1
    assert os.waitpid(forked[0], 0)[1] == 0
