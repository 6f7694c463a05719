"""``tactful.core.state.SupportState``: the one definition of the support-state fields.

Names, order, rule types, sources, inferred fields and blank values derive from it, and so
does the ``values`` schema of ``support_state_changed``; these tests fail when a derived
place, the derivation or the published schema disagrees with the typed value.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from types import UnionType
from typing import Any, get_args, get_origin, get_type_hints

import jsonschema_rs
import orjson
import pytest

from tactful.config.models import STATE_FIELDS as RULE_FIELDS
from tactful.core.messages import nothing_to_say
from tactful.core.state import (
    BLANK_FIELDS,
    FACT_FIELD_NAMES,
    INFERRED_FIELD_NAMES,
    STATE_FIELD_NAMES,
    TICKET_FIELD_NAMES,
    PersonFacts,
    SupportState,
    fact_fields,
    ticket_fields,
)
from tactful.testing import TIMED_RULES, at, harness, health, rating, ticket, user

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "support_state_changed.json"
HINTS = get_type_hints(SupportState)


def test_the_derivations_name_every_field_once() -> None:
    assert tuple(HINTS) == STATE_FIELD_NAMES
    assert set(TICKET_FIELD_NAMES) | set(FACT_FIELD_NAMES) | {"support_state"} == set(HINTS)
    assert not set(TICKET_FIELD_NAMES) & set(FACT_FIELD_NAMES)
    assert set(INFERRED_FIELD_NAMES) <= set(TICKET_FIELD_NAMES)
    assert list(RULE_FIELDS) == list(STATE_FIELD_NAMES)


def test_the_folds_produce_exactly_their_fields_and_blank_is_blank() -> None:
    assert tuple(ticket_fields([])) == TICKET_FIELD_NAMES
    assert set(fact_fields(PersonFacts())) == set(FACT_FIELD_NAMES)
    assert {**ticket_fields([]), **fact_fields(PersonFacts())} == BLANK_FIELDS
    assert nothing_to_say({**BLANK_FIELDS, "support_state": "clear"}, {})


def _states() -> list[dict[str, Any]]:
    h = harness(TIMED_RULES)
    h.engine.apply(
        [
            user(1, emails=("a@example.com",)),
            ticket(1, at(0), "open", tags=("refund",)),
            rating(1, at(1), "bad"),
            health(at(2), "unsatisfied"),
            user(2, emails=("b@example.com",)),
        ]
    )
    with h.engine.store.reader() as reader:
        ids = reader.person_ids(None, 10)
        return [dict(row.state) for row in reader.load_persons(ids).values()]


def _holds(hint: Any, value: object) -> bool:
    if isinstance(hint, UnionType):
        return any(_holds(h, value) for h in get_args(hint))
    if hint is type(None):
        return value is None
    if get_origin(hint) is list:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, float | int) and not isinstance(value, bool)
    return isinstance(value, hint)


def test_derived_states_are_typed_values_and_validate_against_the_published_schema() -> None:
    on_disk = json.loads(SCHEMA.read_text())
    values = on_disk["properties"]["data"]["properties"]["values"]
    assert list(values["properties"]) == list(STATE_FIELD_NAMES)
    validator = jsonschema_rs.Draft202012Validator(values)
    states = _states()
    assert len(states) == 2 and any(s["has_open_ticket"] for s in states)
    for state in states:
        assert set(state) == set(STATE_FIELD_NAMES)
        typed = SupportState.of(state)
        assert typed.values() == state
        for name, value in state.items():
            assert _holds(HINTS[name], value), (name, value)
        validator.validate(orjson.loads(orjson.dumps(state, option=orjson.OPT_UTC_Z)))


@pytest.mark.parametrize(
    ("name", "value"),
    [("has_open_ticket", None), ("csat_score", "5"), ("open_reasons", "refund"), ("csat_at", 1)],
)
def test_the_schema_refuses_a_value_of_another_type(name: str, value: object) -> None:
    values = json.loads(SCHEMA.read_text())["properties"]["data"]["properties"]["values"]
    assert not jsonschema_rs.Draft202012Validator(values).is_valid({name: value})


def test_times_travel_as_date_times() -> None:
    values = json.loads(SCHEMA.read_text())["properties"]["data"]["properties"]["values"]
    times = [n for n, h in HINTS.items() if datetime in get_args(h)]
    assert times and all(values["properties"][n]["format"] == "date-time" for n in times)
