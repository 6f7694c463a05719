"""The sidebar's words: the lead sentence, reasons in words, when a person leaves a segment,
and values without Python reprs or microseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tactful.config.models import SegmentSettings
from tactful.core.segments import Membership
from tactful.store.pages import SentChange
from tactful.web.present import exact, relative, span, text, words
from tactful.web.sidebar.panel import PanelData, render
from tactful.web.sidebar.proof import outcome, what
from tactful.web.sidebar.summary import fields_of, lead, segment_words

NOW = datetime(2026, 12, 5, 12, 3, tzinfo=UTC)
SINCE = datetime(2026, 12, 5, 10, 5, tzinfo=UTC)


def seg(name: str, when: str, **extra: Any) -> SegmentSettings:
    return SegmentSettings(name=name, when=when, **extra)


def refund_ticket(**more: Any) -> dict[str, Any]:
    return {
        "has_open_ticket": True,
        "open_ticket_count": 1,
        "open_reasons": ["refund"],
        "refund_risk": True,
        "last_activity_at": SINCE,
        "support_state": "open_issue",
        **more,
    }


def sentence(specs: list[SegmentSettings], values: dict[str, Any], **members: Any) -> str:
    memberships = {name: m for name, m in members.items()}
    return text(lead(segment_words(specs, memberships, values, NOW)), NOW)


def test_the_issue_example_reads_as_one_plain_sentence() -> None:
    paused = seg(
        "suppress_promos",
        "has_open_ticket or last_resolved_at within 7d",
        description="Promos paused",
    )
    got = sentence([paused], refund_ticket(), suppress_promos=Membership(True, SINCE))
    assert got == (
        "Promos paused since Dec 5, 10:05 UTC — open refund ticket. "
        "Ends 7 days after the ticket is solved."
    )


def test_cooldown_adds_to_the_wait_and_a_running_cooldown_gives_the_moment() -> None:
    spec = seg("held", "has_open_ticket", cooldown="24h")
    got = sentence([spec], refund_ticket(), held=Membership(True, SINCE))
    assert got.endswith("Ends 1 day after the ticket is solved.")
    cooling = Membership(True, SINCE, false_since=NOW - timedelta(hours=3))
    got = sentence([spec], {"has_open_ticket": False}, held=cooling)
    assert got.endswith("Ends in 21 h (Dec 6, 09:03 UTC), when its cooldown is over.")


def test_a_time_window_ends_by_itself() -> None:
    spec = seg("recent", "last_activity_at within 14d and not has_open_ticket")
    values = {"has_open_ticket": False, "last_activity_at": SINCE}
    got = sentence([spec], values, recent=Membership(True, SINCE))
    assert got == (
        "Recent since Dec 5, 10:05 UTC — ticket activity 1 h ago, no open ticket. "
        "Ends in 13 d (Dec 19, 10:05 UTC) unless something changes."
    )


def test_only_segments_the_person_is_in_and_holdouts_said_plainly() -> None:
    a = seg("unhappy", 'health == "unsatisfied"')
    b = seg("open_issue", "has_open_ticket")
    values = {"health": "unsatisfied", "health_at": SINCE, "has_open_ticket": False}
    got = sentence([b, a], values, unhappy=Membership(True, SINCE))
    assert got == (
        "Unhappy since Dec 5, 10:05 UTC — agent marked them unsatisfied. Stays until that changes."
    )
    held = sentence([b, a], values, unhappy=Membership(True, SINCE, holdout=True))
    assert held == "Held out for measurement in Unhappy: marketing treats them as usual."
    assert sentence([b, a], values) == "In no segment: marketing treats them as usual."


def test_rule_fields_skip_quoted_strings() -> None:
    rule = "\"refund\" in open_reasons and ticket_reason == 'health' or csat_score <= 2"
    assert fields_of(rule) == ["open_reasons", "ticket_reason", "csat_score"]


def test_values_and_times_in_words() -> None:
    assert words(True) == "yes" and words(False) == "no"
    assert words(["refund", "shipping"]) == "refund, shipping"
    assert words(None) == "—" and words([]) == "—"
    at = datetime(2026, 12, 5, 10, 5, 7, 123456, tzinfo=UTC)
    assert exact(at, NOW) == "Dec 5, 10:05 UTC"
    assert exact(at, datetime(2027, 1, 2, tzinfo=UTC)) == "Dec 5 2026, 10:05 UTC"
    assert relative(at, NOW) == "1 h ago"
    assert relative(NOW + timedelta(days=3, hours=2), NOW) == "in 3 d"
    assert relative(NOW - timedelta(seconds=20), NOW) == "just now"
    assert span(7 * 86400, long=True) == "7 days" and span(3600, long=True) == "1 hour"


def test_templates_escape_what_they_show() -> None:
    data = PanelData(email="<script>x</script>@example.com", now=NOW, problem="<b>none</b>")
    html = render(data, ("error", "<img src=x onerror=alert(1)>"))
    assert "<script>x" not in html and "&lt;script&gt;x" in html
    assert "<img" not in html and "<b>none" not in html


def test_each_change_sent_in_words_with_its_outcome() -> None:
    types = {"meta": "meta_audience", "cio": "customerio"}
    labels = {"suppress_promos": "Promos paused"}

    def change(kind: str, status: str = "done", **kw: Any) -> SentChange:
        fields: dict[str, Any] = {
            "destination": "meta" if kind.startswith("audience") else "cio",
            "kind": kind,
            "name": kw.pop("name", ""),
            "segment": kw.pop("segment", "suppress_promos"),
            "status": status,
            "updated_us": 0,
            "last_error": kw.pop("last_error", ""),
            "http_status": kw.pop("http_status", 200),
        }
        return SentChange(**fields)

    add = change("audience_add")
    assert what(add, types, labels) == "Added to Meta (meta) audience Promos paused"
    assert outcome(add) == "delivered, HTTP 200"
    gone = change("audience_remove", "pending", last_error="HTTP 503", http_status=503)
    assert what(gone, types, labels) == "Removed from Meta (meta) audience Promos paused"
    assert outcome(gone) == "waiting to be sent (last try: HTTP 503)"
    profile = change("profile", "dead", segment="", last_error="HTTP 400: bad")
    assert what(profile, types, labels) == "Customer.io (cio) profile updated"
    assert outcome(profile) == "failed: HTTP 400: bad"
    event = change(
        "event", "skipped", name="zendesk_ticket_created", segment="", last_error="no email"
    )
    assert what(event, types, labels) == "Customer.io (cio) event zendesk ticket created"
    assert outcome(event) == "skipped: no email"


def test_sentiment_and_a_learned_reason_in_words() -> None:
    """Issue 25: how the customer sounded, in words, on the panel and in a segment's reason."""
    upset = refund_ticket(
        last_sentiment=-0.72,
        sentiment_at=SINCE,
        negative_ticket=True,
        reason_source="model",
        reason_confidence=0.83,
    )
    spec = seg("calm_first", "negative_ticket or last_sentiment < -0.5", description="Calm first")
    got = sentence([spec], upset, calm_first=Membership(True, SINCE))
    assert "upset in an open ticket, sounded very upset" in got
    learned = seg("learned", 'reason_source == "model"', description="Learned")
    assert "reason learned from their words (83% sure)" in sentence(
        [learned], upset, learned=Membership(True, SINCE)
    )
    data = PanelData(email="ann@example.com", now=NOW, person_id="p_1", state=upset)
    html = render(data)
    assert 'id="mood"' in html and "they sounded very upset" in html
    assert 'id="mood"' not in render(PanelData(email="a@x.io", now=NOW, person_id="p_1"))
    for score, said in ((-0.3, "unhappy"), (0.0, "neutral"), (0.2, "happy"), (0.9, "very happy")):
        assert f"sounded {said}" in sentence([spec], {**upset, "last_sentiment": score},
                                             calm_first=Membership(True, SINCE))  # fmt: skip
