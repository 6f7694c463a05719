from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tactful.core.reasons import ReasonClassifier, ReasonRule

RULES = [
    ReasonRule(
        name="refund",
        tags=frozenset({"refund", "Chargeback"}),
        keywords=("refund", "chargeback", "money back"),
        fields={"360012345": frozenset({"refund_request"})},
        risk=True,
    ),
    ReasonRule(
        name="product_issue",
        tags=frozenset({"irritation", "allergic_reaction"}),
        keywords=("irritation", "rash", "allergic reaction"),
        fields={"360099999": frozenset({"Reaction"})},
        risk=False,
    ),
    ReasonRule(
        name="order_issue",
        tags=frozenset({"wrong_item", "damaged"}),
        keywords=("wrong item", "damaged", "where is my order"),
        fields={},
        risk=False,
    ),
]


@pytest.fixture
def classifier() -> ReasonClassifier:
    return ReasonClassifier(RULES)


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Refund please", ("refund", True)),
        ("need a refund!", ("refund", True)),
        ("REFUND", ("refund", True)),
        ("(refund)", ("refund", True)),
        ("refund/return", ("refund", True)),
        ("I want my money  back", ("refund", True)),
        ("I was refunded twice", ("other", False)),
        ("prerefund", ("other", False)),
        ("refund_request", ("other", False)),
        ("Got a wrong item", ("order_issue", False)),
        ("WRONG\tITEM shipped", ("order_issue", False)),
        ("wrong items", ("other", False)),
        ("wrong", ("other", False)),
        ("Allergic reaction to serum", ("product_issue", False)),
        ("rash after use", ("product_issue", False)),
        ("Hello", ("other", False)),
        ("", ("other", False)),
    ],
)
def test_keywords_match_whole_words(
    classifier: ReasonClassifier, subject: str, expected: tuple[str, bool]
) -> None:
    assert classifier.classify([], subject, []) == expected


def test_tags_match_case_insensitively(classifier: ReasonClassifier) -> None:
    assert classifier.classify(["vip", "CHARGEBACK"], "Hi", []) == ("refund", True)
    assert classifier.classify(["chargeback"], "Hi", []) == ("refund", True)
    assert classifier.classify(["damaged"], "Hi", []) == ("order_issue", False)
    assert classifier.classify(["damaged_goods"], "Hi", []) == ("other", False)


def test_custom_field_values_match_case_insensitively(classifier: ReasonClassifier) -> None:
    assert classifier.classify([], "", [("360012345", "REFUND_REQUEST")]) == ("refund", True)
    assert classifier.classify([], "", [("360099999", "reaction")]) == ("product_issue", False)
    # the value must be under the listed field id
    assert classifier.classify([], "", [("1", "refund_request")]) == ("other", False)
    assert classifier.classify([], "", [("360012345", "other_value")]) == ("other", False)


def test_first_rule_in_order_wins_across_criteria(classifier: ReasonClassifier) -> None:
    # tag of rule 3, keyword of rule 1 -> rule 1
    assert classifier.classify(["damaged"], "Refund please", []) == ("refund", True)
    # tag of rule 2, keyword of rule 3 -> rule 2
    assert classifier.classify(["irritation"], "wrong item", []) == ("product_issue", False)
    # field of rule 1, tag of rule 2 -> rule 1
    assert classifier.classify(["irritation"], "", [("360012345", "refund_request")]) == (
        "refund",
        True,
    )
    # keywords of rules 2 and 3 in one subject -> rule 2
    assert classifier.classify([], "wrong item caused a rash", []) == ("product_issue", False)


def test_overlapping_keywords_respect_rule_order() -> None:
    classifier = ReasonClassifier(
        [
            ReasonRule("item", frozenset(), ("item",), {}, False),
            ReasonRule("wrong_item", frozenset(), ("wrong item",), {}, False),
        ]
    )
    assert classifier.classify([], "wrong item", []) == ("item", False)


def test_regex_metacharacters_in_keywords_are_literal() -> None:
    classifier = ReasonClassifier(
        [ReasonRule("odd", frozenset(), ("c++", "a.b", "#refund"), {}, False)]
    )
    assert classifier.classify([], "c++ question", []) == ("odd", False)
    assert classifier.classify([], "about #refund", []) == ("odd", False)
    assert classifier.classify([], "axb", []) == ("other", False)


