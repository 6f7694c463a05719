"""Webhook acknowledgement benchmark: signed Zendesk webhooks/s and latency, beside a bare app.

Starts `tactful serve` (SQLite, fsync on every commit) and a bare hello-world Starlette app
on uvicorn, each in its own process on loopback, and drives both with the same client: wrk
(one thread, fixed concurrency; httpx if wrk is missing), with distinct pre-signed trigger
bodies so nothing is a duplicate. Each case is measured in ``--rounds`` rounds of
``--seconds`` (each round with bodies of its own); the medians over the rounds are reported.

    .venv/bin/python bench/webhooks.py [--rounds 3] [--seconds 5] [--concurrency 16]

Prints requests/s and p50/p99 acknowledgement latency for each, their ratio, and each
server's peak RSS (``VmHWM`` of the server process, read just before it is stopped). The
client runs on the same 2-core machine, so both figures include its cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    WEBHOOK_P99_TARGET_MS,
    WEBHOOK_RATE_TARGET,
    Row,
    free_port,
    mb,
    median,
    serve_argv,
    table,
    verdict,
    vm_hwm_kb,
    write_result,
)

from tactful.zendesk.signing import sign

SECRET = "YmVuY2gtc2VjcmV0"
SECONDS = 5  # wrk duration per round
ROUNDS = 3

BARE_APP = """
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

async def hook(request):
    await request.body()
    return JSONResponse({"status": "ok"})

