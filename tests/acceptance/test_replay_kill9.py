"""kill -9 ``tactful serve`` after it acknowledged a webhook during a replay and before the
replay ended: the restarted server applies what it acknowledged (from the store's inbox)."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tactful.config import settings_from_toml
from tactful.engine import Engine, rules_from_settings
from tactful.store.sqlite import SQLiteStore
from tactful.zendesk.signing import sign
from tests.acceptance.test_crash_webhooks import RULES, SECRET, Server, free_port
from tests.integration.test_web import trigger_body


def _post(url: str, status: str, minutes_ago: int) -> httpx.Response:
    updated = (datetime.now(UTC) - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%MZ")
    body = trigger_body(status=status, updated=updated)
    deadline = time.monotonic() + 60  # a loaded machine may take a while to start serving
    while True:
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "X-Zendesk-Webhook-Signature": sign(SECRET, stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "Content-Type": "application/json",
        }
        try:
            return httpx.post(url, content=body, headers=headers, timeout=30)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _open_ticket(db: Path) -> tuple[int, bool | None]:
    store = SQLiteStore(f"sqlite:///{db}")
    try:
        with store.reader() as reader:
            events = reader.counts()["events"]
            (pid,) = reader.find_persons("email", "ann@example.com")
            state = reader.load_persons([pid])[pid].state
        return events, state.get("has_open_ticket")
    finally:
        store.close()


def test_kill9_after_acknowledging_during_a_replay_loses_nothing(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    config = tmp_path / "tactful.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{db}"\n[zendesk]\nwebhook_secret = "{SECRET}"\n' + RULES
    )
    server = Server(config, free_port(), tmp_path / "serve.log")
    url = f"http://127.0.0.1:{server.port}/webhooks/zendesk"
    server.start()
    try:
        assert _post(url, "Open", 3).status_code == 200
        settings = settings_from_toml(RULES, environ={})
        replayer = Engine(rules_from_settings(settings), SQLiteStore(f"sqlite:///{db}"))
        started, release = threading.Event(), threading.Event()

        def hold(done: int, total: int) -> None:
            started.set()
            release.wait(60)

        thread = threading.Thread(target=lambda: replayer.replay(progress=hold))
        thread.start()
        try:
            assert started.wait(30)
            answer = _post(url, "Solved", 2)
            assert answer.status_code == 200 and answer.json()["queued"] is True
            server.kill9()  # acknowledged, not applied: the replay still holds the store
        finally:
            release.set()
            thread.join(60)
            replayer.store.close()
        assert _open_ticket(db) == (1, True)
        server.start()
        deadline = time.monotonic() + 60
        while _open_ticket(db) != (2, False) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _open_ticket(db) == (2, False)
    finally:
        server.stop()
