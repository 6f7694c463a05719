"""Several processes on one PostgreSQL database, killed at random while work arrives.

Three ``serve`` processes and one ``worker`` share a database. Senders that retry whatever
was not acknowledged post signed Zendesk webhooks to any of the servers; meanwhile random
processes are killed with SIGKILL (right after an acknowledgement) and restarted. Then:
every acknowledged event is applied exactly once, each person's state equals a clean
single-process run, and every person's final membership reached the destinations (a Meta
audience and a signed webhook), with duplicates only as re-sends of the same delivery
(same idempotency key).
"""

from __future__ import annotations

import hashlib
import json
import queue
import random
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import httpx
import pytest

from tactful.store.sqlite import open_store
from tactful.testing.fakes.meta import FakeMeta
from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sim.server import run_in_thread
from tactful.zendesk.parse import parse_object
from tests.acceptance.test_crash_webhooks import (
    RULES,
    SECRET,
    Server,
    free_port,
    reference_states,
    send_until_acknowledged,
    states_by_user,
    story,
)

pytestmark = pytest.mark.postgresql
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class Worker(Server):
    """``tactful worker``: the clock and deliveries, no HTTP."""

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "tactful",
                    "--config",
                    str(self.config),
                    "worker",
                    "--tick-seconds",
                    "0.2",
                    "--deliver-seconds",
                    "0.1",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )


def wait_ready(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server on port {port} did not start")


def settled(url: str) -> bool:
    store = open_store(url)
    try:
        with store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            unrouted = conn.execute("SELECT COUNT(*) FROM outbox WHERE routed = 0").fetchone()[0]
            open_rows = conn.execute(
                "SELECT COUNT(*) FROM deliveries WHERE status != 'done'"
            ).fetchone()[0]
        return int(unrouted) == 0 and int(open_rows) == 0
    finally:
        store.close()


def test_servers_and_a_worker_on_one_database_survive_kill9(tmp_path: Path, pg_url: str) -> None:
    bodies = story()
    meta, hook = FakeMeta(), FakeWebhookReceiver(HOOK_SECRET)
    (meta_url, _), (hook_url, _) = run_in_thread(meta.app), run_in_thread(hook.app)
    audience = next(iter(meta.audiences))
    config = tmp_path / "tactful.toml"
    config.write_text(
        f'[store]\nurl = "{pg_url}"\n[zendesk]\nwebhook_secret = "{SECRET}"\n'
        + RULES
        + f"""
[[destinations]]
name = "meta"
type = "meta_audience"
segment = "suppress"
audience_id = "{audience}"
access_token = "{meta.access_token}"
base_url = "{FakeMeta.base_url(meta_url)}"

[[destinations]]
name = "hook"
type = "webhook"
url = "{hook_url}{hook.path}"
secret = "{HOOK_SECRET}"
"""
    )
    servers = [Server(config, free_port(), tmp_path / f"serve{i}.log") for i in range(3)]
    processes: list[Server] = [*servers, Worker(config, 0, tmp_path / "worker.log")]
    work: queue.Queue[bytes] = queue.Queue()
    for body in bodies:
        work.put(body)
    stop, acked = threading.Event(), threading.Event()
    rnd = random.Random(5)

    def sender(seed: int) -> None:
        mine = random.Random(seed)
        while not stop.is_set():
            try:
                body = work.get_nowait()
            except queue.Empty:
                return
            # any server may take it; a retry after a failure may go to another one
            server = mine.choice(servers)
            send_until_acknowledged(
                f"http://127.0.0.1:{server.port}/webhooks/zendesk", body, stop, acked
            )
            time.sleep(0.15)  # paced like live traffic, so the kills land mid-stream

    for p in processes:
        p.start()
    for server in servers:
        wait_ready(server.port)
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    kills: list[str] = []
    try:
        while any(t.is_alive() for t in threads) and len(kills) < 8:
            time.sleep(rnd.uniform(0.1, 0.5))
            acked.clear()
            if not acked.wait(5):
                continue
            victim = rnd.choice(processes)
            victim.kill9()
            kills.append(victim.log.stem)
            victim.start()
        deadline = time.monotonic() + 120
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in threads), "senders did not finish"
        deadline = time.monotonic() + 60
        while not settled(pg_url):
            assert time.monotonic() < deadline, "deliveries did not settle"
            time.sleep(0.3)
    finally:
        stop.set()
        for p in processes:
            p.stop()
    assert len(kills) >= 3, kills

    store = open_store(pg_url)
    try:
        # every acknowledged event applied exactly once, states as in a clean run
        assert states_by_user(store) == reference_states(bodies, tmp_path)
        expected_keys = {e.key for b in bodies for e in parse_object(json.loads(b)).events}
        with store.reader() as reader:
            assert reader.counts()["events"] == len(expected_keys)
            members = {pid for pid, _ in reader.segment_members("suppress", None, 10_000)}
            emails = reader.identifiers_of(sorted(members))
    finally:
        store.close()

    # the ad audience holds exactly the segment's members
    wanted = {
        hashlib.sha256(v.encode()).hexdigest()
        for ids in emails.values()
        for k, v in ids
        if k == "email"
    }
    at_vendor = {value for member in meta.snapshot()[audience] for _, value in member}
    assert wanted <= at_vendor and len(meta.snapshot()[audience]) == len(members)

    # the webhook saw each person's changes; the last one it saw is the final membership
    last: dict[str, str] = {}
    by_payload: dict[bytes, set[str]] = defaultdict(set)
    for d in hook.deliveries:
        by_payload[json.dumps(d.payload, sort_keys=True).encode()].add(d.webhook_id)
        data = d.payload.get("data", d.payload)
        if d.payload.get("type") == "segment_membership_changed":
            last[data["person_id"]] = data["change"]
    entered = {pid for pid, change in last.items() if change == "entered"}
    assert entered == members
    # duplicates are re-sends of one delivery (same webhook-id), never new ids
    assert all(len(ids) == 1 for ids in by_payload.values())
    assert hook.unverified == 0
