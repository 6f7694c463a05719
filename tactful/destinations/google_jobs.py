"""Pure helpers for Google Ads Customer Match offline user data jobs (no I/O).

Planning a batch into jobs, chunking operations within Google's request limits, and reading
Google's error shapes (``google.rpc.Status`` with ``GoogleAdsFailure`` details,
``partialFailureError``).

Documented rules this module follows (Google Ads API, ``OfflineUserDataJobService``):

- ``CONFLICTING_OPERATION``: "Mixing creation and removal of offline data in the same job is
  not allowed", so adds and removes go to separate jobs, run one after the other.
- ``TOO_MANY_USER_IDENTIFIERS``: at most 100,000 identifiers per ``addOperations`` request and
  20 per operation (``UserData``); Google recommends about 10,000 per request.
- ``UserIdentifier``: before SHA-256, emails are trimmed and lowercased (no Gmail dot rule for
  Customer Match); phone numbers are E.164 with the leading ``+`` (``hashing.google_*``). One
  ``UserData`` per item (split in 20s), holding each of its identifiers once.
- ``UserData.consent``: "The consent setting for the user. If set, will override the job
  level consent for this user" (https://developers.google.com/google-ads/api/reference/rpc/
  v26/UserData). Each create carries the person's own stated consent (``user_consent``);
  a person whose consent was never stated gets none, and jobs carry no job-level consent,
  so Google sees "unspecified" rather than a blanket ``GRANTED``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tactful.destinations import hashing
from tactful.destinations.base import Item, ItemKind

API_VERSION = "v26"
MAX_IDENTIFIERS_PER_REQUEST = 100_000
RECOMMENDED_IDENTIFIERS_PER_REQUEST = 10_000
MAX_IDENTIFIERS_PER_OPERATION = 20
NO_MATCH = "no usable email or phone to match on"  # skipped, not dead-lettered
JOB_KINDS: frozenset[ItemKind] = frozenset({"audience_add", "audience_remove"})


def user_consent(item: Item, purpose: str) -> dict[str, str] | None:
    """Google's ``Consent`` for one person: both signals follow the person's stated consent
    for ``purpose`` (``GRANTED`` / ``DENIED``); None when it was never stated."""
    stated = item.consent.get(purpose)
    if stated is None:
        return None
    status = "GRANTED" if stated else "DENIED"
    return {"adUserData": status, "adPersonalization": status}


def user_identifiers(item: Item) -> list[dict[str, str]]:
    """The item's ``UserIdentifier`` objects (one identifier each), deduplicated, in order."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    pairs = [("hashedEmail", hashing.google_email(e)) for e in item.identifiers.emails]
    pairs += [("hashedPhoneNumber", hashing.google_phone(p)) for p in item.identifiers.phones]
    for key, value in pairs:
        if value is not None and value not in seen:
            seen.add(value)
            out.append({key: value})
    return out


@dataclass
class Phase:
    """One job: operations of a single kind, in item order; ``owners[i]`` is the item index
    of operation ``i``."""

    kind: ItemKind
    items: list[int] = field(default_factory=list)
    operations: list[dict[str, Any]] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)

    def chunks(self, limit: int) -> list[tuple[int, int]]:
        """``[start, end)`` operation ranges with at most ``limit`` identifiers each."""
        out: list[tuple[int, int]] = []
        start, total = 0, 0
        for index, size in enumerate(self.sizes):
            if total + size > limit and index > start:
                out.append((start, index))
                start, total = index, 0
            total += size
        if start < len(self.sizes):
            out.append((start, len(self.sizes)))
        return out


