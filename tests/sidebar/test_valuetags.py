"""The high-value tag follows value score 4, and Tactful removes only its own tags."""

from __future__ import annotations

from tactful.core.events import Identifier, OutcomeRecorded
from tactful.testing import at, harness, user
from tactful.zendesk.valuetags import sync_high_value_tags

CONFIG = '[[segments]]\nname = "x"\nwhen = "has_open_ticket"\n'


class Recorder:
    def __init__(self) -> None:
        self.tags: dict[int, set[str]] = {}

    def add_user_tags(self, user_id: int, tags: list[str]) -> list[str]:
        self.tags.setdefault(user_id, set()).update(tags)
        return sorted(self.tags[user_id])

    def remove_user_tags(self, user_id: int, tags: list[str]) -> list[str]:
        self.tags.setdefault(user_id, set()).difference_update(tags)
        return sorted(self.tags[user_id])


def order(n: int, uid: int, amount: float, when=None) -> OutcomeRecorded:
    who = Identifier("zendesk_user_id", str(uid))
    return OutcomeRecorded(f"o{n}", when or at(1), who, "order", amount, "USD", ())


def test_tag_added_then_removed_when_they_drop_out() -> None:
    h = harness(CONFIG)
    h.engine.apply([user(i, emails=(f"u{i}@example.com",)) for i in (1, 2, 3, 4)])
    h.engine.apply([order(i, i, 10.0 * i) for i in (1, 2, 3, 4)])
    zd = Recorder()
    added, removed = sync_high_value_tags(h.engine.store, zd, "high_value", at(2))
    assert (added, removed) == ([4], [])
    assert zd.tags[4] == {"high_value"}
    assert sync_high_value_tags(h.engine.store, zd, "high_value", at(3)) == ([], [])
    h.engine.apply([order(9, 1, 1000.0)])  # user 1 now outspends user 4
    added, removed = sync_high_value_tags(h.engine.store, zd, "high_value", at(3))
    assert (added, removed) == ([1], [4])
    assert zd.tags[4] == set() and zd.tags[1] == {"high_value"}
