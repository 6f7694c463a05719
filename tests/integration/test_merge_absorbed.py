"""A merge and an event on the absorbed person's ticket in one batch: the absorbed person
does not come back (issue 24's race, found by the concurrent stress test, here in one
process and deterministic)."""

from __future__ import annotations

import pytest

from tactful.core.events import Event, TicketText
from tactful.engine.engine import Engine
from tactful.testing import at, harness, status_change, ticket, user, user_merge

pytestmark = pytest.mark.store

CONFIG = """
[[segments]]
name = "suppress"
when = "has_open_ticket"
"""

# Under salt "s3" the person of Zendesk user 2 has the smaller id and survives the merge of
# users 1 and 2 (tests/integration/test_merge_history.py), so user 1's person is absorbed.
SALT = "s3"


def _persons(engine: Engine) -> list[str]:
    with engine.store.reader() as reader:
        out: list[str] = []
        while page := reader.person_ids(out[-1] if out else None, 100):
            out += page
        return out


def _absorbed_stays_gone(later: Event) -> None:
    engine = harness(CONFIG, salt=SALT).engine
    engine.apply([user(1), ticket(1, at(0), "open", requester_id=1)])
    engine.apply([user(2), ticket(2, at(1), "open", requester_id=2)])
    before = set(_persons(engine))
    assert len(before) == 2
    engine.apply([user_merge(1, 2, at(2)), later])
    after = _persons(engine)
    with engine.store.reader() as reader:
        (survivor,) = reader.find_persons("zendesk_user_id", "2")
        assert reader.find_persons("zendesk_user_id", "1") == [survivor]
        assert after == [survivor], "the absorbed person came back"
        (absorbed,) = before - {survivor}
        assert reader.resolve_person_id(absorbed) == survivor  # an alias now
        assert reader.ticket_person(1) == survivor


@pytest.mark.parametrize(
    "later",
    [
        status_change(1, at(3), "solved"),
        ticket(1, at(-1), "new", requester_id=1),  # an older version of the ticket
        TicketText("text:1", at(3), 1, None, ("refund", "broken"), -0.6, "en"),
    ],
    ids=["status", "older-version", "text"],
)
def test_an_event_on_the_absorbed_persons_ticket_does_not_bring_it_back(later: Event) -> None:
    _absorbed_stays_gone(later)
