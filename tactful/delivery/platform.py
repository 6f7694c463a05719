"""Reading what an ad platform reports about its audience (``audience_report``): the
audience's size (Meta's approximate bounds) and the match rate of recent uploads (Google Data
Manager's request diagnostics), at most every ``READ_EVERY`` per destination.

Each reading goes with the destination's sync run of that round (so the runs show the size
and match rate over time, kept for ``[delivery] runs_keep``), and the latest one is kept in
the store's ``meta`` (``platform:<destination>``) for ``/metrics`` and the dashboard.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict
from datetime import timedelta
from typing import Any

import orjson

from tactful.core.platform import PlatformReport
from tactful.delivery.runs import RunRecorder
from tactful.destinations.base import PlatformUnreadable
from tactful.store.base import Store

log = logging.getLogger(__name__)

READ_EVERY = timedelta(minutes=10)


_PERCENT = re.compile(r"(\d+(?:\.\d+)?)")


def match_percent(text: str) -> float | None:
    """A platform's match rate as a number: ``63%`` → 63, a range ``61-70%`` → its middle
    65.5, ``less than 20%`` → 10 (the middle of 0–20); None when there is none."""
    numbers = [float(n) for n in _PERCENT.findall(text)][:2]
    if not numbers:
        return None
    if "less than" in text:
        return numbers[0] / 2
    return sum(numbers) / len(numbers)


def meta_key(destination: str) -> str:
    return f"platform:{destination}"


def latest(store: Store, destination: str) -> tuple[int, PlatformReport] | None:
    """The last reading: when (µs) and what (None before the first)."""
    with store.reader() as reader:
        text = reader.get_meta(meta_key(destination))
    if not text:
        return None
    raw = orjson.loads(text)
    report = raw.get("report") or {}
    return int(raw["at_us"]), PlatformReport(
        report.get("received"),
        report.get("invalid"),
        str(report.get("status", "")),
        tuple(report.get("diagnostics", ())),
        report.get("audience_lower"),
        report.get("audience_upper"),
        str(report.get("match_rate", "")),
    )


def read(store: Store, dest: Any, run: RunRecorder, now_us: int, every: timedelta) -> None:
    """Read ``dest``'s platform report if it offers one and the last reading is older than
    ``every``; record it with ``run`` and keep it as the latest. A platform that cannot be
    read is logged and tried again after ``every`` (delivery does not depend on it)."""
    reader = getattr(dest, "audience_report", None)
    if reader is None:
        return
    last = latest(store, run.destination)
    if last is not None and now_us - last[0] < every // timedelta(microseconds=1):
        return
    try:
        report = reader()
    except PlatformUnreadable as exc:
        log.warning("%s: cannot read the platform's report: %s", run.destination, exc)
        report = None
    except Exception:  # a bug in an optional reading never counts against delivery
        log.exception("%s: reading the platform's report failed", run.destination)
        report = None
    keep = report or (last[1] if last is not None else PlatformReport())
    if report is not None:
        run.open()
        run.answered(report)
    kept = {"at_us": now_us, "report": asdict(keep)}
    with store.transaction() as tx:
        tx.set_meta(meta_key(run.destination), orjson.dumps(kept).decode())
