"""What Tactful keeps of what customers write (issue 25): words, a score, a language; the
rule fields built on them; how a reason was found."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tactful.config.models import STATE_FIELDS
from tactful.core.events import TicketText
from tactful.core.reasons import ReasonClassifier, ReasonRule
from tactful.core.rules import RuleError, parse_rule
from tactful.core.state import apply_text, apply_version, ticket_fields
from tactful.reasons.text import reduce
from tactful.testing import at, ticket


def test_only_distinct_words_are_kept_no_order_digits_or_addresses() -> None:
    text = "My ORDER 48213 arrived broken!! Email ann@example.com or see https://x.io/a?b=1 order"
    reduced = reduce(text)
    assert reduced.terms == ("arrived", "broken", "email", "order", "see")
    assert "48213" not in " ".join(reduced.terms)
    assert reduced.language in ("en", "")  # a short, mixed text: English, or not sure


def test_another_language_keeps_only_its_code() -> None:
    reduced = reduce("Hallo, mein Paket ist immer noch nicht angekommen, wo ist meine Bestellung?")
    assert (reduced.terms, reduced.sentiment, reduced.language) == ((), None, "de")


def test_sentiment_reads_the_customers_mood() -> None:
    angry = reduce("This is terrible and I am furious, the worst service ever.").sentiment
    happy = reduce("Thank you so much, I love the serum, great help!").sentiment
    assert angry is not None and angry <= -0.5
    assert happy is not None and happy >= 0.5


def test_html_tags_are_not_words() -> None:
    assert reduce("<p>Refund please</p> for the broken jar").terms == ("broken", "jar", "refund")


def test_rules_take_decimals_on_float_fields() -> None:
    rule = parse_rule(
        "last_sentiment < -0.5 and sentiment_at within 7d and reason_confidence >= 0.8",
        name="upset",
        fields=STATE_FIELDS,
    )
    now = at(10)
    upset = {"last_sentiment": -0.71, "sentiment_at": at(5), "reason_confidence": 0.9}
    assert rule.evaluate(upset, now)[0] is True
    assert rule.evaluate({**upset, "last_sentiment": -0.2}, now)[0] is False
    assert rule.evaluate({**upset, "last_sentiment": None}, now)[0] is False
    assert rule.evaluate(upset, now + timedelta(days=8))[0] is False
    assert parse_rule("last_sentiment > 0", name="x", fields=STATE_FIELDS).evaluate(
        {"last_sentiment": 0.3}, now
    )[0]
    assert parse_rule("negative_ticket", name="x", fields=STATE_FIELDS).evaluate(
        {"negative_ticket": True}, now
    )[0]
    with pytest.raises(RuleError, match="cannot compare"):
        parse_rule('last_sentiment == "bad"', name="x", fields=STATE_FIELDS)
    with pytest.raises(RuleError, match="only strings or integers"):
        parse_rule("last_sentiment in [0.5]", name="x", fields=STATE_FIELDS)


def test_the_source_says_what_matched_the_winning_rule() -> None:
    rules = ReasonClassifier(
        [
            ReasonRule("refund", tags=frozenset({"refund"}), keywords=("refund",)),
            ReasonRule("shipping", fields={"55": frozenset({"late"})}, keywords=("late",)),
        ]
    )
    assert rules.classify_source(["refund"], "refund please") == ("refund", False, "tag")
    assert rules.classify_source([], "refund please") == ("refund", False, "keyword")
    assert rules.classify_source([], "x", [("55", "late")]) == ("shipping", False, "field")
    assert rules.classify_source([], "hello") == ("other", False, "")


def _text(key: str, hours: float, author: int | None, terms: tuple[str, ...], score: float):
    return TicketText(key, at(hours), 1, author, terms, score, "en")


def test_only_the_requesters_words_count_and_the_latest_sets_the_sentiment() -> None:
    version = ticket(1, at(0), requester_id=7, status="open")
    record = apply_version(None, version, "other", False)
    record = apply_text(record, _text("d", 0, None, ("broken",), -0.3))  # the description
    record = apply_text(record, _text("agent", 2, 99, ("sorry", "replacement"), 0.6))
    record = apply_text(record, _text("c1", 1, 7, ("furious",), -0.8))
    assert record.customer_terms() == ("broken", "furious")
    assert record.sentiment() == (-0.8, at(1))
    fields = ticket_fields([record])
    assert fields["last_sentiment"] == -0.8 and fields["sentiment_at"] == at(1)
    assert fields["negative_ticket"] is True
    # any order, and a description repeated by every version, give the same record
    again = apply_text(None, _text("c1", 1, 7, ("furious",), -0.8))
    for part in (
        _text("d2", 3, None, ("broken",), -0.3),
        _text("agent", 2, 99, ("sorry", "replacement"), 0.6),
        _text("d", 0, None, ("broken",), -0.3),
    ):
        again = apply_text(again, part)
    again = apply_version(again, version, "other", False)
    assert again.texts == apply_text(record, _text("d2", 3, None, ("broken",), -0.3)).texts
    assert len([p for p in again.texts if p[3] == ("broken",)]) == 1


def test_a_solved_ticket_is_not_a_negative_ticket_but_keeps_the_last_sentiment() -> None:
    record = apply_version(None, ticket(1, at(0), requester_id=7, status="solved"), "other", False)
    record = apply_text(record, _text("c1", 1, 7, ("awful",), -0.9))
    fields = ticket_fields([record])
    assert fields["negative_ticket"] is False and fields["last_sentiment"] == -0.9


def test_the_starter_configs_commented_example_is_valid() -> None:
    from tactful.config import settings_from_toml, starter_config_text

    text = starter_config_text()
    start = text.index("# [[segments]]\n# # Customers who sound upset")
    end = text.index("# quality_floor", start)
    end = text.index("\n", end)
    block = "\n".join(line[2:] for line in text[start:end].splitlines() if line != "#")
    settings = settings_from_toml(text + "\n" + block + "\n", environ={})
    calm = settings.segment("calm_first")
    assert calm is not None and calm.rule.fields_used >= {"negative_ticket", "last_sentiment"}
    assert settings.reason_model.threshold == 0.6 and settings.reason_model.quality_floor == 0.7


def test_the_recorded_zendesk_exports_descriptions_are_read() -> None:
    """The sanity check on real export rows: each version with a description gives its words."""
    import json
    from pathlib import Path

    from tactful.core.events import TicketVersion
    from tactful.zendesk.parse import parse_object

    path = (
        Path(__file__).parent.parent / "fixtures" / "zendesk" / "incremental-tickets-time-full.json"
    )
    doc = json.loads(path.read_text())
    events = parse_object(doc).events
    versions = {e.key: e for e in events if isinstance(e, TicketVersion)}
    texts = [e for e in events if isinstance(e, TicketText)]
    described = [t for t in doc["tickets"] if (t.get("description") or "").strip()]
    assert texts and len(texts) == len(described)
    for text in texts:
        version = versions[text.key.removesuffix(":description")]
        assert (text.ticket_id, text.at, text.author_id) == (
            version.ticket_id,
            version.created_at,
            None,
        )
    assert any(t.terms and t.sentiment is not None for t in texts)


def test_stored_documents_lose_every_text_zendesk_puts_in_them() -> None:
    import orjson

    from tactful.reasons.documents import without_text

    said = "my zorblax jar broke"
    page = {"tickets": [{"id": 1, "subject": "Hi", "description": said}]}
    events = {
        "ticket_events": [
            {"id": 2, "child_events": [{"event_type": "Comment", "body": said, "html_body": said}]}
        ]
    }
    audit = {"audit": {"events": [{"type": "Comment", "body": said, "plain_body": said}]}}
    envelope = {"detail": {"description": said}, "event": {"comment": {"body": said}}}
    single = {"ticket": {"id": 3, "description": said, "comment": {"body": said}}}
    attempts = {"attempts": [{"request": {"payload": orjson.dumps(envelope).decode()}}]}
    for doc in (page, events, audit, envelope, single, attempts, [page, envelope]):
        raw = orjson.dumps(doc)
        assert b"zorblax" in raw  # the test can fail
        cleaned = without_text(raw)
        assert b"zorblax" not in cleaned, doc
        assert orjson.loads(cleaned) != doc  # still JSON, same shape, text blanked
    users = orjson.dumps({"users": [{"id": 1, "email": "a@example.com"}]})
    assert without_text(users) is users  # nothing to blank: the very same bytes
    assert without_text(b'{"description": ') == b'{"description": '  # not JSON: as it came


def test_ticket_records_keep_brand_and_words_and_read_older_blobs() -> None:
    from dataclasses import replace

    import orjson

    from tactful.store.records import _decode_ticket, dump_ticket

    version = ticket(1, at(0), requester_id=7)
    plain = apply_version(None, version, "other", False)
    branded = replace(plain, brand=(at(0), version.key, 360))
    worded = apply_text(
        apply_version(None, version, "refund", True, "tag", 1.0),
        TicketText("d", at(0), 1, None, ("refund",), -0.2, "en"),
    )
    both = replace(worded, brand=(at(0), version.key, 360))
    for record in (plain, branded, worded, both):
        again = _decode_ticket(1, dump_ticket(record))
        assert again == record
        assert (again.brand, again.source, again.confidence, again.texts) == (
            record.brand,
            record.source,
            record.confidence,
            record.texts,
        )
    assert len(orjson.loads(dump_ticket(plain))) == 5  # nothing new: the old form
    assert orjson.loads(dump_ticket(worded))[5] is None  # words without a brand
