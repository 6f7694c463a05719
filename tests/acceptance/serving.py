"""`tactful serve` as a real process on loopback, for the acceptance tests: start it (and
wait until it answers), post a signed Zendesk webhook to it."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tactful.zendesk.signing import sign

SECRET = "c2VydmUtdGVzdC1zZWNyZXQ="  # the webhook secret of the configs these tests write


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(config: Path, port: int, log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``tactful --config CONFIG serve --port PORT ARGS…``, once ``/healthz`` answers."""
    out = log.open("wb")
    command = [sys.executable, "-m", "tactful", "--config", str(config), "serve"]
    proc = subprocess.Popen(
        [*command, "--port", str(port), *args], stdout=out, stderr=subprocess.STDOUT
    )
    out.close()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)


def post_ticket(base: str) -> None:
    """A signed webhook: ticket 5, open, high priority, requested by dana@example.com."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps(
        {
            "ticket": {
                "id": 5,
                "status": "Open",
                "priority": "High",
                "tags": "a b",
                "subject": "Help",
                "via": "Web Form",
                "created_at": stamp,
                "updated_at": stamp,
                "requester": {"id": 9, "email": "dana@example.com"},
            }
        }
    ).encode()
    headers = {
        "X-Zendesk-Webhook-Signature": sign(SECRET, stamp, body),
        "X-Zendesk-Webhook-Signature-Timestamp": stamp,
        "Content-Type": "application/json",
    }
    r = httpx.post(f"{base}/webhooks/zendesk", content=body, headers=headers, timeout=5)
    assert r.status_code == 200, r.text
