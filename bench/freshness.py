"""Freshness: from a webhook's acknowledgement to the destination's request, at a fixed rate.

Starts `tactful serve` (SQLite) with one `webhook` destination pointing at a receiver in
this process, then sends signed Zendesk trigger webhooks at ``--rate`` per second for
``--seconds``, each for a new customer. For every customer the receiver notes when the
`support_state_changed` delivery about them arrives. Freshness = arrival − acknowledgement.
A delivery that has not arrived 30 s after the last send counts as slower than any that did
(so it can only raise the p99, never hide). The server's peak RSS is its ``VmHWM``, read just
before it is stopped.

``--runs N`` repeats the whole run N times and prints every run (freshness is sensitive to
the machine's load: one run says little). ``--faults`` adds three more webhook destinations
beside the healthy one, on loopback: one that never answers, one that trickles a byte every
0.5 s and one that answers ``429 Retry-After: 1`` to everything; the healthy destination's
freshness should stay within 1.5x of a run without them.

    .venv/bin/python bench/freshness.py [--rate 200] [--seconds 15] [--runs 5] [--faults]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # tests.integration.fault_servers

from benchlib import (
    FRESHNESS_P99_TARGET_S,
    FRESHNESS_RATE,
    NO_TARGET,
    Row,
    free_port,
    mb,
    percentile,
    serve_argv,
    verdict,
    vm_hwm_kb,
    write_result,
)

from tactful.testing.sim.server import run_in_thread
from tactful.zendesk.signing import sign
from tests.integration.fault_servers import fault_servers

FAULTS = ("hang", "trickle", "throttle")

SECRET = "ZnJlc2huZXNzLWJlbmNo"
HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
EMAIL = re.compile(r"fresh(\d+)@bench\.example")


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


@dataclass
class FreshnessBench:
    rate: float  # asked, events/s
    sent: int
    acked: int
    ack_rate: float  # acknowledged per second of sending
    sent_for: float
    lags: list[float]  # seconds, sorted, delivered only
    peak_kb: int  # the server's VmHWM
    wait: float  # how long undelivered ones were waited for after the last send

    @property
    def missing(self) -> int:
        return self.acked - len(self.lags)

    def pct(self, q: float) -> float:
        """Percentile over every acknowledged event; an undelivered one counts as infinite."""
        return percentile(self.lags + [float("inf")] * self.missing, q)


def run(
    rate: float = 200.0, seconds: float = 15.0, wait: float = 30.0, faults: bool = False
) -> FreshnessBench:
    with fault_servers(*(FAULTS if faults else ()), every=0.5) as broken:
        extra = "".join(
            f'[[destinations]]\nname = "{mode}"\ntype = "webhook"\nurl = "{server.url}"\n'
            f'secret = "{HOOK_SECRET}"\n'
            for mode, server in broken.items()
        )
        return _run(rate, seconds, wait, extra)


def _run(rate: float, seconds: float, wait: float, extra: str) -> FreshnessBench:
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
            f'secret = "{HOOK_SECRET}"\n' + extra
        )
        port = free_port()
        proc = subprocess.Popen(
            serve_argv(config, port),
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

            n = int(rate * seconds)
            print(f"  sending {n:,} webhooks at {rate:g}/s …", file=sys.stderr)
            started = time.monotonic()
            with ThreadPoolExecutor(max_workers=32) as pool:
                for i in range(n):
                    due = started + i / rate
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    pool.submit(send, i)
            sent_for = time.monotonic() - started
            deadline = time.monotonic() + wait
            while len(receiver.arrived) < len(acked) and time.monotonic() < deadline:
                time.sleep(0.1)
            client.close()
            peak_kb = vm_hwm_kb(proc.pid)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            stop_receiver()
    lags = sorted(receiver.arrived[i] - acked[i] for i in acked if i in receiver.arrived)
    return FreshnessBench(rate, n, len(acked), len(acked) / sent_for, sent_for, lags, peak_kb, wait)


def _s(value: float) -> str:
    return "never" if value == float("inf") else f"{value * 1000:,.0f} ms"


def report(b: FreshnessBench) -> str:
    lines = [
        f"Freshness: {b.acked:,} of {b.sent:,} signed webhooks acknowledged at "
        f"{b.ack_rate:.0f}/s (asked {b.rate:g}/s) for {b.sent_for:.1f} s; webhook destination "
        "on loopback",
    ]
    if b.lags:
        lines.append(
            f"  ack → destination request: p50 {_s(b.pct(50))}, p99 {_s(b.pct(99))}, "
            f"min {_s(b.lags[0])}, max delivered {_s(b.lags[-1])}; not delivered within "
            f"{b.wait:.0f} s of the last send: {b.missing:,}; server peak RSS "
            f"{mb(b.peak_kb, kib=True)} MB"
        )
    else:
        lines.append("  nothing was delivered")
    return "\n".join(lines)


def summary_rows(b: FreshnessBench) -> list[Row]:
    p50, p99 = b.pct(50), b.pct(99)
    rate_ok = b.ack_rate >= 0.95 * b.rate
    notes = f"{b.acked:,} acked at {b.ack_rate:.0f}/s; undelivered {b.missing:,}"
    if not rate_ok:
        notes += f"; the asked {b.rate:g}/s was not reached"
    met = verdict(rate_ok and p99 < FRESHNESS_P99_TARGET_S)
    return [
        Row(
            "freshness",
            f"webhook → destination at {b.rate:g} events/s",
            f"p50 {_s(p50)}, p99 {_s(p99)}",
            f"p99 < {FRESHNESS_P99_TARGET_S:g} s at {FRESHNESS_RATE:g}/s",
            met if b.rate >= FRESHNESS_RATE else f"{NO_TARGET} (lower rate)",
            mb(b.peak_kb, kib=True),
            notes,
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--runs", type=int, default=1, help="repeat, printing every run")
    parser.add_argument(
        "--faults",
        action="store_true",
        help="a hanging, a trickling and a 429-storming destination beside the healthy one",
    )
    parser.add_argument(
        "--json-out", default=None, metavar="FILE", help="also write the report and summary rows"
    )
    args = parser.parse_args()
    texts: list[str] = []
    rows: list[Row] = []
    for n in range(args.runs):
        bench = run(args.rate, args.seconds, faults=args.faults)
        text = report(bench)
        if args.runs > 1:
            text = (
                f"run {n + 1} of {args.runs}"
                + (" (with faulty destinations)" if args.faults else "")
                + ":\n"
                + text
            )
        print(text, flush=True)
        texts.append(text)
        rows.extend(summary_rows(bench))
    write_result(args.json_out, "\n".join(texts), rows)


if __name__ == "__main__":
    main()
