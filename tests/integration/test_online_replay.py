"""A replay runs online: webhooks are acknowledged while it holds the store, kept in the
store's inbox, and applied in arrival order once it ends (or when the server starts again)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, Incoming, ReplayReport, rules_from_settings
from tactful.engine.writer import Writer, encode
from tactful.store.sqlite import open_store
from tactful.testing import at, new_store_url, ticket
from tactful.web.app import create_app
from tests.integration.test_web import CONFIG, auth, signed, trigger_body

pytestmark = pytest.mark.store

ACK_BOUND = 1.0  # seconds; the replay below holds the store for up to 60


def _engine(url: str) -> Engine:
    settings = settings_from_toml(CONFIG, environ={})
    return Engine(rules_from_settings(settings), open_store(url))


def _stamp(minutes_ago: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%MZ")


def _open(client: TestClient) -> Any:
    r = client.get("/api/people/ann@example.com", headers=auth())
    assert r.status_code == 200, r.text
    return r.json()["state"]["has_open_ticket"]


def _post(client: TestClient, status: str, minutes_ago: int) -> tuple[Any, float]:
    body = trigger_body(status=status, updated=_stamp(minutes_ago))
    started = time.monotonic()
    r = client.post("/webhooks/zendesk", content=body, headers=signed(body))
    elapsed = time.monotonic() - started
    assert r.status_code == 200, r.text
    return r.json(), elapsed


@contextmanager
def _replay_running(url: str) -> Iterator[Callable[[], ReplayReport]]:
    """A replay in another engine on the same store (as ``tactful replay`` in another
    process), held after its first chunk until the block ends; yields a function that
    lets it finish and returns its report."""
    engine = _engine(url)
    started, release = threading.Event(), threading.Event()
    reports: list[ReplayReport] = []

    def hold(done: int, total: int) -> None:
        started.set()
        release.wait(60)

    thread = threading.Thread(target=lambda: reports.append(engine.replay(progress=hold)))
    thread.start()
    assert started.wait(30), "the replay did not start"

    def finish() -> ReplayReport:
        release.set()
        thread.join(60)
        engine.store.close()
        return reports[0]

    try:
        yield finish
    finally:
        release.set()
        thread.join(60)


def _until(check: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


def test_a_webhook_during_a_replay_is_acknowledged_at_once_and_applied_after_it(
    tmp_path: Path,
) -> None:
    url = new_store_url(tmp_path)
    settings = settings_from_toml(CONFIG, environ={})
    app = create_app(settings, _engine(url), tick_seconds=0)
    with TestClient(app) as client:
        _post(client, "Open", 3)
        assert _open(client) is True
        with _replay_running(url) as finish:
            answer, elapsed = _post(client, "Solved", 2)
            assert elapsed < ACK_BOUND, f"acknowledged after {elapsed:.2f} s"
            assert answer["queued"] is True and answer["events"] == 1
            again, _ = _post(client, "Solved", 2)  # Zendesk's retry: kept twice, applied once
            assert again["queued"] is True
            # readers say a replay is rebuilding the store, rather than show half of it
            for path in ("/api/people/ann@example.com", "/api/segments"):
                r = client.get(path, headers=auth())
                assert r.status_code == 503 and r.json()["error"] == "replay_in_progress"
            started = time.monotonic()
            ready = client.get("/readyz")  # still ready: webhooks are being acknowledged
            assert ready.status_code == 200 and time.monotonic() - started < ACK_BOUND
            finish()
            assert _until(lambda: _open(client) is False)
        with app.state.ctx.engine.store.reader() as reader:
            assert reader.counts()["events"] == 2  # the retry was deduplicated


def test_a_request_acknowledged_before_a_stop_is_applied_when_the_server_starts_again(
    tmp_path: Path,
) -> None:
    url = new_store_url(tmp_path)
    settings = settings_from_toml(CONFIG, environ={})
    with TestClient(create_app(settings, _engine(url), tick_seconds=0)) as client:
        _post(client, "Open", 3)
    with _replay_running(url) as finish:
        with TestClient(create_app(settings, _engine(url), tick_seconds=0)) as client:
            answer, _ = _post(client, "Solved", 2)
            assert answer["queued"] is True
        # The server stopped after the acknowledgement and before the replay ended.
        finish()
    after = _engine(url)
    with after.store.reader() as reader:
        assert reader.counts()["events"] == 1  # only in the inbox so far
    with TestClient(create_app(settings, after, tick_seconds=0)) as client:
        assert _until(lambda: _open(client) is False)


def test_a_tick_during_a_replay_does_not_wait_for_it(tmp_path: Path) -> None:
    url = new_store_url(tmp_path)
    engine = _engine(url)
    engine.apply([ticket(1, at(0))])  # something to replay
    writer = Writer(engine)
    writer.start()
    try:
        with _replay_running(url) as finish:
            started = time.monotonic()
            stats = writer.tick(datetime.now(UTC)).result(timeout=30)
            assert time.monotonic() - started < ACK_BOUND
            assert stats.timers_fired == 0
            finish()
    finally:
        writer.stop()


def test_the_inbox_gives_requests_back_in_arrival_order_and_keeps_failed_ones(
    tmp_path: Path,
) -> None:
    store = open_store(new_store_url(tmp_path))
    inbox = store.inbox()
    assert inbox is not None and not inbox.pending()
    inbox.put([b"first", b"second"])
    inbox.put([b"third"])
    rows = inbox.take(10)
    assert [r.payload for r in rows] == [b"first", b"second", b"third"]
    assert [r.seq for r in rows] == sorted(r.seq for r in rows)
    inbox.fail(rows[1].seq, "ValueError: unreadable")
    inbox.done([rows[0].seq])
    assert [r.payload for r in inbox.take(10)] == [b"third"]  # the failed one is skipped
    assert inbox.failed() == [(rows[1].seq, "ValueError: unreadable")]
    summary = inbox.summary()  # what `tactful doctor` shows
    assert (summary.waiting, summary.failed) == (1, 1)
    assert summary.oldest_error == "ValueError: unreadable" and summary.oldest_failed_us
    inbox.done([rows[2].seq])
    assert not inbox.pending() and inbox.take(10) == []
    inbox.put([b"fourth"])
    store.close()
    reopened = open_store(store.url)
    again = reopened.inbox()  # what was not applied is still there after a restart
    assert again is not None and [r.payload for r in again.take(10)] == [b"fourth"]
    reopened.close()


def test_a_writer_waits_for_no_replay_and_a_replay_waits_for_a_writer(tmp_path: Path) -> None:
    """The guard both ways: shared for writers (refused while a replay holds it, never
    waited for), exclusive for the replay (which waits for a writer's commit to end)."""
    url = new_store_url(tmp_path)
    writer_store, replay_store = open_store(url), open_store(url)
    with writer_store.unless_replaying() as free:
        assert free
        entered = threading.Event()

        def replay() -> None:
            with replay_store.replay_lock():
                entered.set()

        thread = threading.Thread(target=replay)
        thread.start()
        assert not entered.wait(0.3)  # the replay waits for the writer's commit
    assert entered.wait(10)
    thread.join(10)
    with replay_store.replay_lock(), writer_store.unless_replaying() as free:
        assert not free
    with writer_store.unless_replaying() as free:
        assert free
    writer_store.close()
    replay_store.close()


def test_a_request_that_cannot_be_applied_is_kept_and_the_rest_is_applied(
    tmp_path: Path,
) -> None:
    engine = _engine(new_store_url(tmp_path))
    inbox = engine.store.inbox()
    assert inbox is not None
    good = encode([Incoming([ticket(1, at(0))], b"{}", "webhook:test")], {})
    inbox.put([b"not a request", good])
    writer = Writer(engine)
    writer.start()  # applies the inbox at start
    try:
        later = writer.submit([Incoming([ticket(2, at(1), requester_id=2)], None, "test")])
        assert later.result(timeout=30).applied == 1
    finally:
        writer.stop()
    with engine.store.reader() as reader:
        assert reader.counts()["tickets"] == 2
    assert not inbox.pending() and inbox.take(10) == []
    ((_, error),) = inbox.failed()  # the bad one is kept aside, with its error
    assert error.startswith("JSONDecodeError")


def test_requests_kept_during_a_replay_are_applied_in_arrival_order_before_newer_ones(
    tmp_path: Path,
) -> None:
    url = new_store_url(tmp_path)
    engine = _engine(url)
    engine.apply([ticket(1, at(0))])  # something to replay
    writer = Writer(engine)
    writer.start()

    def send(n: int) -> bool:
        item = Incoming([ticket(10 + n, at(1), requester_id=10 + n)], b'{"n": %d}' % n, f"o:{n}")
        return writer.submit([item]).result(timeout=30).queued

    try:
        with _replay_running(url) as finish:
            assert [send(n) for n in (1, 2, 3)] == [True, True, True]
            finish()
        assert send(4) is False
    finally:
        writer.stop()
    with engine.store.reader() as reader:
        documents = reader.documents_with_source_prefix("o:", 0)
        assert reader.counts()["tickets"] == 5
    assert [source for _, source, _ in documents] == ["o:1", "o:2", "o:3", "o:4"]


def test_an_erasure_made_after_a_request_arrived_is_not_undone_when_the_inbox_is_applied(
    tmp_path: Path,
) -> None:
    from tactful.core.events import Identifier, PersonErased
    from tactful.testing import user

    url = new_store_url(tmp_path)
    engine = _engine(url)
    engine.apply([user(7, emails=("erin@example.com",)), ticket(70, at(1), "open", requester_id=7)])
    inbox = engine.store.inbox()
    assert inbox is not None
    # a webhook about Erin, acknowledged during a replay, still waits in the inbox ...
    body = b'{"ticket": {"id": 71, "requester": "erin@example.com"}}'
    later = ticket(71, at(2), "open", requester_id=7)
    inbox.put([encode([Incoming([later], body, "webhook:zendesk")], {})])
    # ... when Erin is erased directly in the store (an import, another process's command)
    engine.apply([PersonErased("erase-erin", at(3), Identifier("email", "erin@example.com"))])
    writer = Writer(engine)
    writer.start()
    try:
        assert _until(lambda: not inbox.pending())
    finally:
        writer.stop()
    with engine.store.reader() as reader:
        assert reader.find_persons("email", "erin@example.com") == []
        assert reader.find_persons("zendesk_user_id", "7") == []
        assert reader.load_tickets([70, 71]) == {}
        assert reader.counts()["persons"] == 0
        bodies = [
            reader.document_body(doc)
            for doc, _, _ in reader.documents_with_source_prefix("webhook", 0)
        ]
    assert all(b is None or b"erin" not in b for b in bodies)  # nor the request's body
    assert inbox.summary().failed == 0  # dropped on purpose, not failed
    engine.store.close()


def test_a_request_arriving_while_the_inbox_is_applied_is_queued_behind_it_not_kept_waiting(
    tmp_path: Path,
) -> None:
    from tactful.engine.writer import MAX_GROUP

    engine = _engine(new_store_url(tmp_path))
    inbox = engine.store.inbox()
    assert inbox is not None
    # what a long replay left: more requests than the writer applies in one group
    backlog = 3 * MAX_GROUP
    inbox.put(
        [
            encode([Incoming([ticket(2000 + n, at(1), "open", requester_id=2000 + n)])], {})
            for n in range(backlog)
        ]
    )
    writer = Writer(engine)
    latest = ticket(2000, at(2), "solved", requester_id=2000)  # newer than its first version
    writer.start()
    try:
        answer = writer.submit([Incoming([latest])]).result(30)
        # acknowledged from the inbox, behind the backlog, not after applying all of it
        assert answer.queued
        assert _until(lambda: not inbox.pending(), timeout=60)
    finally:
        writer.stop()
    with engine.store.reader() as reader:
        assert reader.counts()["tickets"] == backlog
        record = reader.load_tickets([2000])[2000][1]
        assert record.status == "solved"  # applied after the backlog: arrival order kept
    engine.store.close()