app = Starlette(routes=[Route("/webhooks/zendesk", hook, methods=["POST"])])
"""


def bodies(n: int, offset: int = 0) -> list[tuple[bytes, dict[str, str]]]:
    out = []
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    for i in range(offset, offset + n):
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


@dataclass
class Round:
    rate: float  # requests/s
    p50: float  # ms
    p99: float  # ms
    errors: int  # non-2xx responses
    requests: int  # sent in the round
    bodies: int  # distinct bodies available (more requests than this: some were duplicates)


def run_wrk(
    base: str, work: list[tuple[bytes, dict[str, str]]], concurrency: int, seconds: int, tmp: str
) -> Round:
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
    sent = re.search(r"(\d+) requests in", out)
    return Round(
        rate,
        p50,
        p99,
        int(bad.group(1)) if bad else 0,
        int(sent.group(1)) if sent else 0,
        len(work),
    )


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


@dataclass
class Case:
    name: str
    rounds: list[Round]
    peak_kb: int  # the server process's VmHWM
    client: str

    @property
    def rate(self) -> float:
        return median([r.rate for r in self.rounds])

    @property
    def p50(self) -> float:
        return median([r.p50 for r in self.rounds])

    @property
    def p99(self) -> float:
        return median([r.p99 for r in self.rounds])

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.rounds)

    @property
    def duplicates(self) -> int:
        return sum(max(0, r.requests - r.bodies) for r in self.rounds)


def run_case(
    name: str,
    cmd: list[str],
    port: int,
    n: int,
    concurrency: int,
    cwd: str,
    rounds: int = ROUNDS,
    seconds: int = SECONDS,
) -> Case:
    """Start the server, warm it up, measure ``rounds`` rounds, read its VmHWM, stop it."""
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results: list[Round] = []
    try:
        base = f"http://127.0.0.1:{port}"
        wait_up(base)
        warm = bodies(200, offset=10_000_000)
        asyncio.run(drive(base + "/webhooks/zendesk", warm, concurrency))
        for k in range(rounds):
            work = bodies(n, offset=k * n)
            if shutil.which("wrk"):
                results.append(run_wrk(base, work, concurrency, seconds, cwd))
                client = f"wrk -t1 -c{concurrency}, {seconds} s per round"
            else:
                elapsed, lat, errors = asyncio.run(
                    drive(base + "/webhooks/zendesk", work, concurrency)
                )
                lat.sort()
                results.append(
                    Round(
                        n / elapsed,
                        statistics.median(lat) * 1000,
                        lat[max(0, int(len(lat) * 0.99) - 1)] * 1000,
                        errors,
                        n,
                        n,
                    )
                )
                client = f"httpx (install wrk!), c={concurrency}, {n} requests per round"
            print(
                f"  {name}: round {k + 1}/{rounds}: {results[-1].rate:,.0f}/s, "
                f"p50 {results[-1].p50:.1f} ms, p99 {results[-1].p99:.1f} ms",
                file=sys.stderr,
            )
        peak_kb = vm_hwm_kb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    return Case(name, results, peak_kb, client)


@dataclass
class WebhookBench:
    bare: Case
    tactful: Case
    concurrency: int


def run(
    requests: int = 10_000,
    concurrency: int = 16,
    rounds: int = ROUNDS,
    seconds: int = SECONDS,
) -> WebhookBench:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        config = Path(tmp, "tactful.toml")
        port = free_port()
        bare = run_case(
            "bare ASGI (Starlette on uvicorn)",
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
            requests,
            concurrency,
            tmp,
            rounds,
            seconds,
        )
        port = free_port()
        from tactful.config import starter_config_text

        text = starter_config_text().replace(
            'url = "sqlite:///tactful.db"', f'url = "sqlite:///{tmp}/bench.db"'
        )
        text = text.replace("[zendesk]", f'[zendesk]\nwebhook_secret = "{SECRET}"', 1)
        config.write_text(text)
        tactful = run_case(
            "tactful serve (SQLite, fsync per commit)",
            serve_argv(config, port),
            port,
            requests,
            concurrency,
            tmp,
            rounds,
            seconds,
        )
    return WebhookBench(bare, tactful, concurrency)


def report(bench: WebhookBench) -> str:
    rows = []
    for c in (bench.bare, bench.tactful):
        rows.append(
            [
                c.name,
                f"{c.rate:,.0f}",
                f"{c.p50:.1f}",
                f"{c.p99:.1f}",
                " / ".join(f"{r.rate:,.0f}" for r in c.rounds),
                str(c.errors),
                "—" if c is bench.bare else str(c.duplicates),
                mb(c.peak_kb, kib=True),
            ]
        )
    ratio = bench.tactful.rate / bench.bare.rate if bench.bare.rate else float("nan")
    return "\n".join(
        [
            table(
                [
                    "case",
                    "req/s",
                    "p50 ms",
                    "p99 ms",
                    "rounds req/s",
                    "errors",
                    "duplicates",
                    "server peak RSS MB",
                ],
                rows,
                title=f"Signed Zendesk webhooks: distinct trigger bodies, client "
                f"{bench.tactful.client}, {os.cpu_count()} cores (client on the same "
                f"machine); median over {len(bench.tactful.rounds)} rounds",
            ),
            f"  tactful / bare throughput ratio: {ratio:.2f}; duplicates = requests past the "
            "distinct bodies of a round (wrk wraps; tactful acknowledges a duplicate without work; "
            "the bare app does no work for any body)",
        ]
    )


def summary_rows(bench: WebhookBench) -> list[Row]:
    t, b = bench.tactful, bench.bare
    ok = t.rate >= WEBHOOK_RATE_TARGET and t.p99 < WEBHOOK_P99_TARGET_MS and t.errors == 0
    notes = f"median of {len(t.rounds)} rounds, c={bench.concurrency}; errors {t.errors}"
    if t.duplicates:
        notes += f"; {t.duplicates:,} duplicate requests"
    return [
        Row(
            "webhooks (acks)",
            "tactful serve, SQLite, fsync per commit",
            f"{t.rate:,.0f}/s, p50 {t.p50:.1f} ms, p99 {t.p99:.1f} ms",
            f"≥ {WEBHOOK_RATE_TARGET:,.0f}/s and p99 < {WEBHOOK_P99_TARGET_MS:.0f} ms",
            verdict(ok),
            mb(t.peak_kb, kib=True),
            notes,
        ),
        Row(
            "webhooks (acks)",
            "bare ASGI app (Starlette on uvicorn)",
            f"{b.rate:,.0f}/s, p50 {b.p50:.1f} ms, p99 {b.p99:.1f} ms",
            peak_rss=mb(b.peak_kb, kib=True),
            notes=f"tactful ÷ bare = {t.rate / b.rate:.2f}" if b.rate else "",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=10_000,
        help="distinct pre-signed bodies per round (wrk wraps around after them)",
    )
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=int, default=SECONDS, help="wrk duration per round")
    parser.add_argument(
        "--json-out", default=None, metavar="FILE", help="also write the report and summary rows"
    )
    args = parser.parse_args()
    bench = run(args.requests, args.concurrency, args.rounds, args.seconds)
    text = report(bench)
    print(text)
    write_result(args.json_out, text, summary_rows(bench))


if __name__ == "__main__":
    main()
