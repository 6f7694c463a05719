"""Issue 21 §2: a page per destination with its sync runs (paged) and row-level errors
naming the person each concerns, identifiers masked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tactful.core.platform import PlatformReport
from tactful.delivery.worker import DeliveryWorker
from tactful.destinations.base import Outcome, Sent
from tactful.testing import RecordingDestination, at, ticket
from tactful.web.dashboard.destination import mask
from tests.dashboard.helpers import PASSWORD, World, person_of, world
from tests.dashboard.test_pages import cells

pytestmark = pytest.mark.store


class Answering(RecordingDestination):
    def send(self, items: object) -> Sent:
        outcomes = super().send(items)
        invalid = sum(o.kind == "reject" for o in outcomes)
        report = PlatformReport(len(outcomes), invalid, "received", ("Invalid email hash",))
        return Sent(outcomes, report)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    out = world(tmp_path)
    hook = Answering("hook", "webhook", kinds=("event",))
    hook.script = [Outcome("reject", "HTTP 422: bad event", status=422)]
    worker = DeliveryWorker(out.settings, out.engine.store, destinations={"hook": hook})
    worker.sync()
    for hour in (7, 8, 9):  # more runs: one per round that has something to do
        out.engine.apply([ticket(1, at(hour), "pending" if hour % 2 else "open", requester_id=1)])
        worker.sync()
    yield out
    out.engine.store.close()


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app) as c:
        r = c.post("/login", data={"password": PASSWORD, "next": "/"}, follow_redirects=False)
        assert r.status_code == 303
        yield c


def test_masking_keeps_little() -> None:
    assert mask("ann@example.com", "email") == "a••@example.com"
    assert mask("+15551234567", "phone") == "•••••••••567"
    assert mask("ab", "external_id") == "••"


def test_the_destination_page_lists_runs_and_row_errors(w: World, client: TestClient) -> None:
    r = client.get("/destinations/hook")
    assert r.status_code == 200
    runs = cells(r.text, "runs")
    assert len(runs) == 4
    oldest = runs[-1]
    assert oldest[7] == "1"  # rejected
    assert "rows" in oldest[10] and "1 invalid" in oldest[10]
    assert "Invalid email hash" in oldest[10]
    errors = cells(r.text, "row-errors")
    assert len(errors) == 1
    run_id, _, who, kind, outcome, status, error = errors[0]
    assert run_id == oldest[0] and kind == "event" and outcome == "reject"
    assert status == "422" and error == "HTTP 422: bad event"
    # the person, masked, linking to their page
    assert who == "a••@example.com"
    assert f'href="/people/{person_of(w.engine)}"' in r.text
    assert "ann@example.com" not in r.text
    # the dead letter can be retried from here
    assert 'action="/retry"' in r.text and 'name="destination" value="hook"' in r.text
    # linked from the overview
    assert 'href="/destinations/hook"' in client.get("/").text


def test_runs_are_paged(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tactful.web.dashboard.destination.RUNS_PER_PAGE", 3)
    first = client.get("/destinations/hook")
    ids = [row[0] for row in cells(first.text, "runs")]
    assert len(ids) == 3 and 'rel="next"' in first.text
    older = client.get(f"/destinations/hook?before={ids[-1]}")
    rest = [row[0] for row in cells(older.text, "runs")]
    assert len(rest) == 1 and int(rest[0]) < int(ids[-1])
    assert 'rel="next"' not in older.text and "Newest runs" in older.text


def test_an_unknown_destination_is_404(client: TestClient) -> None:
    assert client.get("/destinations/nope").status_code == 404


def test_the_platforms_last_reading_is_shown(w: World, client: TestClient) -> None:
    """Issue 21 §3: the audience size and match rate the platform last reported."""
    import orjson

    from tactful.delivery import platform

    reading = {
        "at_us": 1_796_000_000_000_000,
        "report": {"audience_lower": 1200, "audience_upper": 1300, "match_rate": "61-70%"},
    }
    with w.engine.store.transaction() as tx:
        tx.set_meta(platform.meta_key("hook"), orjson.dumps(reading).decode())
    text = client.get("/destinations/hook").text
    assert '<dd class="audience-size">1,200–1,300</dd>' in text
    assert '<dd class="match-rate">61-70%</dd>' in text


def test_a_chart_of_volume_and_errors_per_hour(w: World, client: TestClient) -> None:
    """Issue 21 §2: the destination's rows per hour, delivered and failed, as inline SVG
    (no script: the dashboard's CSP allows none)."""
    from tactful.store.runs import RunStore

    text = client.get("/destinations/hook").text
    assert '<svg class="chart volume"' in text and "<script" not in text
    runs = RunStore(w.engine.store).page("hook").runs
    delivered = sum(r.counts.events for r in runs)
    failed = sum(r.counts.rejected + r.counts.retried + r.counts.dead for r in runs)
    assert delivered > 0 and failed == 1
    buckets = re.findall(r'<g class="bucket" data-bucket="\d+"><title>([^<]+)</title>', text)
    assert buckets, text
    totals = [re.search(r"(\d+) delivered, (\d+) failed", b) for b in buckets]
    assert sum(int(m[1]) for m in totals if m) == delivered
    assert sum(int(m[2]) for m in totals if m) == failed


def test_the_dry_run_button_lists_what_would_be_sent_and_sends_nothing(
    w: World, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21 §4: ``sync --dry-run`` from the destination page."""
    from tactful import runtime
    from tests.dashboard.test_routes import csrf_of

    hook = Answering("hook", "webhook", kinds=("event",))
    monkeypatch.setattr(  # the world's webhook, recording (its configured one is a stub)
        runtime,
        "DeliveryWorker",
        lambda settings, store, **_: DeliveryWorker(settings, store, destinations={"hook": hook}),
    )
    w.engine.apply([ticket(1, at(10), "solved", requester_id=1)])  # something owed now
    page = client.get("/destinations/hook").text
    assert 'action="/destinations/hook/dry-run"' in page
    forged = client.post("/destinations/hook/dry-run", data={"csrf": "forged"})
    assert forged.status_code == 403
    r = client.post("/destinations/hook/dry-run", data={"csrf": csrf_of(page)})
    assert r.status_code == 200
    assert 'id="dry-run"' in r.text
    found = re.search(r'<dd data-kind="event">(\d+)</dd>', r.text)
    assert found is not None and int(found[1]) >= 1
    with w.engine.store.reader() as reader:
        unrouted = reader.conn.execute(  # type: ignore[attr-defined]
            "SELECT COUNT(*) FROM outbox WHERE routed = 0"
        ).fetchone()[0]
    assert unrouted >= 1 and hook.sent == []  # nothing routed, nothing sent
    missing = client.post("/destinations/nope/dry-run", data={"csrf": csrf_of(page)})
    assert missing.status_code == 404


def test_the_person_page_lists_every_delivery_about_them(w: World, client: TestClient) -> None:
    """Issue 21 §2: from a person's page, every delivery about them and the platform's
    answer (its latest attempt's run)."""
    text = client.get(f"/people/{person_of(w.engine)}").text
    rows = cells(text, "deliveries")
    assert rows, text
    rejected = [r for r in rows if r[6] == "HTTP 422: bad event"]
    assert len(rejected) == 1 and rejected[0][0] == "hook" and rejected[0][2] == "dead"
    assert "received" in rejected[0][5] and "1 invalid" in rejected[0][5]
    assert all(r[0] == "hook" for r in rows) and len(rows) >= 4
    assert 'href="/destinations/hook"' in text


def test_the_match_rate_trend_is_shown_from_the_last_readings(w: World, client: TestClient) -> None:
    """Issue 21 §3: the match rate's last readings (kept with the sync runs), oldest first,
    and which way it goes."""
    import time

    from tactful.store.runs import RunCounts, RunStore

    runs = RunStore(w.engine.store)
    now = time.time_ns() // 1000
    for hours_ago, rate in ((3, "81-90%"), (2, "71-80%"), (1, "63%")):
        run = runs.open("hook", now - hours_ago * 3_600_000_000)
        runs.close(run, 1000, RunCounts(), "", PlatformReport(match_rate=rate))
    text = client.get("/destinations/hook").text
    trend = re.search(r'<dd class="match-trend (\w+)"[^>]*>(.*?)</dd>', text)
    assert trend is not None and trend.group(1) == "falling"
    assert re.sub(r"<[^>]+>", "", trend.group(2)) == "81-90% → 71-80% → 63% (falling)"
