"""``make demo``'s entry point, live: ``python -m tactful demo --port P --duration 25``.

Within 20 seconds the server answers ``/healthz``, counts applied events in ``/metrics``,
some segment has members (``/api/segments`` with the token the demo prints) and the fake
Meta audience has received requests (the demo's status lines); then it stops by itself with
exit code 0.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

START_WITHIN = 20.0
DURATION = 25


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_live_demo_serves_counts_and_stops_by_itself(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TACTFUL_CONFIG"}
    env["PYTHONUNBUFFERED"] = "1"
    demo_dir = tmp_path / "demo"
    argv = [sys.executable, "-m", "tactful", "demo", "--port", str(port)]
    argv += ["--dir", str(demo_dir), "--duration", str(DURATION)]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    assert proc.stdout is not None
    stdout = proc.stdout
    reader = threading.Thread(target=lambda: lines.extend(stdout), daemon=True)
    reader.start()
    base = f"http://127.0.0.1:{port}"
    seen: dict[str, object] = {}
    try:
        deadline = time.monotonic() + START_WITHIN
        with httpx.Client(base_url=base, timeout=2.0) as client:
            while len(seen) < 5:
                assert time.monotonic() < deadline, (
                    f"not everything within {START_WITHIN}s: {seen}\n" + "".join(lines)
                )
                assert proc.poll() is None, "the demo exited early:\n" + "".join(lines)
                time.sleep(0.25)
                log = "".join(lines)
                token = re.search(r"^\s*api token: (\S+)$", log, re.MULTILINE)
                requests = [
                    int(n) for n in re.findall(r"Meta audience \d+ members \((\d+) requests\)", log)
                ]
                if requests and max(requests) > 0:
                    seen["meta_requests"] = max(requests)
                try:
                    if client.get("/healthz").status_code == 200:
                        seen["healthz"] = True
                    applied = metric(client.get("/metrics").text, "tactful_events_applied_total")
                    if applied > 0:
                        seen["applied"] = applied
                    if token is None:
                        continue
                    seen["token"] = token.group(1)
                    auth = {"Authorization": f"Bearer {token.group(1)}"}
                    body = client.get("/api/segments", headers=auth).json()
                    filled = {s["name"]: s["members"] for s in body["segments"] if s["members"]}
                    if filled:
                        seen["segments"] = filled
                except httpx.TransportError:
                    continue
            assert client.get("/api/segments").status_code == 401  # the token is required
        assert f"dashboard:  {base}/" in "".join(lines)
        assert proc.wait(timeout=DURATION + 15) == 0, "".join(lines)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
        stdout.close()
    log = "".join(lines)
    assert "stopped." in log, log
    assert "Traceback" not in log, log
    config = (demo_dir / "tactful.toml").read_text(encoding="utf-8")
    assert str(seen["token"]) in config
