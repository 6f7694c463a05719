"""Issue 21 §1: `tactful serve` with a destination hanging on a dead socket: a healthy
destination beside it still delivers, SIGTERM stops the process within seconds, and an
open circuit is visible in `tactful deliveries --json` and in /metrics."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
import pytest

from tactful.cli.main import main
from tests.acceptance.serving import SECRET, free_port, post_ticket, start
from tests.integration.fault_servers import fault_servers

HOOK_SECRET = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="


def write_config(tmp_path: Path, urls: dict[str, str], extra: str = "") -> Path:
    config = tmp_path / "tactful.toml"
    text = (
        f'[store]\nurl = "sqlite:///{tmp_path}/t.db"\n'
        f'[zendesk]\nwebhook_secret = "{SECRET}"\n'
        '[[segments]]\nname = "suppress"\nwhen = "has_open_ticket"\n' + extra
    )
    for name, url in urls.items():
        text += f'[[destinations]]\nname = "{name}"\ntype = "webhook"\nurl = "{url}"\n'
        text += f'secret = "{HOOK_SECRET}"\n'
    config.write_text(text)
    return config


def test_serve_stops_on_sigterm_while_a_delivery_hangs(tmp_path: Path) -> None:
    with fault_servers("ok", "hang") as servers:
        # a long deadline: the hanging request is still in flight when SIGTERM comes
        config = write_config(
            tmp_path,
            {"hang": servers["hang"].url, "ok": servers["ok"].url},
            "[delivery]\nrequest_deadline = 120\n",
        )
        port, log = free_port(), tmp_path / "serve.log"
        proc = start(config, port, log)
        try:
            post_ticket(f"http://127.0.0.1:{port}")
            assert servers["hang"].received.wait(10), "the hanging destination got nothing"
            assert servers["ok"].received.wait(5), "the healthy destination was held back"
        finally:
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            try:
                code = proc.wait(timeout=15)
            finally:
                if proc.poll() is None:
                    proc.kill()
        stopped_in = time.monotonic() - started
    assert code == 0, log.read_text()
    assert stopped_in < 6, f"took {stopped_in:.1f} s to stop"


def test_an_open_circuit_shows_in_deliveries_and_metrics(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fault_servers("reset") as servers:
        config = write_config(
            tmp_path,
            {"broken": servers["reset"].url},
            '[delivery]\ncircuit_failures = 1\ncircuit_cooldown = "1h"\nretry_base = "1m"\n',
        )
        port, log = free_port(), tmp_path / "serve.log"
        proc = start(config, port, log)
        try:
            post_ticket(f"http://127.0.0.1:{port}")
            deadline = time.monotonic() + 15
            while True:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
                line = 'tactful_destination_circuit_state{destination="broken",state="open"} 1.0'
                if line in text:
                    break
                assert time.monotonic() < deadline, text[-2000:]
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            finally:
                if proc.poll() is None:
                    proc.kill()
    assert main(["--config", str(config), "deliveries", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    circuit = out["circuits"]["broken"]
    assert circuit["state"] == "open" and circuit["failures"] == 1
    assert "reset by peer" in circuit["last_error"] and circuit["until"]
