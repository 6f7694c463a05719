"""What each destination was told about the person, change by change, in words: "Added to
Meta audience Suppress promos", "Customer.io profile updated", with when and what the
destination answered: the HTTP status of the last attempt, and where the platform reports on
its own what it received (Meta's ``num_received`` per upload, kept with the sync run), that
too: "Meta received 1 row at 10:05"."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from tactful.destinations import registry
from tactful.store.pages import SentChange
from tactful.store.records import from_us
from tactful.web.present import At, Phrase, text


def _words(name: str) -> str:
    return name.replace("_", " ")


def vendor(change: SentChange, types: Mapping[str, str]) -> str:
    """The platform's name (its type's ``SPEC``), else the destination's own name."""
    kind = types.get(change.destination, "")
    return registry.spec(kind).vendor if kind in registry.MODULES else change.destination


def what(change: SentChange, types: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """The change in words; ``types``: destination name → type, ``labels``: segment name →
    its label."""
    name = vendor(change, types)
    where = f"{name} ({change.destination})" if name != change.destination else name
    segment = labels.get(change.segment, _words(change.segment))
    if change.kind == "audience_add":
        return f"Added to {where} audience {segment}"
    if change.kind == "audience_remove":
        return f"Removed from {where} audience {segment}"
    if change.kind == "profile":
        return f"{where} profile updated"
    if change.kind == "erase":
        return f"Erased at {where}"
    about = f" ({segment})" if change.segment else ""
    return f"{where} event {_words(change.name)}{about}"


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def confirmation(change: SentChange, types: Mapping[str, str]) -> Phrase:
    """What the platform itself said it received, from the sync run of the last attempt
    ("Meta received 1 row at 10:05"; a run of several rows: "1,204 of 1,210 rows in that
    upload"); empty when the platform does not report it."""
    answer = change.answer
    if answer is None or change.status != "done" or answer.received is None:
        return ()
    name = vendor(change, types)
    if answer.sent <= 1:
        said = f"{name} received {_rows(answer.received)}"
    else:
        said = f"{name} received {answer.received:,} of {_rows(answer.sent)} in that upload"
    if answer.invalid:
        said += f", {answer.invalid:,} invalid"
    if change.attempt_us is None:
        return (said,)
    return (f"{said} at ", At(from_us(change.attempt_us), "exact"))


def outcome(change: SentChange, types: Mapping[str, str] | None = None) -> str:
    """What became of it: delivered (with the answer), waiting, skipped or failed."""
    if change.status == "done":
        accepted = f"{vendor(change, types or {})} accepted it"
        if change.http_status:
            return f"delivered, HTTP {change.http_status}"
        return f"delivered: {accepted}"
    if change.status == "pending":
        return "waiting to be sent" + (
            f" (last try: {change.last_error})" if change.last_error else ""
        )
    if change.status == "skipped":
        return f"skipped: {change.last_error}" if change.last_error else "skipped"
    return f"failed: {change.last_error}" if change.last_error else "failed"


def line(
    change: SentChange, types: Mapping[str, str], labels: Mapping[str, str], now: datetime
) -> str:
    """One change as plain text (UTC), as a private note on the ticket carries it."""
    said = confirmation(change, types)
    tail = f"; {text(said, now)}" if said else ""
    at = text((At(from_us(change.updated_us), "exact"),), now)
    return f"{what(change, types, labels)} {at} ({outcome(change, types)}{tail})"
