"""The fold of a person's non-ticket facts: ``(facts, event) -> facts`` (pure).

Which events say what (product.md section 3, "rating / health / consent: latest by (at, key)
wins"):

| event                        | fact                                                         |
|------------------------------|--------------------------------------------------------------|
| ``RatingGiven``              | ``rating``: the 1-5 ``csat_score`` (``csat_score``)          |
| ``HealthSet``                | ``health``                                                   |
| ``OverrideSet``              | ``override``: the ISO time promos are suppressed until, None |
| ``ConsentSet``               | ``consent`` of its purpose                                   |
| ``UserSeen`` (active)        | ``consent`` of each purpose whose configured user field it   |
|                              | carries (``consent_fields``; a yes-like value grants)        |
| ``UserDeleted``, ``UserSeen``| ``deleted_users``; ``deleted`` once every Zendesk user of the|
| (inactive)                   | person is (``user_ids``: the person's Zendesk user ids)      |
| anything else                | nothing                                                      |

Erasures and outcomes are not facts: the batch acts on them (``tactful.engine.batch``).
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import replace
from typing import Protocol

from tactful.core import codec
from tactful.core.events import (
    ConsentSet,
    Event,
    HealthSet,
    OverrideSet,
    RatingGiven,
    UserDeleted,
    UserSeen,
)
from tactful.core.state import Latest, PersonFacts, csat_score, pick_latest

# User-field values that grant consent (case and surrounding spaces ignored).
GRANTING = frozenset({"true", "1", "yes", "y", "on", "opt_in", "opted_in", "granted"})


class FactRules(Protocol):
    """What the fold needs of the rules (``tactful.engine.engine.Rules`` provides it)."""

    @property
    def csat_good(self) -> int: ...
    @property
    def csat_bad(self) -> int: ...
    @property
    def consent_fields(self) -> Mapping[str, str]: ...  # purpose -> Zendesk user field key


def is_deletion(event: Event) -> bool:
    """Zendesk deleted one of a person's users (``user.deleted``, or an inactive user)."""
    return isinstance(event, UserDeleted) or (isinstance(event, UserSeen) and not event.active)


def fold_fact(
    facts: PersonFacts, event: Event, rules: FactRules, user_ids: Set[str] = frozenset()
) -> PersonFacts:
    """The person's facts after ``event`` (the same facts if it says nothing of them).
    ``user_ids``: the person's Zendesk user ids, read for deletions only."""
    if isinstance(event, UserDeleted | UserSeen) and is_deletion(event):
        return _deleted_user(facts, event, user_ids)
    if isinstance(event, RatingGiven):
        score = csat_score(event, good=rules.csat_good, bad=rules.csat_bad)
        return replace(facts, rating=pick_latest(facts.rating, Latest(event.at, event.key, score)))
    if isinstance(event, HealthSet):
        health = Latest(event.at, event.key, event.health)
        return replace(facts, health=pick_latest(facts.health, health))
    if isinstance(event, OverrideSet):
        until = None if event.until is None else codec.format_time(event.until)
        override = Latest(event.at, event.key, until)
        return replace(facts, override=pick_latest(facts.override, override))
    if isinstance(event, ConsentSet):
        return facts.with_consent(event.purpose, Latest(event.at, event.key, event.granted))
    if isinstance(event, UserSeen):
        fields = dict(event.fields)
        for purpose, field_key in rules.consent_fields.items():
            if field_key in fields:
                granted = fields[field_key].strip().lower() in GRANTING
                facts = facts.with_consent(purpose, Latest(event.at, event.key, granted))
    return facts


def _deleted_user(
    facts: PersonFacts, event: UserDeleted | UserSeen, user_ids: Set[str]
) -> PersonFacts:
    """The person counts as deleted once every Zendesk user of theirs is: a merged-away user
    (also inactive in Zendesk) leaves the survivor live."""
    mark = Latest(event.at, event.key, True)
    facts = facts.with_deleted_user(str(event.zendesk_user_id), mark)
    if facts.deleted is None and user_ids <= {user_id for user_id, _ in facts.deleted_users}:
        facts = replace(facts, deleted=mark)
    return facts
