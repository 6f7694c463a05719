"""Tests of the rules language: table tests of every form, errors, and time properties."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tactful.core.rules import FieldType, Rule, RuleError, parse_duration, parse_rule

FIELDS: dict[str, FieldType] = {
    "has_open_ticket": "bool",
    "refund_risk": "bool",
    "open_ticket_count": "int",
    "csat_score": "int",
    "priority": "str",
    "health": "str",
    "ticket_reason": "str",
    "support_state": "str",
    "open_reasons": "list",
    "ticket_tags": "list",
    "last_activity_at": "time",
    "last_resolved_at": "time",
    "last_refund_at": "time",
    "csat_at": "time",
}
NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
US = timedelta(microseconds=1)

PERSON: dict[str, Any] = {
    "has_open_ticket": True,
    "refund_risk": False,
    "open_ticket_count": 2,
    "csat_score": 2,
    "priority": "high",
    "health": "unsatisfied",
    "ticket_reason": "shipping",
    "support_state": "open_ticket",
    "open_reasons": ["refund", "shipping"],
    "ticket_tags": [],
    "last_activity_at": NOW - timedelta(days=3),
    "last_resolved_at": NOW - timedelta(days=10),
    "last_refund_at": None,
    # csat_at is missing altogether: same as None
}


def rule(text: str, name: str = "r") -> Rule:
    return parse_rule(text, name=name, fields=FIELDS)


def value(text: str, values: dict[str, Any] = PERSON, now: datetime = NOW) -> bool:
    v, nxt = rule(text).evaluate(values, now)
    assert nxt is None or nxt > now
    return v


# --- every operator ------------------------------------------------------------------------

TABLE = [
    # bare bool fields and literals
    ("has_open_ticket", True),
    ("refund_risk", False),
    ("not refund_risk", True),
    ("true", True),
    ("false", False),
    # equality on every scalar type, literal on either side
    ("health == 'unsatisfied'", True),
    ('health != "unsatisfied"', False),
    ('"unsatisfied" == health', True),
    ('support_state == "open_ticket"', True),
    ("csat_score == 2", True),
    ("csat_score != 2", False),
    ("2 == csat_score", True),
    ("has_open_ticket == true", True),
    ("refund_risk == false", True),
    ("refund_risk != true", True),
    # ordering on ints and strings, literal on either side (flipped)
    ("csat_score < 3", True),
    ("csat_score <= 2", True),
    ("csat_score > 2", False),
    ("csat_score >= 2", True),
    ("3 > csat_score", True),
    ("2 <= csat_score", True),
    ("1 >= csat_score", False),
    ("csat_score > -1", True),
    ('priority < "low"', True),
    ("open_ticket_count >= csat_score", True),
    ("open_ticket_count > csat_score", False),
    ("csat_score == open_ticket_count", True),
    # membership, both directions
    ('priority in ["high", "urgent"]', True),
    ('priority in ["low"]', False),
    ("priority in []", False),
    ('priority not in ["high", "urgent"]', False),
    ('ticket_reason not in ["shipping", "other"]', False),
    ('ticket_reason not in ["refund", "other",]', True),
    ("csat_score in [1, 2]", True),
    ("csat_score not in [1, 2]", False),
    ('"refund" in open_reasons', True),
    ('"damaged" in open_reasons', False),
    ('"damaged" not in open_reasons', True),
    ('"refund" not in open_reasons', False),
    ('"vip" in ticket_tags', False),
    ('"vip" not in ticket_tags', True),
    ("ticket_reason in open_reasons", True),
    ("priority not in open_reasons", True),
    # nulls: missing key and None are both unset
    ("csat_at is null", True),
    ("last_refund_at is null", True),
    ("last_refund_at is not null", False),
    ("last_activity_at is not null", True),
    ("csat_score is null", False),
    ("ticket_tags is not null", True),
    # windows
    ("last_activity_at within 14d", True),
    ("last_activity_at within 2d", False),
    ("last_activity_at older than 2d", True),
    ("last_activity_at older than 14d", False),
    ("last_resolved_at older than 1w", True),
    ("last_resolved_at within 2w", True),
    ("last_activity_at within 72h", True),
    ("last_activity_at within 4319m", False),
    ("last_activity_at within 4320m", True),
    # the section-5 examples
    ("has_open_ticket and last_activity_at within 14d", True),
    ("csat_score <= 2 and csat_at within 30d", False),
    (
        "not has_open_ticket and last_resolved_at older than 7d"
        " and not (last_refund_at within 90d)",
        False,
    ),
    # keywords are case-insensitive
    ("HAS_OPEN_TICKET", None),  # fields are not: see the error tests
    ("has_open_ticket AND Last_activity_at WITHIN 14d", None),
    ("NOT refund_risk And last_resolved_at Older Than 7d", True),
    ("csat_at IS NULL", True),
    ("csat_at Is Not Null", False),
    ('priority NOT IN ["low"]', True),
    ("refund_risk == TRUE", False),
]


@pytest.mark.parametrize(("text", "expected"), [t for t in TABLE if t[1] is not None])
def test_operators(text: str, expected: bool) -> None:
    assert value(text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "has_open_ticket",
        "refund_risk",
        "csat_score == 2",
        "csat_score != 2",
        "csat_score < 9",
        "2 <= csat_score",
        'health != "x"',
        'health in ["x"]',
        'health not in ["x"]',
        '"x" in open_reasons',
        '"x" not in open_reasons',
        "health not in open_reasons",
        "csat_score == open_ticket_count",
        "csat_score != open_ticket_count",
        "open_ticket_count >= csat_score",
        "last_activity_at within 1d",
        "last_activity_at older than 1d",
        "csat_at is not null",
    ],
)
def test_unset_fields_make_every_comparison_false(text: str) -> None:
    empty: dict[str, Any] = {name: None for name in FIELDS}
    assert value(text, empty) is False
    assert value(text, {}) is False
    assert value("not (" + text + ")", {}) is True


def test_is_null_holds_for_unset_fields() -> None:
    for name in FIELDS:
        assert value(f"{name} is null", {}) is True
        assert value(f"{name} is null", {name: None}) is True
        assert value(f"{name} is not null", {}) is False


def test_bool_field_holds_only_when_true() -> None:
    assert value("has_open_ticket", {"has_open_ticket": False}) is False
    assert value("has_open_ticket", {"has_open_ticket": None}) is False
    assert value("not has_open_ticket", {}) is True  # plain negation of "is True"


def test_lists_may_be_tuples_or_sets() -> None:
    assert value('"a" in open_reasons', {"open_reasons": ("a",)}) is True
    assert value('"a" in open_reasons', {"open_reasons": frozenset({"a"})}) is True
    assert value('"a" not in open_reasons', {"open_reasons": ()}) is True


def test_string_escapes() -> None:
    assert value(r'health == "a\"b"', {"health": 'a"b'}) is True
    assert value(r"health == 'it\'s'", {"health": "it's"}) is True
    assert value(r'health == "a\\b"', {"health": "a\\b"}) is True


# --- precedence and grouping ---------------------------------------------------------------

T, F = {"has_open_ticket": True}, {"has_open_ticket": False}


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        # not binds tighter than and: (not a) and b
        ("not has_open_ticket and refund_risk", {"refund_risk": True}, True),
        ("not has_open_ticket and refund_risk", {"has_open_ticket": True}, False),
        ("not (has_open_ticket and refund_risk)", {"has_open_ticket": True}, True),
        # and binds tighter than or: a or (b and c)
        ("has_open_ticket or refund_risk and false", T, True),
        ("(has_open_ticket or refund_risk) and false", T, False),
        ("false and has_open_ticket or true", F, True),
        ("false and (has_open_ticket or true)", F, False),
        # not applies to a whole comparison
        ("not csat_score == 2", {"csat_score": 2}, False),
        ("not csat_score == 2", {"csat_score": 3}, True),
        ("not not has_open_ticket", T, True),
        ("not (not (has_open_ticket))", T, True),
        ("((has_open_ticket))", T, True),
        ("not has_open_ticket or not refund_risk", {"has_open_ticket": True}, True),
        ("has_open_ticket and refund_risk or csat_score == 1", {"csat_score": 1}, True),
        ("has_open_ticket and (refund_risk or csat_score == 1)", {"csat_score": 1}, False),
    ],
)
def test_precedence(text: str, values: dict[str, Any], expected: bool) -> None:
    assert value(text, values) is expected


def test_rules_may_span_lines() -> None:
    text = "has_open_ticket\n  and last_activity_at within 14d\n  and not refund_risk"
    assert value(text) is True


# --- durations and window boundaries -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("12h", timedelta(hours=12)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("0d", timedelta(0)),
        (" 24h ", timedelta(hours=24)),
        ("90D", timedelta(days=90)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("14", "missing its unit"),
        ("", "invalid duration"),
        ("d", "invalid duration"),
        ("7x", "invalid duration"),
        ("7 d", "invalid duration"),
        ("-7d", "invalid duration"),
        ("1.5h", "invalid duration"),
        ("7days", "invalid duration"),
        ("999999999w", "longer than 100 years"),
    ],
)
def test_parse_duration_rejects(text: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(text)


@pytest.mark.parametrize("unit", ["m", "h", "d", "w"])
def test_within_and_older_than_flip_at_the_same_microsecond(unit: str) -> None:
    d = parse_duration("3" + unit)
    within, older = rule(f"csat_at within 3{unit}"), rule(f"csat_at older than 3{unit}")
    x = NOW - timedelta(days=40)
    edge = x + d + US
    for now, inside in [
        (x - timedelta(days=1), True),  # x in the future: within holds
        (x, True),
        (x + d - US, True),
        (x + d, True),  # now - x == D: within, not older
        (x + d + US, False),
        (x + d + timedelta(days=999), False),
    ]:
        w, w_next = within.evaluate({"csat_at": x}, now)
        o, o_next = older.evaluate({"csat_at": x}, now)
        assert (w, o) == (inside, not inside)
        assert w_next == o_next == (edge if inside else None)


def test_next_change_of_the_section_5_examples() -> None:
    x = NOW - timedelta(days=3)
    r = rule("has_open_ticket and last_activity_at within 14d")
    assert r.evaluate({"has_open_ticket": True, "last_activity_at": x}, NOW) == (
        True,
        x + timedelta(days=14) + US,
    )
    # a constant false child fixes an "and": nothing to wake up for
    assert r.evaluate({"has_open_ticket": False, "last_activity_at": x}, NOW) == (False, None)
    r = rule(
        "not has_open_ticket and last_resolved_at older than 7d and not (last_refund_at within 90d)"
    )
    values = {"last_resolved_at": x, "last_refund_at": x}
    # false until both windows flipped: the later one decides
    assert r.evaluate(values, NOW) == (False, x + timedelta(days=90) + US)
    assert r.evaluate(values, x + timedelta(days=90) + US) == (True, None)
    assert r.evaluate({"last_resolved_at": x}, NOW) == (False, x + timedelta(days=7) + US)


def test_next_change_of_or() -> None:
    x = NOW - timedelta(days=1)
    r = rule("csat_at within 2d or last_activity_at within 5d or refund_risk")
    both = {"csat_at": x, "last_activity_at": x}
    assert r.evaluate(both, NOW) == (True, x + timedelta(days=5) + US)  # latest true child
    assert r.evaluate({**both, "refund_risk": True}, NOW) == (True, None)
    r = rule("csat_at older than 2d or last_activity_at older than 5d")
    assert r.evaluate(both, NOW) == (False, x + timedelta(days=2) + US)  # earliest flip
    assert r.evaluate({}, NOW) == (False, None)
    assert rule("not (csat_at within 2d)").evaluate(both, NOW) == (
        False,
        x + timedelta(days=2) + US,
    )


def test_fields_used_and_rule_identity() -> None:
    r = rule("has_open_ticket and (last_activity_at within 14d or 'x' in open_reasons)", "s")
    assert r.fields_used == frozenset({"has_open_ticket", "last_activity_at", "open_reasons"})
    assert r.name == "s"
    assert r == rule(r.text, "s")
    assert hash(r) == hash(rule(r.text, "s"))
    assert "_fn" not in repr(r)


# --- errors --------------------------------------------------------------------------------

ERRORS = [
    # (text, message fragment, line, column)
    ("foo and has_open_ticket", "unknown field 'foo'", 1, 1),
    ("has_open_ticket and\n   bogus within 3d", "unknown field 'bogus'", 2, 4),
    ("Has_Open_Ticket", "unknown field 'Has_Open_Ticket'", 1, 1),
    ("has_open_ticket && refund_risk", "unexpected character '&'", 1, 17),
    ("csat_score = 2", "use '=='", 1, 12),
    (
        "has_open_ticket refund_risk",
        "expected 'and', 'or' or end of rule, found 'refund_risk'",
        1,
        17,
    ),
    ("csat_score > 2 2", "found '2'", 1, 16),
    ("has_open_ticket and", "expected a field or a value, found end of rule", 1, 20),
    ("", "empty rule", 1, 1),
    ("   ", "empty rule", 1, 1),
    ("(has_open_ticket and refund_risk", "unclosed '('", 1, 1),
    ("not (\n(refund_risk)", "unclosed '('", 1, 5),
    ("(has_open_ticket refund_risk)", "expected ')', 'and' or 'or'", 1, 18),
    ("has_open_ticket)", "found ')'", 1, 16),
    ('health == "open', "unterminated string", 1, 11),
    ("priority in ['a', 'b'", "expected ',' or ']'", 1, 22),
    ("priority in ['a' 'b']", "expected ',' or ']'", 1, 18),
    # types
    ('csat_score == "2"', "cannot compare int field 'csat_score' with str \"2\"", 1, 12),
    ("health == 2", "cannot compare str field 'health' with int 2", 1, 8),
    ("has_open_ticket == 1", "cannot compare bool field", 1, 17),
    ("health == csat_score", "cannot compare str field 'health' with int field", 1, 8),
    ("has_open_ticket < true", "cannot order bool field", 1, 17),
    ("1 == 1", "needs a field", 1, 3),
    ("last_activity_at < csat_at", "cannot use '<' on time field 'last_activity_at'", 1, 18),
    ("csat_score > last_activity_at", "cannot use '>' on time field 'last_activity_at'", 1, 12),
    ("last_activity_at == 3", "use 'within', 'older than' or 'is null'", 1, 18),
    ("open_reasons == 'x'", "cannot use '==' on list field 'open_reasons'; use 'in'", 1, 14),
    ("csat_score == [1]", "use 'in'", 1, 12),
    ("csat_score", "int field 'csat_score' is not a condition", 1, 1),
    ("last_activity_at", "use 'within' or 'older than'", 1, 1),
    ('"x"', 'str "x" is not a condition', 1, 1),
    ("has_open_ticket and 3", "int 3 is not a condition", 1, 21),
    ("csat_score within 3d", "'within' needs a time field, found int field 'csat_score'", 1, 12),
    ("'x' older than 3d", "'older than' needs a time field", 1, 5),
    ("priority in 'x'", "'in' needs a list on its right, found str 'x'", 1, 13),
    ("priority in health", "'in' needs a list on its right, found str field 'health'", 1, 13),
    ("csat_score in ['a']", "int field 'csat_score' cannot be in a list of str", 1, 12),
    ("has_open_ticket in [1]", "needs an int or str field, found bool field", 1, 1),
    ("'a' in ['a']", "needs an int or str field, found str 'a'", 1, 1),
    ("3 in open_reasons", "'in open_reasons' needs a string, found int 3", 1, 1),
    ("csat_score in open_reasons", "needs a string, found int field 'csat_score'", 1, 1),
    ("priority in [1, 'a']", "list mixes int and str", 1, 17),
    ("priority in [true]", "a list holds only strings or integers", 1, 14),
    ("priority in [health]", "a list holds only strings or integers", 1, 14),
    ("3 is null", "'is null' needs a field", 1, 1),
    ("csat_at is nil", "expected 'null', found 'nil'", 1, 12),
    ("priority not ['a']", "expected 'in' after 'not'", 1, 14),
    # durations
    ("csat_at within 14", "missing duration unit after 14", 1, 16),
    ("csat_at within 14 d", "missing duration unit", 1, 16),
    ("csat_at within 14x", "invalid duration '14x'", 1, 16),
    ("csat_at within", "expected a duration such as 7d, found end of rule", 1, 15),
    ("csat_at older 3d", "expected 'than' after 'older', found '3d'", 1, 15),
    ("csat_score < 3d", "a duration can only follow 'within' or 'older than'", 1, 14),
]


@pytest.mark.parametrize(("text", "fragment", "line", "column"), ERRORS)
def test_errors_name_the_rule_and_the_position(
    text: str, fragment: str, line: int, column: int
) -> None:
    with pytest.raises(RuleError) as info:
        rule(text, "suppress_promos")
    err = info.value
    assert fragment in err.message
    assert (err.rule_name, err.line, err.column) == ("suppress_promos", line, column)
    lines = text.split("\n")
    assert err.position == sum(len(s) + 1 for s in lines[: line - 1]) + column - 1
    first = str(err).split("\n")[0]
    assert first == f"rule 'suppress_promos': {err.message} at line {line}, column {column}"


def test_error_str_shows_a_caret_under_the_problem() -> None:
    with pytest.raises(RuleError) as info:
        rule("has_open_ticket and\n\tfoo within 3d", "suppress_promos")
    assert str(info.value) == (
        "rule 'suppress_promos': unknown field 'foo' at line 2, column 2\n"
        "    \tfoo within 3d\n"
        "    \t^"
    )
    copy = pickle.loads(pickle.dumps(info.value))
    assert (copy.rule_name, copy.line, copy.column) == ("suppress_promos", 2, 2)


# --- properties: the value holds until next_change -----------------------------------------

DURATIONS = ["30m", "90m", "12h", "1d", "7d", "2w"]
TIME_FIELDS = [n for n, t in FIELDS.items() if t == "time"]
BASE = datetime(2026, 1, 1, tzinfo=UTC)
Ref = Callable[[dict[str, Any], datetime], bool]


def _leaves() -> st.SearchStrategy[tuple[str, Ref]]:
    bools = st.sampled_from(["has_open_ticket", "refund_risk"]).map(
        lambda f: (f, lambda v, now: v.get(f) is True)
    )
    ops: dict[str, Callable[[Any, Any], bool]] = {
        "==": lambda a, b: a == b,
        "!=": lambda a, b: a != b,
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }

    def cmp(f: str, op: str, k: int, flip: bool) -> tuple[str, Ref]:
        text = f"{k} {op} {f}" if flip else f"{f} {op} {k}"

        def ref(v: dict[str, Any], now: datetime) -> bool:
            x = v.get(f)
            return x is not None and (ops[op](k, x) if flip else ops[op](x, k))

        return text, ref

    cmps = st.builds(
        cmp,
        st.sampled_from(["csat_score", "open_ticket_count"]),
        st.sampled_from(list(ops)),
        st.integers(0, 5),
        st.booleans(),
    )

    def member(f: str, items: list[str], neg: bool) -> tuple[str, Ref]:
        text = f"{f} {'not in' if neg else 'in'} {items!r}"
        return text, lambda v, now: v.get(f) is not None and ((v[f] in items) != neg)

    members = st.builds(
        member,
        st.sampled_from(["priority", "health"]),
        st.lists(st.sampled_from(["high", "low", "neutral"]), max_size=3),
        st.booleans(),
    )

    def contains(s: str, f: str, neg: bool) -> tuple[str, Ref]:
        text = f"{s!r} {'not in' if neg else 'in'} {f}"
        return text, lambda v, now: v.get(f) is not None and ((s in v[f]) != neg)

    contains_ = st.builds(
        contains, st.sampled_from(["refund", "damaged"]), st.just("open_reasons"), st.booleans()
    )

    def null(f: str, neg: bool) -> tuple[str, Ref]:
        return f"{f} is {'not ' if neg else ''}null", lambda v, now: (v.get(f) is None) != neg

    nulls = st.builds(null, st.sampled_from(list(FIELDS)), st.booleans())

    def window(f: str, d: str, within: bool) -> tuple[str, Ref]:
        dur = parse_duration(d)
        text = f"{f} {'within' if within else 'older than'} {d}"

        def ref(v: dict[str, Any], now: datetime) -> bool:
            x = v.get(f)
            return x is not None and ((now - x <= dur) if within else (now - x > dur))

        return text, ref

    windows = st.builds(
        window, st.sampled_from(TIME_FIELDS), st.sampled_from(DURATIONS), st.booleans()
    )
    consts = st.sampled_from([("true", lambda v, now: True), ("false", lambda v, now: False)])
    return st.one_of(bools, cmps, members, contains_, nulls, consts, *[windows] * 6)


def _extend(children: st.SearchStrategy[tuple[str, Ref]]) -> st.SearchStrategy[tuple[str, Ref]]:
    def neg(c: tuple[str, Ref]) -> tuple[str, Ref]:
        return f"not ({c[0]})", lambda v, now: not c[1](v, now)

    def both(a: tuple[str, Ref], b: tuple[str, Ref], is_and: bool) -> tuple[str, Ref]:
        if is_and:
            return f"({a[0]}) and ({b[0]})", lambda v, now: a[1](v, now) and b[1](v, now)
        return f"({a[0]}) or ({b[0]})", lambda v, now: a[1](v, now) or b[1](v, now)

    return st.one_of(children.map(neg), st.builds(both, children, children, st.booleans()))


def _flat(leaves: list[tuple[str, Ref]], ops: list[str], nots: list[bool]) -> tuple[str, Ref]:
    """An unparenthesized chain, checked against Python's own not > and > or precedence."""
    parts, py = [], []
    for i, (text, _) in enumerate(leaves):
        prefix = "not " if nots[i] else ""
        parts.append(prefix + text)
        py.append(f"{prefix}r[{i}]")
        if i < len(ops):
            parts.append(ops[i])
            py.append(ops[i])
    expr = " ".join(py)

    def ref(v: dict[str, Any], now: datetime) -> bool:
        r = [leaf(v, now) for _, leaf in leaves]
        return bool(eval(expr, {"r": r}))

    return " ".join(parts), ref