def test_no_rules_gives_other() -> None:
    assert ReasonClassifier([]).classify(["refund"], "refund", [("1", "x")]) == ("other", False)


def test_blank_keywords_are_ignored() -> None:
    classifier = ReasonClassifier([ReasonRule("blank", frozenset(), ("", "  "), {}, False)])
    assert classifier.classify([], "anything", []) == ("other", False)


def test_unicode_words() -> None:
    classifier = ReasonClassifier([ReasonRule("de", frozenset(), ("rückerstattung",), {}, True)])
    assert classifier.classify([], "Bitte Rückerstattung!", []) == ("de", True)
    assert classifier.classify([], "Rückerstattungen", []) == ("other", False)


def test_case_folding_mismatch_between_regex_and_lookup_is_handled() -> None:
    # re.IGNORECASE matches "İ" to "i" but casefold() differs: the slow path finds the rule.
    classifier = ReasonClassifier(
        [
            ReasonRule("first", frozenset({"t"}), ("x",), {}, False),
            ReasonRule("dotted", frozenset(), ("istanbul",), {}, False),
        ]
    )
    assert classifier.classify([], "İstanbul order", []) == ("dotted", False)


def test_keyword_scan_finds_lowest_rule_anywhere_in_subject() -> None:
    rules = [ReasonRule(f"r{i}", frozenset(), (f"w{i}",), {}, False) for i in range(30)]
    classifier = ReasonClassifier(rules)
    assert classifier.classify([], "w29 w17 w3 w12", []) == ("r3", False)
    assert classifier.classify([], "w29 w17 w12 w0", []) == ("r0", False)


def test_classifies_among_25_rules() -> None:
    """Its cost per call is a figure of ``bench/reasons.py`` (``classify_rules_only_us``)."""
    rules = [
        ReasonRule(
            f"reason_{i}",
            frozenset({f"tag_{i}", f"other_tag_{i}"}),
            (f"keyword{i}", f"two words{i}"),
            {str(1000 + i): frozenset({f"value_{i}"})},
            i % 2 == 0,
        )
        for i in range(25)
    ]
    classifier = ReasonClassifier(rules)
    tags = ["vip", "web", "tag_24", "misc"]
    fields = [("1", "a"), ("2", "b")]
    subject = "My order arrived late and the box was open, what can you do about keyword24"
    assert classifier.classify(tags, subject, fields) == ("reason_24", True)


VOCAB = ["refund", "refunded", "wrong", "item", "items", "wrong item", "rash", "Rash", "a", "!"]


def _reference(rules: list[ReasonRule], tags: list[str], subject: str) -> tuple[str, bool]:
    import re

    for rule in rules:
        if {t.casefold() for t in rule.tags} & {t.casefold() for t in tags}:
            return (rule.name, rule.risk)
        for keyword in rule.keywords:
            words = r"\s+".join(re.escape(w) for w in keyword.split())
            if re.search(rf"(?<!\w){words}(?!\w)", subject, re.IGNORECASE):
                return (rule.name, rule.risk)
    return ("other", False)


@given(
    keywords=st.lists(st.lists(st.sampled_from(VOCAB), max_size=3), min_size=1, max_size=5),
    tags=st.lists(st.lists(st.sampled_from(["x", "y", "z"]), max_size=2), min_size=5, max_size=5),
    ticket_tags=st.lists(st.sampled_from(["x", "Y", "w"]), max_size=2),
    words=st.lists(st.sampled_from(VOCAB), max_size=8),
    separator=st.sampled_from([" ", "  ", "-", ""]),
)
def test_matches_the_naive_first_rule_semantics(
    keywords: list[list[str]],
    tags: list[list[str]],
    ticket_tags: list[str],
    words: list[str],
    separator: str,
) -> None:
    rules = [
        ReasonRule(f"r{i}", frozenset(tags[i]), tuple(kws), {}, i % 2 == 0)
        for i, kws in enumerate(keywords)
    ]
    subject = separator.join(words)
    expected = _reference(rules, ticket_tags, subject)
    assert ReasonClassifier(rules).classify(ticket_tags, subject, []) == expected
