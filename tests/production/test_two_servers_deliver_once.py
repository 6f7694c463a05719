"""Issue 21 §1 on PostgreSQL: two ``serve`` processes deliver side by side, each destination
in lanes of their own, beside a destination that never answers: no delivery row is sent
twice by the two, and each person's changes arrive in order."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sim.server import run_in_thread
from tests.acceptance.test_crash_webhooks import (
    RULES,
    SECRET,
    Server,
    free_port,
    send_until_acknowledged,
    story,
)
from tests.integration.fault_servers import fault_servers
from tests.production.test_multiprocess import HOOK_SECRET, wait_ready

pytestmark = pytest.mark.postgresql


def test_two_servers_deliver_each_row_once_in_per_person_order(tmp_path: Path, pg_url: str) -> None:
    bodies = story()
    hook = FakeWebhookReceiver(HOOK_SECRET)
    hook_url, stop_hook = run_in_thread(hook.app)
    with fault_servers("hang") as broken:
        config = tmp_path / "tactful.toml"
        config.write_text(
            f'[store]\nurl = "{pg_url}"\n[zendesk]\nwebhook_secret = "{SECRET}"\n'
            + RULES
            + f"""
[delivery]
request_deadline = 3

[[destinations]]
name = "hook"
type = "webhook"
url = "{hook_url}{hook.path}"
secret = "{HOOK_SECRET}"

[[destinations]]
name = "dead"
type = "webhook"
url = "{broken["hang"].url}"
secret = "{HOOK_SECRET}"
"""
        )
        servers = [Server(config, free_port(), tmp_path / f"serve{i}.log") for i in range(2)]
        for server in servers:
            server.start()
        try:
            for server in servers:
                wait_ready(server.port)
            stop, acked = threading.Event(), threading.Event()
            for i, body in enumerate(bodies):  # in order, alternating between the two
                url = f"http://127.0.0.1:{servers[i % 2].port}/webhooks/zendesk"
                send_until_acknowledged(url, body, stop, acked)
            deadline = time.monotonic() + 90
            while True:
                if hook.deliveries and settled_for(pg_url, "hook"):
                    break
                assert time.monotonic() < deadline, "the healthy destination did not settle"
                time.sleep(0.3)
        finally:
            for server in servers:
                server.stop()  # SIGTERM, with a request to "dead" hanging: within seconds
            stop_hook()

    assert broken["hang"].requests >= 1  # the dead destination was tried meanwhile
    ids = Counter(d.webhook_id for d in hook.deliveries)
    assert ids and max(ids.values()) == 1, "a delivery was sent twice"
    assert hook.unverified == 0
    # per person, the changes arrive in the order they happened
    times: dict[str, list[str]] = defaultdict(list)
    for d in hook.deliveries:
        times[d.payload["data"]["person_id"]].append(d.payload["timestamp"])
    assert len(times) > 5
    for person, seen in times.items():
        assert seen == sorted(seen), (person, json.dumps(seen))


def settled_for(url: str, destination: str) -> bool:
    """Everything routed and the destination's rows all done (the other may be failing)."""
    from typing import Any

    from tactful.store.sqlite import open_store

    store = open_store(url)
    try:
        with store.reader() as reader:
            conn: Any = reader.conn  # type: ignore[attr-defined]
            unrouted = conn.execute("SELECT COUNT(*) FROM outbox WHERE routed = 0").fetchone()[0]
            open_rows = conn.execute(
                "SELECT COUNT(*) FROM deliveries WHERE destination = "
                f"{store.dialect.p} AND status != 'done'",
                (destination,),
            ).fetchone()[0]
        return int(unrouted) == 0 and int(open_rows) == 0
    finally:
        store.close()
