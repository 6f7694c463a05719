"""Full reconcile of a large ad audience: normalize + hash + diff, beside a bare hashlib loop.

    .venv/bin/python bench/reconcile.py [--members 1000000] [--churn 0.01]

The desired audience (segment members) and the ledger (what Tactful added) differ by
``churn``; the reconcile normalizes and hashes every desired member's email and phone the
way Meta wants them and computes the adds and removes. The bare loop is
``hashlib.sha256(s.encode()).hexdigest()`` over the same already-normalized strings: the
floor any Python implementation pays. Prints seconds (median of 3) and the ratio.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import time

from tactful.destinations import hashing


def people(n: int, offset: int = 0) -> list[tuple[str, str, str]]:
    return [
        (
            f"p_{i:012x}",
            f"  Customer.{i}@Example.com ",
            f"+1 (415) {i % 900 + 100:03d}-{i % 10000:04d}",
        )
        for i in range(offset, offset + n)
    ]


def reconcile(desired: list[tuple[str, str, str]], ledger: set[str]) -> tuple[int, int, int]:
    rows = {}
    for pid, email, phone in desired:
        rows[pid] = (hashing.meta_email(email), hashing.meta_phone(phone))
    want = rows.keys()
    adds = [pid for pid in want if pid not in ledger]
    removes = [pid for pid in ledger if pid not in rows]
    return len(rows), len(adds), len(removes)


def bare(strings: list[str]) -> int:
    n = 0
    for s in strings:
        hashlib.sha256(s.encode()).hexdigest()
        n += 1
    return n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--churn", type=float, default=0.01)
    args = parser.parse_args()
    n = args.members
    changed = int(n * args.churn)
    desired = people(n)
    ledger = {pid for pid, _, _ in people(n - changed, offset=changed)} | {
        f"p_gone{i}" for i in range(changed)
    }
    strings = [e.strip().lower() for _, e, _ in desired] + [
        "1" + "".join(ch for ch in p if ch.isdigit())[1:] for _, _, p in desired
    ]
    full, bare_times = [], []
    for _ in range(3):
        t = time.perf_counter()
        result = reconcile(desired, ledger)
        full.append(time.perf_counter() - t)
        t = time.perf_counter()
        bare(strings)
        bare_times.append(time.perf_counter() - t)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    f, b = statistics.median(full), statistics.median(bare_times)
    print(
        f"\nreconcile of {n:,} members ({changed:,} to add, {changed:,} to remove); "
        f"email + phone hashed per member"
    )
    print(f"{'case':46} {'seconds':>8}")
    print(f"{'tactful reconcile (normalize, hash, diff)':46} {f:8.2f}")
    print(f"{'bare hashlib.sha256 over the same strings':46} {b:8.2f}")
    print(
        f"ratio {f / b:.2f}; members/s {n / f:,.0f}; adds {result[1]:,} removes {result[2]:,}; "
        f"peak RSS {peak_mb:,.0f} MB (includes the generated input)"
    )


if __name__ == "__main__":
    main()
