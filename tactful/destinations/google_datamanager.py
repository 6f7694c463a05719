"""Google Customer Match through the Data Manager API (``google_data_manager``): the default
Google destination (the Google Ads API path, ``google_customer_match``, only serves developer
tokens allowlisted for Customer Match before 2026-04-01).

Per Google's reference (https://developers.google.com/data-manager/api/reference/rest/v1/
audienceMembers/ingest, ``…/remove``, ``…/requestStatus/retrieve``, ``…/devguides/limits``):

- ``POST https://datamanager.googleapis.com/v1/audienceMembers:ingest`` (``audience_add``) and
  ``…:remove`` (``audience_remove``) with ``{"destinations": [{"operatingAccount":
  {"accountType", "accountId"}, "loginAccount"?, "productDestinationId"}], "audienceMembers":
  [{"userData": {"userIdentifiers": [{"emailAddress"|"phoneNumber": <sha256 hex>}]},
  "consent"?}], "encoding": "HEX"}``. OAuth bearer token only (scope
  ``https://www.googleapis.com/auth/datamanager``): no developer token.
- Limits: 10,000 audience members a request, 10 user identifiers a member (a person with more
  is sent as several members), 10 destinations a request; 300 requests a minute per project
  (``RESOURCE_EXHAUSTED``, HTTP 429, with ``google.rpc.RetryInfo`` ``retryDelay``).
- Consent per member: ``adUserData`` / ``adPersonalization`` are ``CONSENT_GRANTED`` or
  ``CONSENT_DENIED`` from the person's stated consent for the destination's purpose; a person
  whose consent was never stated gets none (``CONSENT_STATUS_UNSPECIFIED`` at Google). No
  request-level consent. Removes carry no consent (the remove request has none).
- Normalization: ``hashing.datamanager_email`` (lower-case, no whitespace, Gmail dots and
  ``+tag`` dropped) and E.164 phones, SHA-256 hex.
- A request is applied whole or not at all. ``INVALID_ARGUMENT`` with ``google.rpc.BadRequest``
  field violations naming ``audience_members[i]`` rejects those items, and the others are sent
  again at once without them (at most ``MAX_PASSES`` requests); other errors go through
  ``classify_status`` for the request's items. A 401 refreshes the token and retries once.
- Each accepted request's ``requestId`` is kept (``request_ids``); ``diagnostics(request_id)``
  reads ``requestStatus:retrieve``: status per destination, record and identifier counts and
  the upload's match-rate range. Google processes uploads asynchronously, so
  ``audience_report`` (called by the worker every few minutes) reads the requests still
  unreported and reports the finished ones (their status, records, error reasons and the
  latest match-rate range) into the sync run; those still ``PROCESSING`` wait for the next
  reading. The ids live in the process: a restart forgets the unreported ones.

Items of one kind are sent in runs, in item order, so a person's add and remove never swap;
after a transient failure (429, 5xx, timeout) the rest of the batch is held (``retry``
without a request).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import httpx
from pydantic import Field

from tactful.config.models import DestinationSettings
from tactful.core.platform import PlatformReport
from tactful.destinations import hashing
from tactful.destinations.base import (
    Capabilities,
    Item,
    ItemKind,
    Outcome,
    PlatformUnreadable,
    Purpose,
    classify_status,
    parse_retry_after,
)
from tactful.destinations.google_oauth import CallFailed, GoogleOAuthConfig, OAuthKeys, signed_in
from tactful.destinations.spec import AUDIENCE, DestinationSpec, Text

API_URL = "https://datamanager.googleapis.com"
API_VERSION = "v1"
MAX_MEMBERS_PER_REQUEST = 10_000
MAX_IDENTIFIERS_PER_MEMBER = 10
KINDS: frozenset[ItemKind] = frozenset({"audience_add", "audience_remove"})
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MAX_PASSES = 3  # requests per chunk when Google names invalid members
MAX_DIAGNOSED = 20  # requestStatus:retrieve calls per audience_report
_RATE = re.compile(r"^(\d+)_TO_(\d+)$")


def match_rate_text(value: str | None) -> str:
    """Google's ``MatchRateRange`` for people: ``MATCH_RATE_RANGE_61_TO_70`` → ``61-70%``,
    ``MATCH_RATE_RANGE_LESS_THAN_20`` → ``less than 20%``, ``…_NOT_ELIGIBLE`` →
    ``not eligible``; "" when Google gave none or does not know."""
    rest = (value or "").removeprefix("MATCH_RATE_RANGE_")
    if rest in ("", "UNKNOWN", "MATCH_RATE_RANGE_UNKNOWN"):
        return ""
    numbers = _RATE.match(rest)
    if numbers:
        return f"{numbers[1]}-{numbers[2]}%"
    words = rest.lower().replace("_", " ")
    return f"{words}%" if words[-1:].isdigit() else words


_MEMBER_INDEX = re.compile(r"audience_?[mM]embers\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class Diagnostics:
    """What Google reports about one request, per ``requestStatus:retrieve``."""

    request_id: str
    status: str  # SUCCESS, PROCESSING, PARTIAL_SUCCESS, FAILED, REQUEST_STATUS_UNKNOWN
    record_count: int | None = None
    identifier_count: int | None = None
    match_rate_range: str | None = None  # e.g. MATCH_RATE_RANGE_61_TO_70
    errors: dict[str, int] = field(default_factory=dict)  # reason -> count


def member_consent(item: Item, purpose: str) -> dict[str, str] | None:
    """``Consent`` of one member from the person's stated consent; None when never stated."""
    stated = item.consent.get(purpose)
    if stated is None:
        return None
    status = "CONSENT_GRANTED" if stated else "CONSENT_DENIED"
    return {"adUserData": status, "adPersonalization": status}


