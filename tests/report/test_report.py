"""The report on a small engine scenario whose rates are computed by hand, and the CLI."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson
import pytest

from tactful.cli.main import main
from tactful.core.events import Event, Identifier, OutcomeRecorded
from tactful.core.graph import person_id_for
from tactful.core.segments import in_holdout
from tactful.report import ReportError, build_report, render_html, report_json
from tactful.report.stats import Z95, newcombe_interval, wilson_interval
from tactful.testing import Harness, at, harness, rating, ticket

pytestmark = pytest.mark.store

CONFIG = """
[[segments]]
name = "suppress_promos"
description = "Open ticket"
when = "has_open_ticket"
holdout = 0.5

[[segments]]
name = "no_holdout"
when = "has_open_ticket"
"""
SALT = "report-test-salt"
SEGMENT = "suppress_promos"


def arms() -> tuple[list[int], list[int]]:
    """Four treated and four holdout Zendesk user ids (the holdout is a hash of the id)."""
    treated: list[int] = []
    holdout: list[int] = []
    for uid in range(1, 200):
        pid = person_id_for(SALT, ("zendesk_user_id", str(uid)))
        side = holdout if in_holdout(pid, SEGMENT, 0.5) else treated
        if len(side) < 4:
            side.append(uid)
        if len(treated) == len(holdout) == 4:
            return treated, holdout
    raise AssertionError("not enough ids")


def outcome(uid: int, kind: str, days: float) -> OutcomeRecorded:
    return OutcomeRecorded(
        f"{kind}:{uid}:{days}", at(days=days), Identifier("zendesk_user_id", str(uid)), kind
    )


def scenario(url: str = "sqlite:///:memory:") -> tuple[Harness, list[int], list[int]]:
    """Everyone opens a ticket on day 1 (entry); windows are 30 days, so end on day 31.

    T1..T4 treated, H1..H4 holdout. Tickets of all but T4 are solved on day 3 (exit).
    orders:       T1 d5 (after resolution), T2 d2 (before its resolution), T3 d35 (after the
                  window), H1 d10, H2 d20, H4 d4            -> repeat: T 1/3, H 3/4
    unsubscribes: T1 d6, T2 d0.5 (before entry), H1 d7, H2 d8 -> T 1/4, H 2/4
    complaints:   H3 d9                                       -> T 0/4, H 1/4
    re-contact:   T3 `recontact` outcome d12, H4 new ticket d15 (re-enters) -> T 1/4, H 1/4
    CSAT:         T1 2 -> 4 (+2), T2 3 -> 3 (0), H1 1 -> 2 (+1), H2 4 -> 2 (-2),
                  H3 only after entry (excluded)              -> T [2, 0], H [1, -2]
    """
    h = harness(CONFIG, url)
    with h.engine.store.transaction() as tx:
        tx.set_meta("person_salt", SALT)
    (t1, t2, t3, t4), (h1, h2, h3, h4) = arms()
    events: list[Event] = []
    for n, uid in enumerate((t1, t2, t3, t4, h1, h2, h3, h4)):
        tid = 100 + n
        events.append(ticket(tid, at(days=1), "open", requester_id=uid))
        if uid != t4:
            events.append(
                ticket(tid, at(days=3), "solved", requester_id=uid, created_at=at(days=1))
            )
    events += [
        outcome(t1, "order", 5),
        outcome(t2, "order", 2),
        outcome(t3, "order", 35),
        outcome(h1, "order", 10),
        outcome(h2, "order", 20),
        outcome(h4, "order", 4),
        outcome(t1, "unsubscribe", 6),
        outcome(t2, "unsubscribe", 0.5),
        outcome(h1, "unsubscribe", 7),
        outcome(h2, "unsubscribe", 8),
        outcome(h3, "complaint", 9),
        outcome(t3, "recontact", 12),
        ticket(300, at(days=15), "open", requester_id=h4),
        rating(1, at(days=0.5), 2, requester_id=t1),
        rating(2, at(days=4), 4, requester_id=t1),
        rating(3, at(days=0.5), 3, requester_id=t2),
        rating(4, at(days=5), 3, requester_id=t2),
        rating(5, at(days=0.5), 1, requester_id=h1),
        rating(6, at(days=5), 2, requester_id=h1),
        rating(7, at(days=0.5), 4, requester_id=h2),
        rating(8, at(days=5), 2, requester_id=h2),
        rating(9, at(days=5), 5, requester_id=h3),
    ]
    for event in sorted(events, key=lambda e: e.at):
        h.engine.apply([event])
    h.engine.tick(at(days=40))
    return h, [t1, t2, t3, t4], [h1, h2, h3, h4]


def metric(report: Any, name: str) -> Any:
    (seg,) = report.segments
    return next(m for m in seg.metrics if m.name == name)


def test_arms_are_what_the_store_recorded() -> None:
    h, treated, holdout = scenario()
    with h.engine.store.reader() as reader:
        for uid, expected in [(u, False) for u in treated] + [(u, True) for u in holdout]:
            (pid,) = reader.find_persons("zendesk_user_id", str(uid))
            assert reader.history_of(pid)[0].holdout is expected


def test_rates_by_hand() -> None:
    h, _, _ = scenario()
    report = build_report(h.engine.store, h.settings, window_days=30)
    assert report.generated_at == at(days=40)
    (seg,) = report.segments  # only the segment with a holdout
    assert seg.name == SEGMENT
    assert (seg.entered_treated, seg.entered_holdout) == (4, 4)
    assert (seg.measured_treated, seg.measured_holdout) == (4, 4)

    expected = {
        "repeat_purchase": ((1, 3), (3, 4)),
        "unsubscribe": ((1, 4), (2, 4)),
        "complaint": ((0, 4), (1, 4)),
        "recontact": ((1, 4), (1, 4)),
    }
    for name, ((tk, tn), (hk, hn)) in expected.items():
        m = metric(report, name)
        assert (m.treated.successes, m.treated.n) == (tk, tn), name
        assert (m.holdout.successes, m.holdout.n) == (hk, hn), name
        assert m.treated.value == pytest.approx(tk / tn)
        assert m.holdout.value == pytest.approx(hk / hn)
        assert m.difference == pytest.approx(tk / tn - hk / hn)
        assert m.treated.ci == wilson_interval(tk, tn)
        assert m.difference_ci == newcombe_interval(tk, tn, hk, hn)

    csat = metric(report, "csat_change")
    assert (csat.treated.n, csat.holdout.n) == (2, 2)
    assert csat.treated.value == pytest.approx(1.0)  # (2 + 0) / 2
    assert csat.holdout.value == pytest.approx(-0.5)  # (1 - 2) / 2
    # sample variances: treated ((1)² + (-1)²)/1 = 2; holdout (1.5² + 1.5²)/1 = 4.5
    assert csat.treated.ci.low == pytest.approx(1 - Z95 * math.sqrt(2 / 2))
    assert csat.holdout.ci.high == pytest.approx(-0.5 + Z95 * math.sqrt(4.5 / 2))
    assert csat.difference == pytest.approx(1.5)
    assert csat.difference_ci.low == pytest.approx(1.5 - Z95 * math.sqrt(2 / 2 + 4.5 / 2))

    churn = seg.churn
    # 8 entries on day 1 + H4 again on day 15; 7 exits on day 3; T4 and H4 still in
    assert (churn.people, churn.entries, churn.exits) == (8, 9, 7)
    assert churn.entries_per_person == pytest.approx(9 / 8)
    assert churn.exits_per_person == pytest.approx(7 / 8)
    assert churn.bounced == 1
    assert churn.bounced_share == pytest.approx(1 / 8)
    assert churn.median_stay_days == pytest.approx(2.0)
    assert (churn.completed_stays, churn.open_stays) == (7, 2)
    assert churn.bucket == "day"
    assert sum(p.entries for p in churn.series) == 9
    assert sum(p.exits for p in churn.series) == 7
    assert churn.series[0].size == 8  # first bucket: day 1 to day 2
    assert (churn.series[-1].size, churn.series[-1].holdout_size) == (2, 1)


def test_window_and_since_and_segment() -> None:
    h, _, _ = scenario()
    store, settings = h.engine.store, h.settings
    # as of day 20 no one's 30-day window has ended: entered, but not measured
    early = build_report(store, settings, now=at(days=20))
    (seg,) = early.segments
    assert (seg.entered_treated, seg.entered_holdout) == (4, 4)
    assert (seg.measured_treated, seg.measured_holdout) == (0, 0)
    assert metric(early, "unsubscribe").treated.value is None
    assert metric(early, "unsubscribe").difference_ci is None
    # a 10-day window (day 1 to day 11): the day-20 order of H2 no longer counts
    short = build_report(store, settings, window_days=10)
    m = metric(short, "repeat_purchase")
    assert (m.treated.successes, m.treated.n, m.holdout.successes, m.holdout.n) == (1, 3, 2, 4)
    # since day 10: only H4's second entry (day 15) is in the period; its window ends day 45
    later = build_report(store, settings, since=at(days=10), now=at(days=50))
    (seg,) = later.segments
    assert (seg.entered_treated, seg.entered_holdout) == (0, 1)
    assert (later.segments[0].churn.entries, later.segments[0].churn.exits) == (1, 0)
    # a named segment without a holdout is reported with an empty holdout arm
    named = build_report(store, settings, segment="no_holdout")
    (seg,) = named.segments
    assert (seg.measured_treated, seg.measured_holdout) == (8, 0)
    with pytest.raises(ReportError, match="no segment named"):
        build_report(store, settings, segment="nope")
    with pytest.raises(ReportError):
        build_report(store, settings, window_days=0)


def test_json_and_html() -> None:
    h, _, _ = scenario()
    report = build_report(h.engine.store, h.settings)
    data = report_json(report)
    orjson.dumps(data)  # plain JSON values only
    assert data["generated_at"] == "2026-02-10T00:00:00Z"
    seg = data["segments"][0]
    assert set(seg["metrics"]) == {
        "repeat_purchase",
        "unsubscribe",
        "complaint",
        "recontact",
        "csat_change",
    }
    rp = seg["metrics"]["repeat_purchase"]
    assert rp["treated"]["n"] == 3 and rp["holdout"]["successes"] == 3
    assert len(rp["difference_ci"]) == 2
    html = render_html(report)
    assert html.startswith("<!DOCTYPE html>")
    for name in seg["metrics"]:
        section = html.split(f'id="metric-{name}"', 1)[1].split("</section>", 1)[0]
        assert section.count("<svg") == 1
        assert "n=" in section
    assert html.count("<svg") == 5 + 1  # one per metric + the churn chart
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")


def test_cli(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    db = tmp_path / "t.db"
    config = tmp_path / "tactful.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n' + CONFIG)
    h, _, _ = scenario(f"sqlite:///{db}")
    h.engine.store.close()
    out = tmp_path / "report.html"
    argv = ["--config", str(config), "report", "--json", "--window-days", "30"]
    assert main([*argv, "--out", str(out), "--since", "2026-01-01"]) == 0
    data = orjson.loads(capsysbinary.readouterr().out)
    assert set(data) == {"generated_at", "since", "window_days", "confidence", "segments"}
    assert data["since"] == "2026-01-01T00:00:00Z"
    assert [s["segment"] for s in data["segments"]] == [SEGMENT]
    seg = data["segments"][0]
    assert set(seg) == {
        "segment",
        "description",
        "holdout_fraction",
        "entered",
        "measured",
        "metrics",
        "churn",
    }
    unsub = seg["metrics"]["unsubscribe"]
    assert set(unsub) == {
        "title",
        "kind",
        "treated",
        "holdout",
        "difference",
        "difference_ci",
        "method",
    }
    assert set(unsub["treated"]) == {"n", "successes", "value", "ci"}
    assert unsub["treated"]["value"] == 0.25 and unsub["holdout"]["value"] == 0.5
    assert seg["churn"]["bounced"] == 1
    assert out.read_text().count("<svg") == 6

    assert main(["--config", str(config), "report", "--segment", SEGMENT]) == 0
    text = capsysbinary.readouterr().out.decode()
    assert "Unsubscribe rate" in text and "25.0%" in text

    assert main(["--config", str(config), "report", "--segment", "nope"]) == 1
    assert main(["--config", str(config), "report", "--since", "yesterday"]) == 1
    err = capsysbinary.readouterr().err.decode()
    assert "no segment named" in err and "--since" in err