RULES = st.one_of(
    st.recursive(_leaves(), _extend, max_leaves=8),
    st.integers(1, 6).flatmap(
        lambda n: st.builds(
            _flat,
            st.lists(_leaves(), min_size=n, max_size=n),
            st.lists(st.sampled_from(["and", "or"]), min_size=n - 1, max_size=n - 1),
            st.lists(st.booleans(), min_size=n, max_size=n),
        )
    ),
)
FUZZ = st.sampled_from([timedelta(0), timedelta(0), timedelta(0), US, -US])
NOW_TIMES = st.builds(lambda m, f: BASE + timedelta(minutes=m) + f, st.integers(0, 180), FUZZ)
# time values cluster where windows of DURATIONS open and close around NOW_TIMES
TIMES = st.one_of(
    st.builds(lambda m: BASE + timedelta(minutes=m), st.integers(-60 * 24 * 30, 60 * 24)),
    st.builds(
        lambda d, m, f: BASE - parse_duration(d) + timedelta(minutes=m) + f,
        st.sampled_from(DURATIONS),
        st.integers(-60, 240),
        FUZZ,
    ),
)


VALUES = st.fixed_dictionaries(
    {},
    optional={
        "has_open_ticket": st.none() | st.booleans(),
        "refund_risk": st.none() | st.booleans(),
        "csat_score": st.none() | st.integers(0, 5),
        "open_ticket_count": st.none() | st.integers(0, 5),
        "priority": st.none() | st.sampled_from(["high", "low", "urgent"]),
        "health": st.none() | st.sampled_from(["neutral", "unsatisfied"]),
        "open_reasons": st.none() | st.lists(st.sampled_from(["refund", "shipping"])),
    },
).flatmap(
    lambda d: st.fixed_dictionaries(
        {f: st.one_of(TIMES, TIMES, TIMES, st.none()) for f in TIME_FIELDS}
    ).map(lambda t: {**d, **t})
)


