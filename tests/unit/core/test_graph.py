"""``tactful.core.graph``: the person graph resolves identifiers without a store."""

from __future__ import annotations

from datetime import datetime

import pytest

from tactful.core.events import Event, Identifier, TicketStatusChanged
from tactful.core.graph import IdentityPlan, PersonGraph, Unresolvable, person_id_for
from tactful.testing import at, health, ticket, user, user_merge

SALT = "s" * 16
Z1, Z2 = ("zendesk_user_id", "1"), ("zendesk_user_id", "2")
ANN, PHONE = ("email", "ann@example.com"), ("phone", "+14155550100")


def graph() -> tuple[PersonGraph, list[tuple[str, str, datetime]]]:
    merges: list[tuple[str, str, datetime]] = []
    return PersonGraph(SALT, lambda a, s, when: merges.append((a, s, when))), merges


def test_a_new_identifier_makes_a_person_keyed_by_it() -> None:
    g, _ = graph()
    pid = g.resolve([Z1, ANN], [PHONE], at(0))
    assert pid == person_id_for(SALT, Z1)
    assert g.new_persons == {pid: at(0)}
    assert g.take_links() == sorted([(*Z1, pid), (*ANN, pid), (*PHONE, pid)])
    assert g.take_links() == []


def test_a_shared_joining_identifier_merges_into_the_smaller_id() -> None:
    g, merges = graph()
    a = g.resolve([Z1, ANN], [], at(0))
    b = g.resolve([Z2], [], at(1))
    survivor = g.resolve([Z2, ANN], [], at(2))
    assert survivor == min(a, b)
    assert merges == [(max(a, b), survivor, at(2))]
    assert g.find(max(a, b)) == survivor


def test_an_attached_identifier_never_merges() -> None:
    g, merges = graph()
    g.known({PHONE: {"p_a", "p_b"}})
    assert g.resolve([], [PHONE], at(0)) == "p_a"  # the smallest existing owner
    assert merges == []


def test_known_persons_come_from_the_store() -> None:
    g, _ = graph()
    g.known({ANN: {"p_stored"}})
    assert g.resolve([ANN], [], at(0)) == "p_stored"
    assert g.new_persons == {}


def test_a_user_merge_merges_the_two_users_persons() -> None:
    g, merges = graph()
    source = g.resolve([Z1], [], at(0))
    target = g.resolve([Z2], [], at(0))
    assert g.merge_users(user_merge(1, 2, at(1))) == min(source, target)
    assert len(merges) == 1


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (user(1, emails=(" Ann@Example.com ",)), ([Z1, ANN], [])),
        (ticket(1, at(0), "open", requester_id=2), ([Z2], [])),
        (health(at(0), "neutral", zendesk_user_id=1), ([Z1], [])),
        (TicketStatusChanged("k", at(0), 1, "open"), None),
    ],
)
def test_the_plan_reads_an_events_identifiers(
    event: Event, expected: tuple[list[tuple[str, str]], list[tuple[str, str]]] | None
) -> None:
    assert IdentityPlan("email", None).identifiers(event) == expected


def test_an_event_without_a_usable_identifier_is_unresolvable() -> None:
    event = health(at(0), "neutral")
    bad = type(event)(event.key, event.at, Identifier("email", "not an address"), "neutral")
    with pytest.raises(Unresolvable):
        IdentityPlan("email", None).identifiers(bad)


def test_merging_tells_which_known_persons_an_event_would_merge_without_merging() -> None:
    g, merges = graph()
    a = g.resolve([Z1, ANN], [], at(0))
    b = g.resolve([Z2], [], at(1))
    assert g.merging([Z2, ANN]) == {a, b}
    assert g.merging([Z1, ANN]) is None  # one person
    assert g.merging([("email", "new@example.com")]) is None
    assert g.merging_users(user_merge(1, 2, at(2))) == {a, b}
    assert g.merging_users(user_merge(1, 3, at(2))) == {a}  # user 3 is new
    assert g.merging_users(user_merge(3, 4, at(2))) is None  # both new
    assert merges == []  # nothing was merged
    g.merge_users(user_merge(1, 2, at(2)))
    assert g.merging_users(user_merge(1, 2, at(3))) is None  # one person already