def plan(items: Sequence[Item], purpose: str = "ads") -> tuple[list[Phase], dict[int, str]]:
    """Group items into as few single-kind jobs as per-person order allows.

    An item joins the first job of its kind that comes at or after the last job touching the
    same person or any of the same hashed identifiers; otherwise it starts a new job. Jobs run
    in list order, so an add followed by a remove of the same person stays in that order.
    Creates carry the person's consent for ``purpose`` (``user_consent``). Returns the jobs
    and ``{item index: error}`` for items that cannot be sent.
    """
    phases: list[Phase] = []
    last: dict[str, int] = {}
    problems: dict[int, str] = {}
    for index, item in enumerate(items):
        if item.kind not in JOB_KINDS:
            problems[index] = f"unsupported item kind {item.kind!r}"
            continue
        identifiers = user_identifiers(item)
        if not identifiers:
            problems[index] = NO_MATCH
            continue
        keys = [f"p:{item.person_id}"] + [next(iter(i.values())) for i in identifiers]
        floor = max((last.get(k, 0) for k in keys), default=0)
        target = next((j for j in range(floor, len(phases)) if phases[j].kind == item.kind), None)
        if target is None:
            phases.append(Phase(item.kind))
            target = len(phases) - 1
        phase = phases[target]
        phase.items.append(index)
        verb = "create" if item.kind == "audience_add" else "remove"
        consent = user_consent(item, purpose) if verb == "create" else None
        for start in range(0, len(identifiers), MAX_IDENTIFIERS_PER_OPERATION):
            part = identifiers[start : start + MAX_IDENTIFIERS_PER_OPERATION]
            data: dict[str, Any] = {"userIdentifiers": part}
            if consent is not None:
                data["consent"] = consent
            phase.operations.append({verb: data})
            phase.owners.append(index)
            phase.sizes.append(len(part))
        for key in keys:
            last[key] = target
    return phases, problems


# --- Google's error shapes ---------------------------------------------------------------------


def _failures(status: Any) -> list[dict[str, Any]]:
    """The ``GoogleAdsFailure.errors`` inside a ``google.rpc.Status``."""
    if not isinstance(status, dict):
        return []
    out: list[dict[str, Any]] = []
    for detail in status.get("details") or []:
        if isinstance(detail, dict):
            out.extend(e for e in detail.get("errors") or [] if isinstance(e, dict))
    return out


def _code(error: dict[str, Any]) -> str:
    codes = error.get("errorCode")
    if isinstance(codes, dict) and codes:
        return ", ".join(str(v) for v in codes.values())
    return "UNKNOWN"


def _seconds(duration: Any) -> float | None:
    """A protobuf JSON ``Duration`` (``"30s"``, ``"1.5s"``) as seconds."""
    if isinstance(duration, str) and duration.endswith("s"):
        try:
            return float(duration[:-1])
        except ValueError:
            return None
    return None


def describe_error(body: Any) -> tuple[str, float | None]:
    """A readable text for an RPC-level error body, and Google's ``retryDelay`` if any."""
    status = body.get("error") if isinstance(body, dict) else None
    if not isinstance(status, dict):
        return "", None
    parts = [str(status.get("status") or status.get("code") or "")]
    delay: float | None = None
    for error in _failures(status)[:3]:
        parts.append(f"{_code(error)}: {error.get('message', '')}".strip())
        details = error.get("details")
        if isinstance(details, dict) and delay is None:
            quota = details.get("quotaErrorDetails")
            delay = _seconds(quota.get("retryDelay")) if isinstance(quota, dict) else None
    if len(parts) == 1:
        parts.append(str(status.get("message", "")))
    text = "; ".join(p for p in parts if p)
    if "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE" in text:
        text += (
            " (Customer Match through the Google Ads API needs an allowlisted developer token;"
            " since 2026-04-01 new adopters must use the Data Manager API)"
        )
    return text, delay


def failed_operations(partial: Any) -> dict[int, str]:
    """``{operation index in the request: error}`` from a ``partialFailureError``."""
    out: dict[int, str] = {}
    for error in _failures(partial):
        location = error.get("location")
        elements = location.get("fieldPathElements") if isinstance(location, dict) else None
        for element in elements or []:
            if isinstance(element, dict) and element.get("fieldName") == "operations":
                index = element.get("index")
                if isinstance(index, int):
                    text = f"{_code(error)}: {error.get('message', '')}".strip()
                    out[index] = f"{out[index]}; {text}" if index in out else text
                break
    return out
