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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import (
    STORE_LABELS,
    WEBHOOK_P99_TARGET_MS,
    WEBHOOK_RATE_TARGET,
    Row,
    Unavailable,
    config_text,
    free_port,
    mb,
    median,
    pg_cluster,
    pg_database,
    serve_argv,
    sqlite_url,
    table,
    verdict,
    vm_hwm_kb,
    write_result,
    write_unavailable,
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
    base: str,
    work: list[tuple[bytes, dict[str, str]]],
    concurrency: int,
    seconds: int,
    tmp: str,
    script_name: str = "bench.lua",
) -> Round:
    script = Path(tmp, script_name)
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


def one_round(
    bases: list[str], n: int, offset: int, concurrency: int, seconds: int, cwd: str
) -> tuple[Round, str]:
    """One round against every server at once, each with its own distinct bodies and an
    equal share of the concurrency; rates and errors add up, p50 is the median of the
    servers' p50s and p99 the worst of their p99s."""
    share = max(1, concurrency // len(bases))
    works = [bodies(n, offset=offset + j * n) for j in range(len(bases))]
    if shutil.which("wrk"):
        with ThreadPoolExecutor(len(bases)) as pool:
            rounds = list(
                pool.map(
                    lambda j: run_wrk(bases[j], works[j], share, seconds, cwd, f"bench{j}.lua"),
                    range(len(bases)),
                )
            )
        client = f"wrk -t1 -c{share}" + (
            f" per server, {len(bases)} at once" if len(bases) > 1 else ""
        )
        client += f", {seconds} s per round"
    else:

        async def all_at_once() -> list[tuple[float, list[float], int]]:
            return await asyncio.gather(
                *(
                    drive(b + "/webhooks/zendesk", w, share)
                    for b, w in zip(bases, works, strict=True)
                )
            )

        rounds = []
        for elapsed, lat, errors in asyncio.run(all_at_once()):
            lat.sort()
            rounds.append(
                Round(
                    n / elapsed,
                    statistics.median(lat) * 1000,
                    lat[max(0, int(len(lat) * 0.99) - 1)] * 1000,
                    errors,
                    n,
                    n,
                )
            )
        client = f"httpx (install wrk!), c={share} per server, {n} requests per round"
    if len(rounds) == 1:
        return rounds[0], client
    return (
        Round(
            sum(r.rate for r in rounds),
            median([r.p50 for r in rounds]),
            max(r.p99 for r in rounds),
            sum(r.errors for r in rounds),
            sum(r.requests for r in rounds),
            sum(r.bodies for r in rounds),
        ),
        client,
    )


def run_case(
    name: str,
    servers: list[tuple[list[str], int]],
    n: int,
    concurrency: int,
    cwd: str,
    rounds: int = ROUNDS,
    seconds: int = SECONDS,
) -> Case:
    """Start the servers (one after the other: the first creates the store), warm them up,
    measure ``rounds`` rounds, read each one's VmHWM (the highest is kept), stop them."""
    procs: list[subprocess.Popen[bytes]] = []
    results: list[Round] = []
    client = ""
    try:
        bases = []
        for cmd, port in servers:
            procs.append(
                subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
            bases.append(f"http://127.0.0.1:{port}")
            wait_up(bases[-1])
        for j, base in enumerate(bases):
            warm = bodies(200, offset=10_000_000 + j * 1000)
            asyncio.run(drive(base + "/webhooks/zendesk", warm, concurrency))
        for k in range(rounds):
            result, client = one_round(bases, n, k * n * len(bases), concurrency, seconds, cwd)
            results.append(result)
            print(
                f"  {name}: round {k + 1}/{rounds}: {result.rate:,.0f}/s, "
                f"p50 {result.p50:.1f} ms, p99 {result.p99:.1f} ms",
                file=sys.stderr,
            )
        peak_kb = max(vm_hwm_kb(proc.pid) for proc in procs)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)
    return Case(name, results, peak_kb, client)


@dataclass
class WebhookBench:
    bare: Case | None  # None: not run (--no-bare)
    tactful: Case
    concurrency: int
    store: str  # "sqlite" or "postgresql"
    processes: int


def labels(store: str, processes: int) -> tuple[str, str]:
    """The case's name in the section's table, and in the summary's ``case`` column."""
    label = STORE_LABELS[store]
    servers = "tactful serve" if processes == 1 else f"{processes} tactful serve processes"
    return f"{servers} ({label}, fsync per commit)", f"{servers}, {label}, fsync per commit"


def run(
    requests: int = 10_000,
    concurrency: int = 16,
    rounds: int = ROUNDS,
    seconds: int = SECONDS,
    *,
    store: str = "sqlite",
    processes: int = 1,
    bare: bool = True,
) -> WebhookBench:
    cluster: Any = None
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare_app.py").write_text(BARE_APP)
        bare_case = None
        if bare:
            port = free_port()
            bare_case = run_case(
                "bare ASGI (Starlette on uvicorn)",
                [
                    (
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
                    )
                ],
                requests,
                concurrency,
                tmp,
                rounds,
                seconds,
            )
        url = sqlite_url(Path(tmp, "bench.db"))
        if store == "postgresql":
            # a server as production runs it: every commit flushed (fsync on)
            cluster = pg_cluster(durable=True)
        try:
            if cluster is not None:
                url = pg_database(cluster, "bench")
            text = config_text(url)
            text = text.replace("[zendesk]", f'[zendesk]\nwebhook_secret = "{SECRET}"', 1)
            config = Path(tmp, "tactful.toml")
            config.write_text(text)
            servers = []
            for _ in range(processes):
                port = free_port()
                servers.append((serve_argv(config, port), port))
            tactful = run_case(
                labels(store, processes)[0],
                servers,
                requests,
                concurrency,
                tmp,
                rounds,
                seconds,
            )
        finally:
            if cluster is not None:
                cluster.stop()
    return WebhookBench(bare_case, tactful, concurrency, store, processes)


def report(bench: WebhookBench) -> str:
    rows = []
    cases = [c for c in (bench.bare, bench.tactful) if c is not None]
    for c in cases:
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
    lines = [
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
        )
    ]
    if bench.bare is not None and bench.bare.rate:
        lines.append(
            f"  tactful / bare throughput ratio: {bench.tactful.rate / bench.bare.rate:.2f}"
        )
    lines.append(
        "  duplicates = requests past the distinct bodies of a round (wrk wraps; tactful "
        "acknowledges a duplicate without work; the bare app does no work for any body)"
    )
    if bench.processes > 1:
        lines.append(
            f"  {bench.processes} processes on one store, each driven by its own client with "
            "its own bodies (the requesters overlap); req/s is their sum, p99 the worst "
            "process's, peak RSS the largest process's"
        )
    return "\n".join(lines)