@pytest.mark.slow
@settings(max_examples=400, deadline=None)
@given(
    case=RULES,
    values=VALUES,
    now=NOW_TIMES,
    fractions=st.lists(st.floats(0, 1), max_size=5),
)
def test_value_holds_until_next_change(
    case: tuple[str, Ref], values: dict[str, Any], now: datetime, fractions: list[float]
) -> None:
    text, ref = case
    r = rule(text)
    v, nxt = r.evaluate(values, now)
    assert v == ref(values, now), text
    if nxt is None:
        instants = [now + US, now + timedelta(weeks=1000)]
        instants += [now + timedelta(days=3650) * f for f in fractions]
    else:
        assert nxt > now
        span = nxt - now
        instants = [nxt - US] + [min(now + span * f, nxt - US) for f in fractions]
        at_next, after = r.evaluate(values, nxt)  # consistent at the boundary itself
        assert at_next == ref(values, nxt)
        assert after is None or after > nxt
    for t in instants:
        assert r.evaluate(values, t)[0] == v == ref(values, t), (text, t)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(case=RULES, values=VALUES, now=NOW_TIMES)
def test_following_next_change_terminates(
    case: tuple[str, Ref], values: dict[str, Any], now: datetime
) -> None:
    """Waking up at each next_change visits finitely many instants, each strictly later."""
    r = rule(case[0])
    seen = 0
    nxt: datetime | None = now
    while nxt is not None:
        t = nxt
        v, nxt = r.evaluate(values, t)
        assert v == case[1](values, t)
        assert nxt is None or nxt > t
        seen += 1
        assert seen < 50


def test_an_unknown_field_suggests_the_closest_one() -> None:
    with pytest.raises(
        RuleError, match=r"unknown field 'has_open_tiket' \(did you mean 'has_open_ticket'\?\)"
    ):
        parse_rule("has_open_tiket", name="r", fields=FIELDS)
