"""What each destination was told about the person, change by change, in words: "Added to
Meta audience Suppress promos", "Customer.io profile updated", with when and what the
destination answered (from the delivery records and their last attempt)."""

from __future__ import annotations

from collections.abc import Mapping

from tactful.web.sidebar.records import SentChange

VENDORS = {
    "meta_audience": "Meta",
    "google_customer_match": "Google",
    "tiktok_audience": "TikTok",
    "customerio": "Customer.io",
    "sailthru": "Sailthru",
    "klaviyo": "Klaviyo",
    "webhook": "Webhook",
    "warehouse": "Warehouse",
    "segment": "Segment",
    "amplitude": "Amplitude",
    "mixpanel": "Mixpanel",
}


def _words(name: str) -> str:
    return name.replace("_", " ")


def what(change: SentChange, types: Mapping[str, str], labels: Mapping[str, str]) -> str:
    """The change in words; ``types``: destination name → type, ``labels``: segment name →
    its label."""
    vendor = VENDORS.get(types.get(change.destination, ""), change.destination)
    where = f"{vendor} ({change.destination})" if vendor != change.destination else vendor
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


def outcome(change: SentChange) -> str:
    """What became of it: delivered (with the answer), waiting, skipped or failed."""
    if change.status == "done":
        return f"delivered, HTTP {change.http_status}" if change.http_status else "delivered"
    if change.status == "pending":
        return "waiting to be sent" + (
            f" (last try: {change.last_error})" if change.last_error else ""
        )
    if change.status == "skipped":
        return f"skipped: {change.last_error}" if change.last_error else "skipped"
    return f"failed: {change.last_error}" if change.last_error else "failed"
