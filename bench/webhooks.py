"""Webhook acknowledgement benchmark: signed Zendesk webhooks/s and latency, beside a bare app.

Starts `tactful serve` (SQLite, fsync on every commit) and a bare hello-world Starlette app
on uvicorn, each in its own process on loopback, and drives both with the same async client
(httpx, fixed concurrency, distinct pre-signed trigger bodies so nothing is a duplicate).

    .venv/bin/python bench/webhooks.py [--requests 3000] [--concurrency 32]

Prints requests/s and p50/p99 acknowledgement latency for each, and their ratio. The client
runs on the same 2-core machine, so both figures include its cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from tactful.zendesk.signing import sign

SECRET = "YmVuY2gtc2VjcmV0"
SECONDS = 10  # wrk duration per case

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def hook(request):
    await request.body()
    return JSONResponse({"status": "ok"})

app = Starlette(routes=[Route("/webhooks/zendesk", hook, methods=["POST"])])
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bodies(n: int) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in range(n):
        body = json.dumps(
            {
                "ticket": {
                    "id": 100000 + i,
                    "status": "Open",
                    "priority": "Normal",
                    "tags": "shipping late",
                    "subject": "Where is my order",
                    "via": "Mail",
                    "created_at": stamp,
                    "updated_at": stamp,
                    "requester": {"id": 500000 + i % 5000, "email": f"c{i % 5000}@example.com"},
                }
            }
        ).encode()
        out.append(
            (
                body,
                {
                    "X-Zendesk-Webhook-Signature": sign(SECRET, stamp, body),
                    "X-Zendesk-Webhook-Signature-Timestamp": stamp,
                    "Content-Type": "application/json",
                },
            )
        )
    return out


async def drive(
    url: str, work: list[tuple[bytes, dict[str, str]]], concurrency: int
) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[tuple[bytes, dict[str, str]]] = asyncio.Queue()
    for item in work:
        queue.put_nowait(item)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                body, headers = queue.get_nowait()
                started = time.perf_counter()
                r = await client.post(url, content=body, headers=headers)
                latencies.append(time.perf_counter() - started)
                if r.status_code != 200:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return elapsed, latencies, errors


def lua_script(work: list[tuple[bytes, dict[str, str]]]) -> str:
    """A wrk script that sends each pre-signed request once, in order (then wraps)."""
    lines = ["local r = {}"]
    for i, (body, headers) in enumerate(work, 1):
        hdrs = ", ".join(f'["{k}"] = "{v}"' for k, v in {"Host": "127.0.0.1", **headers}.items())
        lines.append(
            f'r[{i}] = wrk.format("POST", "/webhooks/zendesk", {{{hdrs}}}, [==[{body.decode()}]==])'
        )
    lines.append("local i = 0")
    lines.append("request = function() i = i + 1; if i > #r then i = 1 end; return r[i] end")
    return "\n".join(lines) + "\n"


def run_wrk(
    base: str, work: list[tuple[bytes, dict[str, str]]], concurrency: int, seconds: int, tmp: str
) -> tuple[float, float, float, int]:
    script = Path(tmp, "bench.lua")
    script.write_text(lua_script(work))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{concurrency}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            base + "/webhooks/zendesk",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rate, p50, p99, int(bad.group(1)) if bad else 0


def _ms(text: str) -> float:
    value = float(re.match(r"[\d.]+", text).group(0))  # type: ignore[union-attr]
    unit = text[len(re.match(r"[\d.]+", text).group(0)) :]  # type: ignore[union-attr]
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wait_up(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(base + "/healthz", timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit(f"server at {base} did not start")


def run_case(
    name: str, cmd: list[str], port: int, n: int, concurrency: int, cwd: str
) -> dict[str, float | str]:
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base)
        warm = bodies(200)
        asyncio.run(drive(base + "/webhooks/zendesk", warm, concurrency))
        if shutil.which("wrk"):
            rate, p50, p99, errors = run_wrk(base, bodies(n), concurrency, SECONDS, cwd)
            return {
                "case": name,
                "requests/s": rate,
                "p50 ms": p50,
                "p99 ms": p99,
                "errors": errors,
            }
        work = bodies(n)
        elapsed, lat, errors = asyncio.run(drive(base + "/webhooks/zendesk", work, concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    lat.sort()
    return {
        "case": name + " [httpx client]",
        "requests/s": n / elapsed,
        "p50 ms": statistics.median(lat) * 1000,
        "p99 ms": lat[int(len(lat) * 0.99) - 1] * 1000,
        "errors": errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=12000,
        help="distinct pre-signed bodies (wrk wraps around after them)",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        config = Path(tmp, "tactful.toml")
        rows = []
        port = free_port()
        rows.append(
            run_case(
                "bare ASGI (Starlette)",
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bare_app:app",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                port,
                args.requests,
                args.concurrency,
                tmp,
            )
        )
        port = free_port()
        starter = Path(__file__).resolve().parent.parent / "tactful" / "templates" / "tactful.toml"
        text = starter.read_text().replace(
            'url = "sqlite:///tactful.db"', f'url = "sqlite:///{tmp}/bench.db"'
        )
        text = text.replace("[zendesk]", f'[zendesk]\nwebhook_secret = "{SECRET}"', 1)
        config.write_text(text)
        rows.append(
            run_case(
                "tactful serve (SQLite, fsync per commit)",
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
                port,
                args.requests,
                args.concurrency,
                tmp,
            )
        )
    client = f"wrk -t1, {SECONDS}s" if shutil.which("wrk") else "httpx (install wrk!)"
    print(
        f"\nwebhooks: distinct signed trigger bodies, concurrency {args.concurrency}, "
        f"client {client}, {os.cpu_count()} cores (client on the same machine)"
    )
    print(f"{'case':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in rows:
        print(
            f"{r['case']:44} {r['requests/s']:9.0f} {r['p50 ms']:8.1f} {r['p99 ms']:8.1f} "
            f"{r['errors']:7}"
        )
    ratio = float(rows[1]["requests/s"]) / float(rows[0]["requests/s"])
    print(f"tactful / bare throughput ratio: {ratio:.2f}")


if __name__ == "__main__":
    main()
