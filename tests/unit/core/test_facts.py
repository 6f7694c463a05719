"""``tactful.core.facts.fold_fact``: one event's effect on a person's non-ticket facts."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from random import Random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.core.events import (
    ConsentSet,
    Event,
    Identifier,
    OutcomeRecorded,
    OverrideSet,
    PersonErased,
    RatingGiven,
    UserDeleted,
    UserSeen,
)
from tactful.core.facts import fold_fact, is_deletion
from tactful.core.state import Latest, PersonFacts
from tactful.testing import at, consent, health, rating, ticket

ANN = Identifier("email", "ann@example.com")


@dataclass(frozen=True)
class Rules:
    csat_good: int = 5
    csat_bad: int = 1
    consent_fields: Mapping[str, str] = field(default_factory=lambda: {"email": "newsletter"})


def seen(when: datetime, *, active: bool = True, **fields: str) -> UserSeen:
    key = f"u:{when}:{active}:{sorted(fields.items())}"
    return UserSeen(key, when, 7, active=active, fields=tuple(fields.items()))


def csat(when: datetime, score: int, scale: int) -> RatingGiven:
    return RatingGiven(f"r:{when}", when, "x", 1, 1, score, scale=scale)


RATED = PersonFacts(rating=Latest(at(1), "r1", 5))
ADS_YES = PersonFacts(consent=(("ads", Latest(at(1), "c1", True)),))
LATE = at(2)
GRANTS = seen(at(0), newsletter=" Opted_In ")
WITHDRAWS = seen(at(0), newsletter="maybe")
INACTIVE = seen(at(0), active=False)


def k(event: Event) -> str:
    return event.key


# (case, facts before, event, facts after); a key of "" means the event's own key.
TABLE: list[tuple[str, PersonFacts, Event, PersonFacts]] = [
    (
        "a good rating is the configured good score",
        PersonFacts(),
        rating(1, at(0), "good"),
        PersonFacts(rating=Latest(at(0), k(rating(1, at(0), "good")), 5)),
    ),
    (
        "a bad rating is the configured bad score",
        PersonFacts(),
        rating(1, at(0), "bad"),
        PersonFacts(rating=Latest(at(0), k(rating(1, at(0), "bad")), 1)),
    ),
    (
        "a 3-point survey answer maps onto 1-5",
        PersonFacts(),
        csat(at(0), 2, 3),
        PersonFacts(rating=Latest(at(0), k(csat(at(0), 2, 3)), 3)),
    ),
    ("an older rating loses", RATED, rating(2, at(0), 1), RATED),
    (
        "a newer rating wins",
        RATED,
        rating(2, LATE, 2),
        PersonFacts(rating=Latest(LATE, k(rating(2, LATE, 2)), 2)),
    ),
    (
        "health is latest-wins",
        PersonFacts(),
        health(at(0), "unsatisfied"),
        PersonFacts(health=Latest(at(0), k(health(at(0), "unsatisfied")), "unsatisfied")),
    ),
    (
        "an override keeps its end as ISO text",
        PersonFacts(),
        OverrideSet("o1", at(0), ANN, at(48)),
        PersonFacts(override=Latest(at(0), "o1", "2026-01-03T00:00:00Z")),
    ),
    (
        "an override without an end lifts it",
        PersonFacts(override=Latest(at(0), "o1", "2026-01-03T00:00:00Z")),
        OverrideSet("o2", at(1), ANN, None),
        PersonFacts(override=Latest(at(1), "o2", None)),
    ),
    (
        "consent of one purpose",
        PersonFacts(),
        consent(at(1), "ads", True, email="ann@example.com"),
        PersonFacts(
            consent=(
                (
                    "ads",
                    Latest(at(1), k(consent(at(1), "ads", True, email="ann@example.com")), True),
                ),
            )
        ),
    ),
    (
        "an older consent loses",
        ADS_YES,
        ConsentSet("c0", at(0), ANN, "ads", False),
        ADS_YES,
    ),
    (
        "a yes-like configured user field grants",
        PersonFacts(),
        GRANTS,
        PersonFacts(consent=(("email", Latest(at(0), k(GRANTS), True)),)),
    ),
    (
        "any other value of it withdraws",
        PersonFacts(),
        WITHDRAWS,
        PersonFacts(consent=(("email", Latest(at(0), k(WITHDRAWS), False)),)),
    ),
    ("a user without the field says nothing", ADS_YES, seen(at(3), other="yes"), ADS_YES),
    (
        "the last Zendesk user deleted deletes the person",
        PersonFacts(),
        UserDeleted("d1", at(0), 7),
        PersonFacts(
            deleted_users=(("7", Latest(at(0), "d1", True)),), deleted=Latest(at(0), "d1", True)
        ),
    ),
    (
        "an inactive user counts as deleted",
        PersonFacts(),
        INACTIVE,
        PersonFacts(
            deleted_users=(("7", Latest(at(0), k(INACTIVE), True)),),
            deleted=Latest(at(0), k(INACTIVE), True),
        ),
    ),
    (
        "tickets are not facts",
        RATED,
        ticket(1, at(0), "open"),
        RATED,
    ),
    ("an outcome is not a fact", RATED, OutcomeRecorded("x", at(0), ANN, "order"), RATED),
    ("an erasure is not a fact", RATED, PersonErased("e", at(0), ANN), RATED),
]


@pytest.mark.parametrize(
    ("before", "event", "after"), [r[1:] for r in TABLE], ids=[r[0] for r in TABLE]
)
def test_fold_fact(before: PersonFacts, event: Event, after: PersonFacts) -> None:
    assert fold_fact(before, event, Rules(), frozenset({"7"})) == after


def test_a_person_with_another_live_zendesk_user_is_not_deleted() -> None:
    folded = fold_fact(PersonFacts(), UserDeleted("d1", at(0), 7), Rules(), frozenset({"7", "8"}))
    assert folded.deleted is None
    assert folded.deleted_users == (("7", Latest(at(0), "d1", True)),)
    both = fold_fact(folded, UserDeleted("d2", at(1), 8), Rules(), frozenset({"7", "8"}))
    assert both.deleted == Latest(at(1), "d2", True)


def test_deletions_are_deleted_users_and_inactive_users() -> None:
    assert is_deletion(UserDeleted("d", at(0), 7))
    assert is_deletion(seen(at(0), active=False))
    assert not is_deletion(seen(at(0)))
    assert not is_deletion(rating(1, at(0), 5))


def _consent(h: int, purpose: str, granted: bool) -> ConsentSet:
    return ConsentSet(f"c:{h}:{purpose}:{granted}", at(h), ANN, purpose, granted)


def _override(h: int, until: int | None) -> OverrideSet:
    return OverrideSet(f"o:{h}:{until}", at(h), ANN, None if until is None else at(until))


# Events of a few moments; equal keys only for equal events (the log's dedupe key).
HOURS = st.integers(0, 3)
FACT_EVENTS = st.one_of(
    st.builds(
        lambda i, h, score: rating(i, at(h), score),
        st.integers(1, 3),
        HOURS,
        st.sampled_from([1, 2, 3, 4, 5, "good", "bad"]),
    ),
    st.builds(
        lambda h, value: health(at(h), value),
        HOURS,
        st.sampled_from(["satisfied", "neutral", "unsatisfied"]),
    ),
    st.builds(_consent, HOURS, st.sampled_from(["ads", "email"]), st.booleans()),
    st.builds(lambda h, v: seen(at(h), newsletter=v), HOURS, st.sampled_from(["yes", "no"])),
    st.builds(_override, HOURS, st.none() | st.integers(4, 9)),
)


@given(st.lists(FACT_EVENTS, max_size=8), st.randoms(use_true_random=False))
def test_the_fold_does_not_depend_on_arrival_order_or_repeats(
    events: list[Event], rng: Random
) -> None:
    def fold(order: list[Event]) -> PersonFacts:
        facts = PersonFacts()
        for event in order:
            facts = fold_fact(facts, event, Rules())
        return facts

    shuffled = [*events, *events[: len(events) // 2]]
    rng.shuffle(shuffled)
    assert fold(shuffled) == fold(events)
