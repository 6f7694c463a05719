"""kill -9 the server while signed webhooks keep arriving from senders that retry whatever was
not acknowledged; restart; check nothing acknowledged was lost and nothing applied twice."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, Incoming, rules_from_settings
from tactful.store.sqlite import SQLiteStore
from tactful.testing.sim import WebhookSender, ZendeskSimulator
from tactful.zendesk.parse import parse_object
from tactful.zendesk.signing import sign

SECRET = "Y3Jhc2gtdGVzdC1zZWNyZXQ="
RULES = """
[[reasons]]
name = "refund"
tags = ["refund"]
risk = true

[[states]]
name = "open_ticket"
when = "has_open_ticket"

[[segments]]
name = "suppress"
when = "has_open_ticket and last_activity_at within 14d"
cooldown = "24h"
"""


def story() -> list[bytes]:
    """A simulated Zendesk day: tickets created, updated, solved, reopened, merged, rated."""
    sim = ZendeskSimulator()
    rnd = random.Random(3)
    users = [sim.create_user(f"User {i}", f"user{i}@example.com") for i in range(25)]
    tickets: list[int] = []
    for step in range(120):
        sim.advance(timedelta(minutes=7))
        roll = rnd.random()
        if roll < 0.35 or not tickets:
            tags = ["refund"] if rnd.random() < 0.2 else ["shipping"]
            tickets.append(
                sim.create_ticket(
                    rnd.choice(users),
                    f"Order {step}",
                    tags=tags,
                    priority=rnd.choice(["low", "normal", "high"]),
                )
            )
        elif roll < 0.6:
            sim.solve(rnd.choice(tickets))
        elif roll < 0.7:
            with contextlib.suppress(Exception):  # closed tickets refuse, like Zendesk
                sim.reopen(rnd.choice(tickets))
        else:
            with contextlib.suppress(Exception):
                sim.update_ticket(rnd.choice(tickets), priority=rnd.choice(["high", "urgent"]))
    sender = WebhookSender("http://unused", SECRET, sim=sim, mode="both")
    sender.collect()
    bodies = [d.body for d in sender.pending]
    sender.close()
    return bodies


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.config, self.port, self.log = config, port, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tactful",
                    "--config",
                    str(self.config),
                    "serve",
                    "--port",
                    str(self.port),
                    "--log-level",
                    "warning",
                    "--tick-seconds",
                    "0.2",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=20)


def send_until_acknowledged(
    url: str, body: bytes, stop: threading.Event, acked: threading.Event
) -> None:
    """A sender like Zendesk's, but patient: retry until a 200 arrives."""
    while not stop.is_set():
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            "X-Zendesk-Webhook-Signature": sign(SECRET, stamp, body),
            "X-Zendesk-Webhook-Signature-Timestamp": stamp,
            "Content-Type": "application/json",
        }
        try:
            r = httpx.post(url, content=body, headers=headers, timeout=5)
        except httpx.HTTPError:
            time.sleep(0.05)
            continue
        if r.status_code == 200:
            acked.set()
            return
        assert r.status_code >= 500 or r.status_code == 429, (r.status_code, r.text)
        time.sleep(0.05)


def reference_states(bodies: list[bytes], tmp: Path) -> dict[str, dict[str, Any]]:
    settings = settings_from_toml(RULES, environ={})
    engine = Engine(rules_from_settings(settings), SQLiteStore(f"sqlite:///{tmp}/ref.db"))
    engine.apply_many([Incoming(parse_object(json.loads(b)).events, b) for b in bodies])
    return states_by_user(engine.store)


def states_by_user(store: SQLiteStore) -> dict[str, dict[str, Any]]:
    out = {}
    with store.reader() as reader:
        ids = reader.person_ids(None, 10_000)
        rows = reader.load_persons(ids)
        idents = reader.identifiers_of(ids)
    for pid, row in rows.items():
        users = sorted(v for k, v in idents[pid] if k == "zendesk_user_id")
        state = {k: v for k, v in row.state.items() if k != "support_state"}
        out[",".join(users)] = state
    return out


def test_kill9_while_webhooks_arrive_loses_nothing_acknowledged(tmp_path: Path) -> None:
    bodies = story()
    assert len(bodies) > 150
    config = tmp_path / "tactful.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n'
        f'[zendesk]\nwebhook_secret = "{SECRET}"\n' + RULES
    )
    server = Server(config, free_port(), tmp_path / "serve.log")
    url = f"http://127.0.0.1:{server.port}/webhooks/zendesk"
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    stop = threading.Event()
    acked = threading.Event()

    def worker() -> None:
        while not stop.is_set():
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            send_until_acknowledged(url, body, stop, acked)

    server.start()
    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    rnd = random.Random(11)
    kills = 0
    try:
        # A loaded machine may take longer than the loop's 5 s to start the server at all.
        assert acked.wait(60), "the server never acknowledged a webhook"
        while any(t.is_alive() for t in threads) and kills < 6:
            time.sleep(rnd.uniform(0.2, 0.8))
            # Kill right after an acknowledgement: the moment a premature ack would be lost.
            acked.clear()
            if not acked.wait(5):
                break
            server.kill9()
            kills += 1
            server.start()
        deadline = time.monotonic() + 120
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "senders did not finish"
    finally:
        stop.set()
        server.stop()
    assert kills >= 1, "the server was never killed: the story was too short"

    crashed = states_by_user(SQLiteStore(f"sqlite:///{tmp_path}/t.db"))
    assert crashed == reference_states(bodies, tmp_path)
    with SQLiteStore(f"sqlite:///{tmp_path}/t.db").reader() as reader:
        counts = reader.counts()
    expected_keys = {e.key for b in bodies for e in parse_object(json.loads(b)).events}
    assert counts["events"] == len(expected_keys)
