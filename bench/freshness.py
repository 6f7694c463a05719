"""Freshness: from a webhook's acknowledgement to the destination's request, at a fixed rate.

Starts `tactful serve` (SQLite) with one `webhook` destination pointing at a receiver in
this process, then sends signed Zendesk trigger webhooks at ``--rate`` per second for
``--seconds``, each for a new customer. For every customer the receiver notes when the
`support_state_changed` delivery about them arrives. Freshness = arrival − acknowledgement.

    .venv/bin/python bench/freshness.py [--rate 200] [--seconds 15]
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tactful.sim.server import run_in_thread
from tactful.zendesk.signing import sign

SECRET = "ZnJlc2huZXNzLWJlbmNo"
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EMAIL = re.compile(r"fresh(\d+)@bench\.example")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Receiver:
    def __init__(self) -> None:
        self.arrived: dict[int, float] = {}
        self.lock = threading.Lock()
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        now = time.monotonic()
        doc = json.loads(body)
        if doc.get("type") == "support_state_changed":
            match = EMAIL.search(body.decode())
            if match:
                with self.lock:
                    self.arrived.setdefault(int(match.group(1)), now)
        return Response(status_code=204)


def body_for(i: int) -> tuple[bytes, dict[str, str]]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps(
        {
            "ticket": {
                "id": 700000 + i,
                "status": "Open",
                "priority": "High",
                "tags": "refund",
                "subject": "Refund please",
                "via": "Mail",
                "created_at": stamp,
                "updated_at": stamp,
                "requester": {"id": 900000 + i, "email": f"fresh{i}@bench.example"},
            }
        }
    ).encode()
    return body, {
        "X-Zendesk-Webhook-Signature": sign(SECRET, stamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "Content-Type": "application/json",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    args = parser.parse_args()
    receiver = Receiver()
    hook_url, stop_receiver = run_in_thread(receiver.app)
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp, "tactful.toml")
        config.write_text(
            f'[store]\nurl = "sqlite:///{tmp}/fresh.db"\n'
            f'[zendesk]\nwebhook_secret = "{SECRET}"\n'
            '[[states]]\nname = "open_ticket"\nwhen = "has_open_ticket"\n'
            '[[segments]]\nname = "suppress"\nwhen = "has_open_ticket"\n'
            f'[[destinations]]\nname = "hook"\ntype = "webhook"\nurl = "{hook_url}/hook"\n'
            f'secret = "{HOOK_SECRET}"\n'
        )
        port = free_port()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tactful",
                "--config",
                str(config),
                "serve",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    httpx.get(base + "/healthz", timeout=1)
                    break
                except httpx.HTTPError:
                    time.sleep(0.1)
            acked: dict[int, float] = {}
            client = httpx.Client(timeout=10, limits=httpx.Limits(max_connections=32))

            def send(i: int) -> None:
                body, headers = body_for(i)
                r = client.post(base + "/webhooks/zendesk", content=body, headers=headers)
                if r.status_code == 200:
                    acked[i] = time.monotonic()

            n = int(args.rate * args.seconds)
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=32) as pool:
                for i in range(n):
                    due = started + i / args.rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(send, i)
            sent_for = time.monotonic() - started
            deadline = time.monotonic() + 30
            while len(receiver.arrived) < len(acked) and time.monotonic() < deadline:
                time.sleep(0.1)
            client.close()
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            stop_receiver()
    lags = sorted(receiver.arrived[i] - acked[i] for i in acked if i in receiver.arrived)
    missing = len(acked) - len(lags)
    print(
        f"\nfreshness: {len(acked)} signed webhooks acknowledged at {len(acked) / sent_for:.0f}/s"
        f" for {sent_for:.1f}s; webhook destination on loopback"
    )
    if lags:
        p99 = lags[max(0, int(len(lags) * 0.99) - 1)]
        print(
            f"ack → destination request: p50 {statistics.median(lags) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, min {lags[0] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms; "
            f"not delivered within 30 s: {missing}"
        )


if __name__ == "__main__":
    main()
