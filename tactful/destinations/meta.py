"""Meta Custom Audience destination (``type = "meta_audience"``).

Marketing API, Custom Audience Users edge: ``POST /{audience_id}/users`` adds people and
``DELETE /{audience_id}/users`` removes them, with the form fields ``payload`` (JSON
``schema``, ``is_raw``, ``data``), ``session`` (JSON ``session_id``, ``batch_seq``,
``last_batch_flag``, ``estimated_num_total``) and ``access_token``; at most 10,000 rows a
request. Rows follow the multi-key schema ``EMAIL, PHONE, EXTERN_ID`` with unknown keys left
blank, as the reference says; EMAIL and PHONE are hashed by Meta's rules, EXTERN_ID is not
hashed but trimmed and lower-cased as Meta's official SDK does (``hashing.meta_extern_id``).

Answers carry ``num_received``, ``num_invalid_entries`` and ``invalid_entry_samples``; Graph
errors ``{"error": {"code", "error_subcode", "message"}}``. Throttling (4, 17, 32, 613, the
800xx business-use-case limits) is retried after ``Retry-After`` or Meta's own estimate; a bad
token (190) and "Audience Size too Low" (200/1870047: Meta refuses removals that would leave
the audience too small) are rejected with a message that says what to do. A person's items
keep their order across requests. ``plan_audience_ops``, ``chunk_rows`` and ``zip_rows``
(``tactful.destinations.audiences``, re-exported here) are shared with the TikTok destination.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from pydantic import Field

from tactful.core.platform import PlatformReport
from tactful.destinations import hashing
from tactful.destinations.audiences import Group as Group
from tactful.destinations.audiences import Row as Row
from tactful.destinations.audiences import chunk_rows as chunk_rows
from tactful.destinations.audiences import plan_audience_ops as plan_audience_ops
from tactful.destinations.audiences import zip_rows as zip_rows
from tactful.destinations.base import (
    Capabilities,
    Identifiers,
    Item,
    ItemKind,
    Outcome,
    PlatformUnreadable,
    Purpose,
    Sent,
    classify_status,
    parse_retry_after,
)
from tactful.destinations.probe import Probed, Verdict, body_of, by_status, where
from tactful.destinations.spec import AUDIENCE, DestinationConfig, DestinationSpec, Secret, Text

if TYPE_CHECKING:
    from tactful.config.models import DestinationSettings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://graph.facebook.com/v27.0"
MAX_ROWS_PER_REQUEST = 10_000  # "only a maximum of 10000 at a time"
MAX_ITEMS_PER_SEND = 50_000  # split into requests of at most MAX_ROWS_PER_REQUEST rows
SCHEMA = ("EMAIL", "PHONE", "EXTERN_ID")
KINDS: frozenset[ItemKind] = frozenset({"audience_add", "audience_remove"})
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})  # plus 80000-80099 (business use case)
TRANSIENT_CODES = frozenset({1, 2})
AUTH_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10, 200, 294})
SMALL_AUDIENCE = (200, 1870047)
SMALL_AUDIENCE_MESSAGE = (
    "Meta refuses removals from small audiences (error 200/1870047 'Audience Size too Low'): "
    "removing these people would leave the audience too small, so they stay in it until "
    "the audience grows; use it as an exclusion audience or keep it larger"
)


def meta_rows(identifiers: Identifiers) -> list[Row]:
    emails = [h for raw in identifiers.emails if (h := hashing.meta_email(raw))]
    phones = [h for raw in identifiers.phones if (h := hashing.meta_phone(raw))]
    extern = [v for raw in identifiers.external_ids if (v := hashing.meta_extern_id(raw))]
    return zip_rows(emails, phones, extern)


@dataclass
class _Answer:
    outcome: Outcome
    fatal: bool = False  # the rest of this send() would fail the same way: do not send it
    samples: dict[str, str] = field(default_factory=dict)
    invalid: int = 0
    received: int | None = None


def _buc_wait(response: httpx.Response) -> float | None:
    """Seconds until access is regained, from ``X-Business-Use-Case-Usage`` (minutes)."""
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", ""))
        minutes = [
            float(entry.get("estimated_time_to_regain_access") or 0)
            for entries in usage.values()
            for entry in entries
        ]
    except (ValueError, AttributeError, TypeError):
        return None
    wait = max(minutes, default=0.0) * 60
    return wait or None


def _json_object(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _count(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def error_answer(response: httpx.Response) -> _Answer:
    """Classify a non-2xx Graph API answer."""
    status = response.status_code
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    error = _json_object(response).get("error")
    if not isinstance(error, dict):
        return _Answer(classify_status(status, retry_after, f"HTTP {status} from Meta"))
    code, subcode = error.get("code"), error.get("error_subcode")
    text = error.get("error_user_msg") or error.get("message") or "no message"
    desc = f"Meta error {code}{f'/{subcode}' if subcode else ''}: {text}"
    if code in RATE_LIMIT_CODES or (isinstance(code, int) and 80000 <= code < 80100):
        wait = retry_after if retry_after is not None else _buc_wait(response)
        return _Answer(Outcome("retry", desc, wait, status), fatal=True)
    if (code, subcode) == SMALL_AUDIENCE:
        return _Answer(Outcome("reject", SMALL_AUDIENCE_MESSAGE, None, status))
    if code in AUTH_CODES:
        hint = "; create a new system-user token with ads_management and update access_token"
        error_text = f"Meta rejected the access token ({desc}){hint}"
        return _Answer(Outcome("reject", error_text, None, status), fatal=True)
    if code in PERMISSION_CODES or (code, subcode) == (100, 33):
        hint = "; check the audience id and that the token's user may manage that audience"
        return _Answer(Outcome("reject", desc + hint, None, status), fatal=True)
    if code in TRANSIENT_CODES or error.get("is_transient") is True or status >= 500:
        return _Answer(Outcome("retry", desc, retry_after, status), fatal=True)
    outcome = classify_status(status, retry_after, desc)
    return _Answer(outcome, fatal=outcome.kind == "retry")


class MetaAudience:
    """One ``meta_audience`` destination: a Custom Audience kept in step with a segment."""

    TYPE = "meta_audience"

    def __init__(
        self,
        *,
        name: str,
        audience_id: str,
        access_token: str,
        base_url: str = DEFAULT_BASE_URL,
        purpose: Purpose = "ads",
        segments: Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        rows_per_request: int = MAX_ROWS_PER_REQUEST,
    ) -> None:
        self.name = name
        self.type = MetaAudience.TYPE
        self.purpose: Purpose = purpose
        self.segments = segments
        self.capabilities = Capabilities(max_batch=MAX_ITEMS_PER_SEND, kinds=KINDS)
        self.audience_url = f"{base_url.rstrip('/')}/{audience_id}"
        self.url = f"{self.audience_url}/users"
        self._token = access_token
        self._rows_per_request = rows_per_request
        self._client = httpx.Client(transport=transport, timeout=timeout)

    def send(self, items: Sequence[Item]) -> Sent:
        outcomes: list[Outcome | None] = [None] * len(items)
        stop: Outcome | None = None
        report = PlatformReport()
        for group in plan_audience_ops(items, meta_rows, outcomes):
            chunks = chunk_rows(group.entries, self._rows_per_request)
            session = self._session(group, items)
            for seq, chunk in enumerate(chunks, start=1):
                if stop is None:
                    last = seq == len(chunks)
                    session.update(batch_seq=seq, last_batch_flag=last)
                    answer = self._call(group.kind, chunk, session)
                    report = report.merge(platform_report(answer))
                    self._assign(answer, chunk, outcomes)
                    stop = answer.outcome if answer.fatal else None
                else:
                    for index, _ in chunk:
                        outcomes[index] = stop
        return Sent([outcome or Outcome.ok() for outcome in outcomes], report)

    def close(self) -> None:
        self._client.close()

    def audience_report(self) -> PlatformReport:
        """The audience's size as Meta reports it: ``GET /{audience_id}?fields=
        approximate_count_lower_bound,approximate_count_upper_bound`` (Custom Audience
        reference, "Reading"). Raises ``PlatformUnreadable`` when Meta does not answer."""
        fields = "approximate_count_lower_bound,approximate_count_upper_bound"
        try:
            response = self._client.get(
                self.audience_url, params={"fields": fields, "access_token": self._token}
            )
        except httpx.TransportError as exc:
            raise PlatformUnreadable(f"Meta unreachable: {exc!r}") from exc
        if not 200 <= response.status_code < 300:
            raise PlatformUnreadable(error_answer(response).outcome.error)
        body = _json_object(response)
        bounds = [body.get(f"approximate_count_{b}_bound") for b in ("lower", "upper")]
        lower, upper = (
            v if isinstance(v, int) and not isinstance(v, bool) else None for v in bounds
        )
        return PlatformReport(audience_lower=lower, audience_upper=upper)

    # -- internals

    def _session(self, group: Group, items: Sequence[Item]) -> dict[str, Any]:
        """The same items give the same session id, so a retried upload is recognisable."""
        keys = "\n".join([group.kind, *(items[index].key for index, _ in group.entries)])
        session_id = int.from_bytes(hashlib.sha256(keys.encode()).digest()[:8], "big") >> 1
        total = sum(len(rows) for _, rows in group.entries)
        return {"session_id": session_id, "estimated_num_total": total}

    def _call(
        self, kind: ItemKind, chunk: list[tuple[int, list[Row]]], session: dict[str, Any]
    ) -> _Answer:
        rows = [list(row) for _, entry_rows in chunk for row in entry_rows]
        payload = {"schema": list(SCHEMA), "is_raw": True, "data": rows}
        form = {
            "payload": json.dumps(payload, separators=(",", ":")),
            "session": json.dumps(session, separators=(",", ":")),
            "access_token": self._token,
        }
        method = "POST" if kind == "audience_add" else "DELETE"
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        try:
            response = self._client.request(
                method, self.url, content=urlencode(form), headers=headers
            )
        except httpx.TransportError as exc:
            return _Answer(Outcome("retry", f"Meta unreachable: {exc!r}"), fatal=True)
        if not 200 <= response.status_code < 300:
            answer = error_answer(response)
            log.warning("%s: %s %s", self.name, method, answer.outcome.error)
            return answer
        body = _json_object(response)
        raw = body.get("invalid_entry_samples")
        samples = {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}
        if "num_received" in body and _count(body["num_received"]) != len(rows):
            log.warning(
                "%s: Meta received %s of %d rows", self.name, body["num_received"], len(rows)
            )
        return _Answer(
            Outcome.ok(),
            samples=samples,
            invalid=_count(body.get("num_invalid_entries")),
            received=_count(body["num_received"]) if "num_received" in body else None,
        )

    def _assign(
        self, answer: _Answer, chunk: list[tuple[int, list[Row]]], outcomes: list[Outcome | None]
    ) -> None:
        for index, _ in chunk:
            outcomes[index] = answer.outcome
        if not answer.invalid:
            return
        found = 0
        for index, rows in chunk:
            bad = [reason for row in rows if (reason := _sample_reason(row, answer.samples))]
            found += len(bad)
            if bad and len(bad) == len(rows):
                outcomes[index] = Outcome("reject", f"Meta reported an invalid entry: {bad[0]}")
        if found < answer.invalid:
            unknown = answer.invalid - found
            log.warning("%s: %d invalid entries not identifiable from samples", self.name, unknown)


def platform_report(answer: _Answer) -> PlatformReport:
    """Meta's answer for the run: ``num_received``, ``num_invalid_entries`` and the reasons
    of ``invalid_entry_samples`` (its keys are the hashed entries: not kept)."""
    if answer.outcome.kind != "ok":
        return PlatformReport(diagnostics=(answer.outcome.error,))
    reasons = tuple(dict.fromkeys(answer.samples.values()))
    status = "received" if answer.received is not None else ""
    return PlatformReport(answer.received, answer.invalid, status, reasons)


def _sample_reason(row: Row, samples: dict[str, str]) -> str | None:
    """Meta's ``invalid_entry_samples`` maps a sample of invalid entries to a reason; an
    entry is matched by a value of the row or by the row as JSON."""
    if not samples:
        return None
    for candidate in (json.dumps(list(row)), json.dumps(list(row), separators=(",", ":"))):
        if candidate in samples:
            return samples[candidate]
    return next((samples[value] for value in row if value and value in samples), None)


class MetaAudienceConfig(DestinationConfig):
    audience_id: Text = Field(description="the Custom Audience id")
    access_token: Secret = Field(description="a system user access token")


def probe(config: Probed, client: httpx.Client) -> Verdict:
    """Meta: ``GET /{audience_id}?fields=id,name`` (reading a custom audience); Graph
    errors ``190`` (token) and ``100``/``803`` (no such object).
    https://developers.facebook.com/docs/marketing-api/reference/custom-audience#Reading"""
    base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
    response = client.get(
        f"{base}/{config.setting('audience_id')}",
        params={"fields": "id,name", "access_token": config.setting("access_token") or ""},
    )
    error = body_of(response).get("error") or {}
    code = error.get("code")
    if code == 190 or response.status_code == 401:
        return (
            False,
            f"Meta refused the token: {error.get('message', '')}",
            where(config, "access_token"),
        )
    if code in (100, 803) or response.status_code == 404:
        return False, f"no such audience: {error.get('message', '')}", where(config, "audience_id")
    if code in (10, 200, 294) or response.status_code == 403:
        return (
            False,
            f"no permission: {error.get('message', '')}",
            where(config, "access_token") + " (ads_management on the audience's ad account)",
        )
    verdict = by_status(config, response, ("access_token",), ("audience_id",))
    if not verdict[0]:
        return verdict
    return True, f"audience {body_of(response).get('name', '?')!r} readable", ""


SPEC = DestinationSpec(
    type=MetaAudience.TYPE,
    purpose="ads",
    vendor="Meta",
    summary="a Meta Custom Audience following one segment",
    config=MetaAudienceConfig,
    roles=AUDIENCE,
    probe=probe,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> MetaAudience:
    keys = MetaAudienceConfig.of(config)
    return MetaAudience(
        name=config.name,
        audience_id=keys.audience_id,
        access_token=keys.access_token,
        base_url=config.base_url or DEFAULT_BASE_URL,
        purpose=config.purpose,
        segments=config.segment_names,
        transport=transport,
    )