def user_identifiers(item: Item) -> list[dict[str, str]]:
    """The item's ``UserIdentifier`` objects, deduplicated, in order."""
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    pairs = [("emailAddress", hashing.datamanager_email(e)) for e in item.identifiers.emails]
    pairs += [("phoneNumber", hashing.google_phone(p)) for p in item.identifiers.phones]
    for key, value in pairs:
        if value is not None and value not in seen:
            seen.add(value)
            out.append({key: value})
    return out


def violated_members(body: Any) -> dict[int, str]:
    """``{audience member index: description}`` from a ``google.rpc.BadRequest`` detail."""
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    out: dict[int, str] = {}
    for detail in details if isinstance(details, list) else []:
        violations = detail.get("fieldViolations") if isinstance(detail, dict) else None
        for violation in violations if isinstance(violations, list) else []:
            if not isinstance(violation, dict):
                continue
            match = _MEMBER_INDEX.search(str(violation.get("field", "")))
            if match:
                text = str(violation.get("description") or violation.get("reason") or "invalid")
                out.setdefault(int(match.group(1)), text)
    return out


def describe_error(body: Any) -> tuple[str, float | None]:
    """A readable text for a ``google.rpc.Status`` body, and ``RetryInfo.retryDelay``."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", None
    parts = [str(error.get("status") or ""), str(error.get("message") or "")]
    delay: float | None = None
    for detail in error.get("details") or []:
        if not isinstance(detail, dict):
            continue
        if detail.get("reason"):
            parts.append(str(detail["reason"]))
        retry = detail.get("retryDelay")
        if isinstance(retry, str) and retry.endswith("s"):
            try:
                delay = float(retry[:-1])
            except ValueError:
                delay = None
    return ": ".join(p for p in parts if p), delay


class GoogleDataManager:
    type = "google_data_manager"

    def __init__(
        self,
        *,
        name: str,
        operating_account_id: str,
        audience_id: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        account_type: str = "GOOGLE_ADS",
        login_account_id: str | None = None,
        login_account_type: str | None = None,
        base_url: str | None = None,
        purpose: Purpose = "ads",
        segments: Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        max_batch: int = MAX_MEMBERS_PER_REQUEST,
        members_per_request: int = MAX_MEMBERS_PER_REQUEST,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= members_per_request <= MAX_MEMBERS_PER_REQUEST:
            raise ValueError(f"members_per_request must be 1..{MAX_MEMBERS_PER_REQUEST}")
        for kind in (account_type, login_account_type or account_type):
            if kind not in GOOGLE_ACCOUNT_TYPES:
                names = ", ".join(GOOGLE_ACCOUNT_TYPES)
                raise ValueError(f"account type must be one of {names}, got {kind!r}")
        self.name = name
        self.purpose: Purpose = purpose
        self.segments = segments
        self.capabilities = Capabilities(max_batch=max_batch, kinds=KINDS)
        destination: dict[str, Any] = {
            "operatingAccount": {
                "accountType": account_type,
                "accountId": _digits(operating_account_id),
            },
            "productDestinationId": audience_id.strip(),
        }
        if login_account_id and _digits(login_account_id):
            destination["loginAccount"] = {
                "accountType": login_account_type or account_type,
                "accountId": _digits(login_account_id),
            }
        self.destination = destination
        self.request_ids: list[str] = []
        self._held: Outcome | None = None  # a transient failure earlier in this send
        self._per_request = members_per_request
        self._url = f"{(base_url or API_URL).rstrip('/')}/{API_VERSION}"
        keys = OAuthKeys(client_id, client_secret, refresh_token)
        self._client, self._token = signed_in(base_url, transport, TIMEOUT, keys, clock)

    # --- send -----------------------------------------------------------------------------

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        self._held = None
        members: list[tuple[int, dict[str, Any]]] = []  # (item index, AudienceMember)
        run_kind: ItemKind | None = None
        for index, item in enumerate(items):
            if item.kind not in KINDS:
                outcomes[index] = Outcome("reject", f"unsupported item kind {item.kind!r}")
                continue
            identifiers = user_identifiers(item)
            if not identifiers:
                outcomes[index] = Outcome("reject", "no usable email or phone to match on")
                continue
            if run_kind is not None and item.kind != run_kind:
                self._send_run(run_kind, members, outcomes)
                members = []
            run_kind = item.kind
            consent = member_consent(item, self.purpose) if item.kind == "audience_add" else None
            for start in range(0, len(identifiers), MAX_IDENTIFIERS_PER_MEMBER):
                member: dict[str, Any] = {
                    "userData": {
                        "userIdentifiers": identifiers[start : start + MAX_IDENTIFIERS_PER_MEMBER]
                    }
                }
                if consent is not None:
                    member["consent"] = consent
                members.append((index, member))
        if run_kind is not None and members:
            self._send_run(run_kind, members, outcomes)
        return [o or Outcome.ok() for o in outcomes]

    def _send_run(
        self,
        kind: ItemKind,
        members: list[tuple[int, dict[str, Any]]],
        outcomes: list[Outcome | None],
    ) -> None:
        method = "ingest" if kind == "audience_add" else "remove"
        start = 0
        while start < len(members):
            end = start + self._per_request
            while 0 < end < len(members) and members[end][0] == members[end - 1][0]:
                end -= 1  # keep one person's members in one request
            if end <= start:
                end = start + self._per_request
            chunk = members[start:end]
            if self._held is not None:  # an earlier request failed transiently: wait
                held = Outcome("retry", f"held: {self._held.error}", self._held.retry_after)
                for index, _ in chunk:
                    outcomes[index] = outcomes[index] or held
            else:
                self._send_chunk(method, chunk, outcomes)
                self._held = next(
                    (o for i, _ in chunk if (o := outcomes[i]) and o.kind == "retry"), None
                )
            start = end

    def _send_chunk(
        self, method: str, chunk: list[tuple[int, dict[str, Any]]], outcomes: list[Outcome | None]
    ) -> None:
        for _ in range(MAX_PASSES):  # again without the members Google named as invalid
            live = [(i, m) for i, m in chunk if outcomes[i] is None]
            if not live:
                return
            body = {
                "destinations": [self.destination],
                "audienceMembers": [m for _, m in live],
                "encoding": "HEX",
            }
            try:
                answer = self._call("POST", f"audienceMembers:{method}", body)
            except CallFailed as failed:
                for index, _ in live:
                    outcomes[index] = outcomes[index] or failed.outcome
                return
            if "requestId" in answer:
                self.request_ids.append(str(answer["requestId"]))
                for index, _ in live:
                    outcomes[index] = Outcome.ok()
                return
            for position, text in answer["violations"].items():
                if 0 <= position < len(live):
                    outcomes[live[position][0]] = Outcome("reject", text, None, 400)
        later = Outcome("retry", f"audienceMembers:{method} refused {MAX_PASSES} times")
        for index, _ in chunk:
            outcomes[index] = outcomes[index] or later

    # --- diagnostics ------------------------------------------------------------------------

    def diagnostics(self, request_id: str) -> Diagnostics:
        """Google's status of one request (raises ``CallFailed`` when it cannot be read)."""
        answer = self._call("GET", "requestStatus:retrieve", None, {"requestId": request_id})
        rows = answer.get("requestStatusPerDestination") or [{}]
        row = rows[0] if isinstance(rows[0], dict) else {}
        status = (
            row.get("audienceMembersIngestionStatus")
            or row.get("audienceMembersRemovalStatus")
            or {}
        )
        user_data = status.get("userDataIngestionStatus") or status.get("userDataRemovalStatus")
        user_data = user_data if isinstance(user_data, dict) else {}
        errors = (row.get("errorInfo") or {}).get("errorCounts") or []
        return Diagnostics(
            request_id=request_id,
            status=str(row.get("requestStatus", "REQUEST_STATUS_UNKNOWN")),
            record_count=_int(user_data.get("recordCount")),
            identifier_count=_int(user_data.get("userIdentifierCount")),
            match_rate_range=user_data.get("uploadMatchRateRange"),
            errors={
                str(e.get("reason")): _int(e.get("recordCount")) or 0
                for e in errors
                if isinstance(e, dict)
            },
        )

    def audience_report(self) -> PlatformReport | None:
        """What Google says about the uploads not yet reported (None: nothing new)."""
        pending, self.request_ids = self.request_ids, []
        report: PlatformReport | None = None
        for position, request_id in enumerate(pending[:MAX_DIAGNOSED]):
            try:
                found = self.diagnostics(request_id)
            except CallFailed as exc:
                self.request_ids = pending[position:] + self.request_ids
                if report is None:
                    raise PlatformUnreadable(exc.outcome.error) from exc
                return report
            if found.status in ("PROCESSING", "REQUEST_STATUS_UNKNOWN"):
                self.request_ids.append(request_id)
                continue
            reasons = tuple(f"{reason} ({n} records)" for reason, n in sorted(found.errors.items()))
            invalid = sum(found.errors.values()) if found.errors else None
            rate = match_rate_text(found.match_rate_range)
            this = PlatformReport(
                found.record_count, invalid, found.status, reasons, match_rate=rate
            )
            report = this if report is None else report.merge(this)
        self.request_ids.extend(pending[MAX_DIAGNOSED:])
        return report

    # --- HTTP -----------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        params: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The JSON answer; for a request with invalid members, ``{"violations": {i: text}}``;
        otherwise ``CallFailed`` with the classified outcome."""
        url = f"{self._url}/{path}"
        for attempt in (1, 2):
            headers = {"authorization": f"Bearer {self._token.get()}"}
            try:
                response = self._client.request(
                    method, url, json=body, params=params, headers=headers
                )
            except httpx.TransportError as e:
                raise CallFailed(Outcome("retry", f"{path}: {type(e).__name__}: {e}")) from e
            if response.status_code == 401 and attempt == 1:
                self._token.forget()  # expired or revoked early: refresh once
                continue
            try:
                data = response.json()
            except ValueError:
                data = None
            if response.is_success and isinstance(data, dict):
                return data
            text, delay = describe_error(data)
            error = f"{path}: HTTP {response.status_code}" + (f" {text}" if text else "")
            if response.is_success:
                raise CallFailed(Outcome("retry", f"{error}: answer is not a JSON object"))
            violations = violated_members(data) if response.status_code == 400 else {}
            if violations:
                return {"violations": violations}
            header = parse_retry_after(response.headers.get("retry-after"))
            wait = header if header is not None else delay
            raise CallFailed(classify_status(response.status_code, wait, error))
        raise AssertionError("unreachable")

    def close(self) -> None:
        self._client.close()


def _digits(account_id: str) -> str:
    return account_id.replace("-", "").strip()


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


AccountType = Literal[
    "GOOGLE_ADS", "DISPLAY_VIDEO_ADVERTISER", "DISPLAY_VIDEO_PARTNER", "DATA_PARTNER"
]

GOOGLE_ACCOUNT_TYPES: tuple[str, ...] = get_args(AccountType)


class DataManagerConfig(GoogleOAuthConfig):
    operating_account_id: Text = Field(description="the account that owns the audience")
    audience_id: Text = Field(description="the audience (user list) id")
    account_type: AccountType = Field(
        default="GOOGLE_ADS", description="the operating account's product"
    )
    login_account_id: Text | None = Field(
        default=None, description="the manager account id, when a manager account signs in"
    )
    login_account_type: AccountType | None = Field(
        default=None, description="the login account's product (default: `account_type`)"
    )


SPEC = DestinationSpec(
    type=GoogleDataManager.type,
    purpose="ads",
    vendor="Google",
    summary="a Google audience through the Data Manager API (the Google destination to use)",
    config=DataManagerConfig,
    roles=AUDIENCE,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> GoogleDataManager:
    keys = DataManagerConfig.of(config)
    return GoogleDataManager(
        name=config.name,
        operating_account_id=keys.operating_account_id,
        audience_id=keys.audience_id,
        client_id=keys.client_id,
        client_secret=keys.client_secret,
        refresh_token=keys.refresh_token,
        account_type=keys.account_type,
        login_account_id=keys.login_account_id,
        login_account_type=keys.login_account_type,
        base_url=config.base_url,
        purpose=config.purpose,
        segments=config.segment_names,
        transport=transport,
    )
