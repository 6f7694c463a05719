"""`tactful serve` as a real process on loopback: webhooks in over HTTP, clean SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tactful.zendesk.signing import sign

SECRET = "c2VydmUtdGVzdC1zZWNyZXQ="


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_accepts_signed_webhooks_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "tactful.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n'
        f'[zendesk]\nwebhook_secret = "{SECRET}"\n'
        '[[segments]]\nname = "suppress"\nwhen = "has_open_ticket"\n'
    )
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
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
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
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
        person = httpx.get(f"{base}/api/people/dana@example.com", timeout=5).json()
        assert person["segments"]["suppress"]["member"] is True
        assert person["state"]["priority"] == "high"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        finally:
            if proc.poll() is None:
                proc.kill()
            log.close()
    assert code == 0, (tmp_path / "serve.log").read_text()
