"""Issue 21 §2: every delivery round of each destination is a sync run, with its counts,
the platform's answer and its row-level errors; kept ``runs_keep``, paged."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tactful.core.platform import PlatformReport
from tactful.delivery.store import DeliveryStore, NewDelivery
from tactful.destinations.base import Outcome, Sent
from tactful.store.records import to_us
from tactful.store.runs import RunCounts, RunStore
from tactful.testing import RecordingDestination, at, consent, ticket, user
from tests.integration.test_delivery import CONFIG, setup

pytestmark = pytest.mark.store


class Answering(RecordingDestination):
    """A recording destination whose sends carry a platform report."""

    def send(self, items: object) -> Sent:
        outcomes = super().send(items)
        return Sent(outcomes, PlatformReport(len(outcomes), 0, "received", ("ok",)))


def test_each_round_of_each_destination_is_a_run_with_its_counts(tmp_path: Path) -> None:
    engine, worker, dests, _ = setup(tmp_path)
    engine.apply(
        [
            user(1, emails=("ann@example.com",)),
            user(2, emails=("bob@example.com",)),
            consent(at(0), "ads", True, email="ann@example.com"),
            consent(at(0), "ads", False, email="bob@example.com"),
            ticket(1, at(1), "open", requester_id=1),
            ticket(2, at(1), "open", requester_id=2),
        ]
    )
    worker.sync()
    runs = RunStore(engine.store)
    meta = runs.page("meta").runs
    assert len(meta) == 1
    assert meta[0].counts == RunCounts(added=1, skipped_no_consent=1)
    assert meta[0].error == "" and meta[0].platform is None  # no answer of its own
    cio = runs.page("cio").runs[0].counts
    assert cio.updated == len([i for i in dests["cio"].delivered if i.kind == "profile"]) > 0
    assert cio.events == len([i for i in dests["cio"].delivered if i.kind == "event"]) > 0
    hook = runs.page("hook").runs[0].counts
    assert hook.events == len(dests["hook"].delivered) > 0
    # an idle round records nothing
    worker.sync()
    assert len(runs.page(None).runs) == 3
    # ann leaves the segment: a removal
    engine.apply([ticket(1, at(2), "solved", requester_id=1)])
    worker.sync()
    assert runs.page("meta").runs[0].counts == RunCounts(removed=1)


def test_row_errors_name_the_person_and_the_platform_answer_is_kept(tmp_path: Path) -> None:
    engine, worker, _dests, _ = setup(tmp_path)
    answering = Answering("hook", "webhook", kinds=("event",))
    worker.destinations["hook"] = answering
    engine.apply([user(i, emails=(f"p{i}@example.com",)) for i in (1, 2, 3)])
    engine.apply([ticket(i, at(1), "open", requester_id=i) for i in (1, 2, 3)])
    answering.script = [
        Outcome("reject", "HTTP 400: bad event", status=400),
        Outcome("retry", "HTTP 503", status=503),
        Outcome("skip", "no identifier the platform matches"),
    ]
    worker.sync()
    sent = len(answering.sent)
    page = RunStore(engine.store).page("hook")
    (run,) = page.runs
    assert run.counts.rejected == 1 and run.counts.retried == 1
    assert run.counts.skipped_no_identifier == 1
    assert run.counts.events == sent - 3
    assert run.platform == PlatformReport(sent, 0, "received", ("ok",))
    errors = page.errors[run.id]
    assert [(e.outcome, e.status, e.error) for e in errors] == [
        ("reject", 400, "HTTP 400: bad event"),
        ("retry", 503, "HTTP 503"),
    ]
    first = answering.sent[:2]
    assert [e.person_id for e in errors] == [i.person_id for i in first]
    assert all(e.kind == "event" for e in errors)


def test_a_destination_that_raises_is_a_failed_run(tmp_path: Path) -> None:
    engine, worker, _dests, _ = setup(tmp_path)

    class Broken(RecordingDestination):
        def send(self, items: object) -> list[Outcome]:
            raise RuntimeError("bug in the destination")

    worker.destinations["hook"] = Broken("hook", "webhook", kinds=("event",))
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(1), "open")])
    worker.sync()
    (run,) = RunStore(engine.store).page("hook").runs
    assert run.counts.retried > 0
    errors = RunStore(engine.store).page("hook").errors[run.id]
    assert errors and all("RuntimeError: bug in the destination" in e.error for e in errors)


def test_skips_are_counted_by_why_holdout_included(tmp_path: Path) -> None:
    """An add of a held-out member (a dead letter retried late) is skipped as holdout."""
    engine, worker, _, clock = setup(tmp_path)
    engine.apply(
        [
            user(1, emails=("ann@example.com",)),
            consent(at(0), "ads", True, email="ann@example.com"),
            ticket(1, at(1), "open"),
        ]
    )
    worker.sync()
    with engine.store.reader() as reader:
        (pid,) = [p for p, _ in reader.segment_members("held", None, 10)]
    worker.rows.enqueue(
        [NewDelivery("meta", pid, "audience_add", "", "held", "late", to_us(clock()), {})]
    )
    worker.sync()
    assert RunStore(engine.store).page("meta").runs[0].counts == RunCounts(skipped_holdout=1)
    row = next(r for r in DeliveryStore(engine.store).listing(["skipped"]) if r.key == "late")
    assert row.last_error == "the person is in the segment's holdout"


def test_runs_are_kept_runs_keep_and_paged(tmp_path: Path) -> None:
    engine, worker, _, clock = setup(tmp_path, CONFIG + '[delivery]\nruns_keep = "2d"\n')
    for i in range(1, 6):
        engine.apply(
            [user(i, emails=(f"p{i}@example.com",)), ticket(i, at(i), "open", requester_id=i)]
        )
        worker.sync()
        clock.now += timedelta(days=1)
    runs = RunStore(engine.store)
    hook = runs.page("hook", limit=10).runs
    # the runs started more than 2 days before the last one are gone
    assert [r.started_us for r in hook] == [to_us(clock.now - timedelta(days=d)) for d in (1, 2, 3)]
    first = runs.page("hook", limit=2)
    assert [r.id for r in first.runs] == [r.id for r in hook[:2]]
    second = runs.page("hook", limit=2, before=first.next_before)
    assert [r.id for r in second.runs] == [hook[2].id] and second.next_before is None
