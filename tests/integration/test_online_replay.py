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
from tactful.engine import Engine, ReplayReport, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import at, new_store_url, ticket
from tactful.web.app import create_app
from tactful.writer import Writer
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
    process), held inside its transaction until the block ends; yields a function that
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
            assert _open(client) is True  # not applied while the replay runs
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
            answer, _ = _post(client, "Solved", 2)
            assert answer["queued"] is True
            client.close()
        finish()
    # The server stopped after the acknowledgement and before the replay ended.
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
