"""``tactful.core.messages``: one codec for the outbox, and the bytes stay what they were.

The bodies are the events of ``docs/schemas/``: the typed messages must write exactly the
bytes the hand-built payloads wrote (keys in that order, times as orjson writes them), and
read back into an equal message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from tactful.core import codec, messages
from tactful.core.messages import (
    HISTORY,
    LIVE,
    REPLAYED,
    ConsentChanged,
    Json,
    MembershipChanged,
    Message,
    PersonErased,
    StateChanged,
)
from tactful.core.segments import Change
from tactful.core.state import FIELD_TYPES

TIMES = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2199, 12, 31), timezones=st.just(UTC)
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=12)
STAMPS = st.sampled_from([LIVE, REPLAYED, HISTORY])
JSON: st.SearchStrategy[Json] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
PIDS = st.from_regex(r"p_[0-9a-f]{20}", fullmatch=True)
KIND_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "bool": st.booleans(),
    "int": st.integers(-(2**53), 2**53),
    "float": st.floats(allow_nan=False, allow_infinity=False),
    "str": TEXT,
    "time": TIMES,
    "list": st.lists(TEXT, max_size=3),
}
# A state change's values: support-state fields (``SupportState``'s types, or null), and
# fields a later version may add (any JSON).
NEW_KEYS = TEXT.filter(lambda k: k not in FIELD_TYPES)
STATE_VALUES = st.builds(
    lambda known, extra: {**known, **extra},
    st.fixed_dictionaries(
        {}, optional={name: st.none() | KIND_VALUES[kind] for name, kind in FIELD_TYPES.items()}
    ),
    st.dictionaries(NEW_KEYS, JSON, max_size=2),
)
FLAGS = st.dictionaries(TEXT, st.booleans(), max_size=3)

MESSAGES: st.SearchStrategy[Message] = st.one_of(
    st.builds(
        StateChanged,
        PIDS,
        st.none() | TEXT,
        st.none() | TEXT,
        st.lists(TEXT, max_size=4).map(tuple),
        STATE_VALUES,
        FLAGS,
        TIMES,
        STAMPS,
    ),
    st.builds(
        MembershipChanged,
        PIDS,
        TEXT,
        st.sampled_from(["entered", "exited"]),
        st.booleans(),
        TEXT,
        TEXT,
        FLAGS,
        TIMES,
        STAMPS,
    ),
    st.builds(
        ConsentChanged,
        PIDS,
        st.sampled_from(["ads", "email", "analytics"]),
        st.booleans(),
        TIMES,
        STAMPS,
    ),
    st.builds(
        PersonErased,
        PIDS,
        st.dictionaries(
            st.sampled_from(["email", "phone", "external_id", "zendesk_user_id"]),
            st.lists(TEXT, min_size=1, max_size=2).map(tuple),
        ),
        TIMES,
    ),
)


@given(MESSAGES)
def test_every_message_reads_back_equal(message: Message) -> None:
    raw = messages.dumps(message)
    assert messages.loads(message.TOPIC, raw) == message
    assert messages.from_body(message.TOPIC, messages.body(message)) == message


@given(TIMES)
def test_times_are_written_as_orjson_wrote_them(when: datetime) -> None:
    assert orjson.dumps(when, option=orjson.OPT_UTC_Z) == orjson.dumps(codec.format_time(when))


def _hand_built(payload: dict[str, Any], stamp: dict[str, bool]) -> bytes:
    """How the engine wrote outbox payloads before the typed messages (the reference)."""
    return orjson.dumps({**payload, **stamp}, option=orjson.OPT_UTC_Z)


STATE = {
    "support_state": "open_ticket",
    "has_open_ticket": True,
    "open_reasons": ["refund"],
    "ticket_tags": ("vip",),
    "last_ticket_at": datetime(2026, 1, 2, 3, 4, 5, 6789, tzinfo=UTC),
    "csat_score": None,
    "reason_confidence": 0.8125,
}


@given(TIMES, st.sampled_from([({}, LIVE), ({"replayed": True}, REPLAYED)]))
def test_a_state_change_keeps_its_bytes(when: datetime, stamps: Any) -> None:
    old, stamp = stamps
    changed = ["has_open_ticket", "open_reasons", "ticket_tags", "last_ticket_at", "gone"]
    eligible = {"suppress": True, "held": False}
    expected = _hand_built(
        {
            "person_id": "p_1",
            "old_state": "clear",
            "new_state": "open_ticket",
            "changed": changed,
            "values": {k: STATE.get(k) for k in changed},
            "eligible": eligible,
            "occurred_at": when,
        },
        old,
    )
    message = messages.state_changed("p_1", "clear", STATE, changed, eligible, when, stamp)
    assert messages.dumps(message) == expected


@given(TIMES, st.booleans(), st.sampled_from([({}, LIVE), ({"history": True}, HISTORY)]))
def test_membership_and_consent_changes_keep_their_bytes(
    when: datetime, holdout: bool, stamps: Any
) -> None:
    old, stamp = stamps
    change = Change("suppress", "entered", when, "has_open_ticket", holdout, "why")
    expected = _hand_built(
        {
            "person_id": "p_1",
            "segment": "suppress",
            "change": "entered",
            "holdout": holdout,
            "rule": "has_open_ticket",
            "detail": "why",
            "eligible": {"suppress": not holdout},
            "occurred_at": codec.format_time(when),
        },
        old,
    )
    got = messages.membership_changed("p_1", change, {"suppress": not holdout}, stamp)
    assert messages.dumps(got) == expected
    consent = {"person_id": "p_1", "purpose": "ads", "granted": holdout, "occurred_at": when}
    got_consent = ConsentChanged("p_1", "ads", holdout, when, stamp)
    assert messages.dumps(got_consent) == _hand_built(consent, old)


def test_an_erasure_keeps_its_bytes() -> None:
    when = datetime(2026, 5, 1, tzinfo=UTC)
    identifiers = {"email": ["a@example.com", "b@example.com"], "zendesk_user_id": ["7"]}
    expected = _hand_built(
        {"person_id": "p_1", "identifiers": identifiers, "occurred_at": when}, {}
    )
    erased = PersonErased("p_1", {k: tuple(v) for k, v in identifiers.items()}, when)
    assert messages.dumps(erased) == expected


def test_each_topic_is_one_message_type() -> None:
    assert messages.TOPICS == (
        "support_state_changed",
        "segment_membership_changed",
        "consent_changed",
        "person_erased",
    )
