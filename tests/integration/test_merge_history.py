"""A merged person's membership history alternates entered/exited per segment, on both
stores (issue 18 §6)."""

from __future__ import annotations

from typing import Any

import pytest

from tactful.engine.engine import Engine
from tactful.testing import at, harness, ticket, user, user_merge

pytestmark = pytest.mark.store

CONFIG = """
[[segments]]
name = "suppress"
when = "has_open_ticket"

[[segments]]
name = "recent"
when = "last_ticket_at within 3d"
"""


def _history(engine: Engine, user_id: int) -> tuple[dict[str, list[str]], set[str]]:
    with engine.store.reader() as reader:
        (pid,) = reader.find_persons("zendesk_user_id", str(user_id))
        changes = reader.history_of(pid)
        members = {s for s, m in reader.load_persons([pid])[pid].memberships.items() if m.member}
    out: dict[str, list[str]] = {}
    for change in changes:
        out.setdefault(change.segment, []).append(change.change)
    return out, members


def _alternates(history: dict[str, list[str]], members: set[str]) -> None:
    for segment, changes in history.items():
        expected = ["entered", "exited"] * len(changes)
        assert changes == expected[: len(changes)], (segment, changes)
        assert (changes[-1] == "entered") == (segment in members), (segment, changes)


# Salts under which the person of Zendesk user 1 (s1) or of user 2 (s3) has the smaller id,
# and so survives a merge of the two.
SALTS = ("s1", "s3")


def _both(engine: Engine) -> None:
    engine.apply([user(1), ticket(1, at(0), "open", requester_id=1)])
    engine.apply([user(2), ticket(2, at(1), "open", requester_id=2)])


@pytest.mark.parametrize("salt", SALTS)
def test_both_members_merge_into_one_membership(salt: str) -> None:
    engine = harness(CONFIG, salt=salt).engine
    _both(engine)
    engine.apply([user_merge(2, 1, at(2))])
    history, members = _history(engine, 1)
    _alternates(history, members)
    assert history["suppress"] == ["entered"] and members == {"suppress", "recent"}
    engine.apply([ticket(1, at(3), "solved", requester_id=1)])  # the other ticket stays open
    engine.apply([ticket(2, at(4), "solved", requester_id=2)])
    engine.tick(at(days=10))
    history, members = _history(engine, 1)
    _alternates(history, members)
    assert history["suppress"] == ["entered", "exited"] and members == set()


@pytest.mark.parametrize("salt", SALTS)
def test_overlapping_histories_become_their_union(salt: str) -> None:
    engine = harness(CONFIG, salt=salt).engine
    _both(engine)
    engine.apply([ticket(1, at(2), "solved", requester_id=1)])  # 1 was in [0, 2], 2 from 1
    engine.apply([user_merge(1, 2, at(3))])
    history, members = _history(engine, 2)
    _alternates(history, members)
    if salt == "s3":  # user 2's person survives: one stay, from 0
        assert history["suppress"] == ["entered"]
    else:  # user 1's (out since 2) survives: the absorbed id left at the merge, the
        # survivor entered then (destinations drop one id and add the other)
        assert history["suppress"] == ["entered", "exited", "entered"]


@pytest.mark.parametrize("salt", SALTS)
def test_a_member_merged_into_a_non_member_and_merges_in_one_batch(salt: str) -> None:
    engine = harness(CONFIG, salt=salt).engine
    engine.apply([user(1), user(3), ticket(2, at(1), "open", requester_id=2), user(2)])
    engine.apply([user_merge(2, 1, at(2)), user_merge(3, 1, at(2))])
    history, members = _history(engine, 1)
    _alternates(history, members)
    assert members == {"suppress", "recent"}
    engine.apply([ticket(2, at(3), "solved", requester_id=1)])
    engine.tick(at(days=10))
    history, members = _history(engine, 1)
    _alternates(history, members)
    assert members == set()


@pytest.mark.parametrize("salt", SALTS)
def test_the_absorbed_person_still_leaves_every_destination(salt: str) -> None:
    """The absorbed id's exit is still announced (outbox), though the merged history has no
    exit while the survivor stays in the segment."""
    engine = harness(CONFIG, salt=salt).engine
    _both(engine)
    with engine.store.reader() as reader:
        ids = {u: reader.find_persons("zendesk_user_id", str(u))[0] for u in (1, 2)}
    engine.apply([user_merge(2, 1, at(2))])
    absorbed = max(ids.values())
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        rows = conn.execute(
            f"SELECT payload FROM outbox WHERE person_id = {engine.store.dialect.p} AND topic = "
            "'segment_membership_changed'",
            (absorbed,),
        ).fetchall()
    assert sum(b'"exited"' in bytes(r[0]) for r in rows) == 2  # suppress and recent
