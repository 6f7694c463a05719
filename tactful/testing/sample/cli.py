"""``python -m tactful.testing.sample OUT_DIR --persons N``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from tactful.testing.sample.constants import DEFAULT_START, _iso
from tactful.testing.sample.exports import generate_exports


def _parse_start(text: str) -> datetime:
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise argparse.ArgumentTypeError(f"start needs a UTC offset or Z: {text!r}")
    return value.astimezone(UTC)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tactful.testing.sample",
        description="Write generated Zendesk export pages (users, tickets, ticket events, "
        "satisfaction ratings) for a skincare DTC brand.",
    )
    parser.add_argument("out_dir", type=Path, help="directory for the page files")
    parser.add_argument("--persons", type=int, required=True, help="number of customers")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    parser.add_argument(
        "--start",
        type=_parse_start,
        default=DEFAULT_START,
        help="start of the ticket window, ISO 8601 (default 2026-08-01T00:00:00Z)",
    )
    parser.add_argument("--days", type=int, default=90, help="length of the window in days")
    args = parser.parse_args(argv)

    began = time.perf_counter()
    files = generate_exports(
        args.out_dir, persons=args.persons, seed=args.seed, start=args.start, days=args.days
    )
    seconds = time.perf_counter() - began
    print(
        f"wrote {files.records} records in {len(files.paths)} files to {files.out_dir} "
        f"in {seconds:.1f}s: {files.users} users, {files.tickets} tickets "
        f"(+{files.ticket_updates} later versions), {files.ticket_events} ticket events, "
        f"{files.ratings} satisfaction ratings; window "
        f"{_iso(int(files.start.timestamp()))} .. {_iso(int(files.end.timestamp()))}",
        file=sys.stdout,
    )
    return 0