def summary_rows(bench: WebhookBench) -> list[Row]:
    t, b = bench.tactful, bench.bare
    ok = t.rate >= WEBHOOK_RATE_TARGET and t.p99 < WEBHOOK_P99_TARGET_MS and t.errors == 0
    notes = f"median of {len(t.rounds)} rounds, c={bench.concurrency}; errors {t.errors}"
    if t.duplicates:
        notes += f"; {t.duplicates:,} duplicate requests"
    case = labels(bench.store, bench.processes)[1]
    rows = [
        Row(
            "webhooks (acks)",
            case,
            f"{t.rate:,.0f}/s, p50 {t.p50:.1f} ms, p99 {t.p99:.1f} ms",
            f"≥ {WEBHOOK_RATE_TARGET:,.0f}/s and p99 < {WEBHOOK_P99_TARGET_MS:.0f} ms",
            verdict(ok),
            mb(t.peak_kb, kib=True),
            notes,
        )
    ]
    if b is not None:
        rows.append(
            Row(
                "webhooks (acks)",
                "bare ASGI app (Starlette on uvicorn)",
                f"{b.rate:,.0f}/s, p50 {b.p50:.1f} ms, p99 {b.p99:.1f} ms",
                peak_rss=mb(b.peak_kb, kib=True),
                notes=f"tactful ÷ bare = {t.rate / b.rate:.2f}" if b.rate else "",
            )
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument(
        "--requests",
        type=int,
        default=10_000,
        help="distinct pre-signed bodies per round and server (wrk wraps around after them)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="shared by the servers")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=int, default=SECONDS, help="wrk duration per round")
    parser.add_argument("--store", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="tactful serve processes on the one store, each on its own port (PostgreSQL)",
    )
    parser.add_argument("--no-bare", action="store_true", help="skip the bare ASGI app")
    parser.add_argument(
        "--json-out", default=None, metavar="FILE", help="also write the report and summary rows"
    )
    args = parser.parse_args()
    if args.processes > 1 and args.store == "sqlite":
        parser.error("several processes need --store postgresql (SQLite serves one process)")
    try:
        bench = run(
            args.requests,
            args.concurrency,
            args.rounds,
            args.seconds,
            store=args.store,
            processes=args.processes,
            bare=not args.no_bare,
        )
    except Unavailable as exc:
        case = labels(args.store, args.processes)[1]
        write_unavailable(args.json_out, "webhooks (acks)", case, str(exc))
        return
    text = report(bench)
    print(text)
    write_result(args.json_out, text, summary_rows(bench))


if __name__ == "__main__":
    main()
