"""kill -9 ``tactful serve`` after it acknowledged a webhook during a replay and before the
replay ended: the restarted server applies what it acknowledged (from the store's inbox).
kill -9 ``tactful replay`` half way: running it again ends exactly where one replay ends."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
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


# -- kill -9 `tactful replay` itself half way, then run it again --------------------------------


def _replay_store(tmp_path: Path, name: str, persons: int) -> tuple[Path, Path]:
    """A store of ``persons`` customers applied four events a batch (so the replay commits
    many chunks, ``[engine] batch_size = 2``) with a fixed salt, and a config that narrows
    a segment (the replay corrects every person). Returns (store, config)."""
    from tactful.engine.engine import SALT_KEY
    from tests.integration.test_net_delivery import CONFIG, NARROWED, customers

    db = tmp_path / f"{name}.db"
    store = SQLiteStore(f"sqlite:///{db}")
    try:
        engine = Engine(rules_from_settings(settings_from_toml(CONFIG, environ={})), store)
        with store.transaction() as tx:
            tx.set_meta(SALT_KEY, "fixed-salt")
        events = customers(persons)
        for k in range(0, len(events), 4):
            engine.apply(events[k : k + 4])
    finally:
        store.close()
    config = tmp_path / f"{name}.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n[engine]\nbatch_size = 2\n' + NARROWED)
    return db, config


def _lock_freed(path: Path, seconds: float) -> bool:
    """Whether the replay lock at ``path`` can be taken within ``seconds``."""
    deadline = time.monotonic() + seconds
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
                continue
            fcntl.flock(fd, fcntl.LOCK_UN)
            return True
    finally:
        os.close(fd)


def _marker(db: Path) -> str | None:
    conn = sqlite3.connect(db, timeout=30)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'replay'").fetchone()
        return None if row is None else str(row[0])
    finally:
        conn.close()


def _after(db: Path) -> dict[str, list[Any]]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        queries = {
            "persons": "SELECT person_id, facts, state, wake_us FROM persons ORDER BY 1",
            "memberships": "SELECT * FROM memberships ORDER BY segment, person_id",
            "history": "SELECT person_id, segment, change, at_us FROM membership_history "
            "ORDER BY id",
            "outbox": "SELECT person_id, topic, at_us, payload FROM outbox ORDER BY id",
            "meta": "SELECT key, value FROM meta WHERE key IN ('clock', 'replay')",
            "snapshot": "SELECT person_id FROM replay_before_persons",
        }
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}
    finally:
        conn.close()


def _tactful(config: Path, *args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("tactful")), "--config", str(config), *args]


@pytest.mark.parametrize(
    "mode",
    [[], ["--by-person"], ["--by-person", "--workers", "2"]],
    ids=["log-order", "by-person", "by-person-workers"],
)
def test_kill9_of_a_replay_half_way_then_replay_again_is_one_replay(
    tmp_path: Path, mode: list[str]
) -> None:
    """The replay killed runs as ``mode`` says; the one it is compared with, in one process."""
    once_db, once_config = _replay_store(tmp_path, "once", 300)
    killed_db, killed_config = _replay_store(tmp_path, "killed", 300)
    one = [*mode[:1], "--workers", "1"] if mode else []
    done = subprocess.run(_tactful(once_config, "replay", *one, "--json"), capture_output=True)
    assert done.returncode == 0, done.stderr
    whole = json.loads(done.stdout)
    expected = _after(once_db)
    assert whole["messages"] > 0 and expected["outbox"]

    proc = subprocess.Popen(_tactful(killed_config, "replay", *mode), stdout=subprocess.DEVNULL)
    # a few chunks committed: half way through the log (by person: a few batches of persons)
    progress, enough = ("part", 20) if mode else ("seq", 100)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            marker = _marker(killed_db)
            if marker is not None and json.loads(marker)[progress] > enough:
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL, "the replay ended before it was killed"
    # its workers end with it: none keeps the replay's lock (the replay run next would wait
    # for it for ever)
    assert _lock_freed(Path(f"{killed_db}.replay-lock"), 30), "a worker outlived the replay"
    marker = _marker(killed_db)
    assert marker is not None and json.loads(marker)["phase"] == "recompute"

    # run again as it is usually run: a replay stopped half way goes on the way it began
    again = subprocess.run(_tactful(killed_config, "replay", "--json"), capture_output=True)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["resumed"] is True
    assert _after(killed_db) == expected  # the same state, each correction in the outbox once
    for key in ("messages", "persons_changed", "segments", "destinations"):
        assert report[key] == whole[key], key
