"""`tactful serve` as a real process on loopback: webhooks in over HTTP, clean SIGTERM."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx

from tests.acceptance.serving import SECRET, free_port, post_ticket, start


def test_serve_accepts_signed_webhooks_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    config = tmp_path / "tactful.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n'
        f'[zendesk]\nwebhook_secret = "{SECRET}"\n'
        '[[segments]]\nname = "suppress"\nwhen = "has_open_ticket"\n'
    )
    port, log = free_port(), tmp_path / "serve.log"
    proc = start(config, port, log, "--log-level", "warning")
    base = f"http://127.0.0.1:{port}"
    try:
        post_ticket(base)
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
    assert code == 0, log.read_text()
