"""TikTok custom audience destination (``type = "tiktok_audience"``).

TikTok API for Business v1.3, streaming audience API: ``POST /open_api/v1.3/segment/mapping/``
with the ``Access-Token`` header and a JSON body ``{"advertiser_ids": [...], "action":
"add" | "delete", "id_schema": ["EMAIL_SHA256", "PHONE_SHA256"], "batch_data": [[{"id":
<sha256>, "audience_ids": [<audience_id>]}, {}], ...]}``: one row per person, one entry per
``id_schema`` element, ``{}`` where the person has no such identifier. The audience must be
one the streaming API can write to (created with ``/segment/audience/``: a "Partner
audience"). TikTok takes no external ids here, so only emails and phones are sent.

``audience_report`` reads the audience's size as TikTok reports it: ``GET
/open_api/v1.3/dmp/custom_audience/get/?advertiser_id=…&custom_audience_ids=["…"]``
("Obtain the details of specified audiences",
https://business-api.tiktok.com/portal/docs?id=1739940507792385) answers ``data.list[]``
of ``{"audience_details": {…, "cover_num", "is_valid"}, "audience_history"}``: ``cover_num``
is the number of the audience's users matched on TikTok; an audience not ``is_valid`` is
still being calculated (or expired). TikTok reports no match rate.

Answers are ``{"code": 0, "message": "OK", "request_id", "data"}``; a non-zero ``code`` is an
error even with HTTP 200: 40100 (too many requests) and 5xxxx are retried, 40102/40104/40105
(access token expired, missing or revoked) and 40001 (no permission) are rejected with a
hint, anything else is rejected with TikTok's message.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx
import orjson
from pydantic import Field

from tactful.core.platform import PlatformReport
from tactful.destinations import hashing
from tactful.destinations.audiences import Row, chunk_rows, plan_audience_ops, zip_rows
from tactful.destinations.base import (
    Capabilities,
    Identifiers,
    Item,
    ItemKind,
    Outcome,
    PlatformUnreadable,
    Purpose,
    classify_status,
    parse_retry_after,
)
from tactful.destinations.probe import Probed, Verdict, body_of, by_status, where
from tactful.destinations.spec import AUDIENCE, DestinationConfig, DestinationSpec, Secret, Text

if TYPE_CHECKING:
    from tactful.config.models import DestinationSettings

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://business-api.tiktok.com/open_api/v1.3"
MAX_ROWS_PER_REQUEST = 1_000  # not documented in what we could read: a conservative batch
MAX_ITEMS_PER_SEND = 10_000
ID_SCHEMA = ("EMAIL_SHA256", "PHONE_SHA256")
KINDS: frozenset[ItemKind] = frozenset({"audience_add", "audience_remove"})
RATE_LIMIT_CODE = 40100
TOKEN_CODES = frozenset({40102, 40104, 40105})
PERMISSION_CODES = frozenset({40001})


def tiktok_rows(identifiers: Identifiers) -> list[Row]:
    emails = [h for raw in identifiers.emails if (h := hashing.tiktok_email(raw))]
    phones = [h for raw in identifiers.phones if (h := hashing.tiktok_phone(raw))]
    return zip_rows(emails, phones)


def code_outcome(code: int, message: str, status: int, retry_after: float | None) -> Outcome:
    """Classify a non-zero TikTok ``code``."""
    desc = f"TikTok error {code}: {message}"
    if code == RATE_LIMIT_CODE or code >= 50000:
        return Outcome("retry", desc, retry_after, status)
    if code in TOKEN_CODES:
        hint = "; authorize the app again and update access_token"
        return Outcome("reject", f"TikTok rejected the access token ({desc}){hint}", None, status)
    if code in PERMISSION_CODES:
        hint = "; check advertiser_id and that the token may manage its audiences"
        return Outcome("reject", desc + hint, None, status)
    return Outcome("reject", desc, None, status)


class TikTokAudience:
    """One ``tiktok_audience`` destination: a TikTok audience kept in step with a segment."""

    TYPE = "tiktok_audience"

    def __init__(
        self,
        *,
        name: str,
        advertiser_id: str,
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
        self.type = TikTokAudience.TYPE
        self.purpose: Purpose = purpose
        self.segments = segments
        self.capabilities = Capabilities(max_batch=MAX_ITEMS_PER_SEND, kinds=KINDS)
        self.url = f"{base_url.rstrip('/')}/segment/mapping/"
        self.details_url = f"{base_url.rstrip('/')}/dmp/custom_audience/get/"
        self.advertiser_id = advertiser_id
        self.audience_id = audience_id
        self._rows_per_request = rows_per_request
        self._client = httpx.Client(
            transport=transport, timeout=timeout, headers={"Access-Token": access_token}
        )

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        stop: Outcome | None = None
        for group in plan_audience_ops(items, tiktok_rows, outcomes):
            for chunk in chunk_rows(group.entries, self._rows_per_request):
                outcome, fatal = (stop, True) if stop else self._call(group.kind, chunk)
                for index, _ in chunk:
                    outcomes[index] = outcome
                if fatal and stop is None:
                    stop = outcome
        return [outcome or Outcome.ok() for outcome in outcomes]

    def close(self) -> None:
        self._client.close()

    def audience_report(self) -> PlatformReport:
        """The audience's matched users (``cover_num``) as TikTok reports them;
        ``PlatformUnreadable`` when TikTok does not answer with them."""
        params = {
            "advertiser_id": self.advertiser_id,
            "custom_audience_ids": json.dumps([self.audience_id]),
        }
        try:
            response = self._client.get(self.details_url, params=params)
        except httpx.TransportError as exc:
            raise PlatformUnreadable(f"TikTok unreachable: {exc!r}") from exc
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise PlatformUnreadable(f"HTTP {response.status_code}: unreadable TikTok answer")
        code, message = answer.get("code"), str(answer.get("message") or "")
        if not 200 <= response.status_code < 300 or code != 0:
            raise PlatformUnreadable(f"HTTP {response.status_code}, TikTok error {code}: {message}")
        data = answer.get("data")
        found = data.get("list") if isinstance(data, dict) else None
        details: list[dict[str, Any]] = []
        for entry in found if isinstance(found, list) else []:
            got = entry.get("audience_details") if isinstance(entry, dict) else None
            if isinstance(got, dict):
                details.append(got)
        mine = [d for d in details if str(d.get("audience_id")) == self.audience_id]
        if not mine:
            raise PlatformUnreadable(f"audience {self.audience_id} not in TikTok's answer")
        count = mine[0].get("cover_num")
        size = count if isinstance(count, int) and not isinstance(count, bool) else None
        status = "" if mine[0].get("is_valid", True) else "not valid (calculating or expired)"
        return PlatformReport(status=status, audience_lower=size, audience_upper=size)

    def body(self, kind: ItemKind, rows: list[Row]) -> dict[str, Any]:
        """The documented request body for ``rows`` (a person's hashes per ``ID_SCHEMA``)."""
        audience_ids = [self.audience_id]
        return {
            "advertiser_ids": [self.advertiser_id],
            "action": "add" if kind == "audience_add" else "delete",
            "id_schema": list(ID_SCHEMA),
            "batch_data": [
                [{"id": value, "audience_ids": audience_ids} if value else {} for value in row]
                for row in rows
            ],
        }

    def _call(self, kind: ItemKind, chunk: list[tuple[int, list[Row]]]) -> tuple[Outcome, bool]:
        """The outcome for the chunk's items and whether the rest should not be sent."""
        rows = [row for _, entry_rows in chunk for row in entry_rows]
        try:
            response = self._client.post(self.url, json=self.body(kind, rows))
        except httpx.TransportError as exc:
            return Outcome("retry", f"TikTok unreachable: {exc!r}"), True
        status = response.status_code
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        try:
            answer = response.json()
        except ValueError:
            answer = None
        code = answer.get("code") if isinstance(answer, dict) else None
        message = str(answer.get("message") or "") if isinstance(answer, dict) else ""
        if not 200 <= status < 300:
            desc = f"HTTP {status} from TikTok" + (f" (code {code}: {message})" if code else "")
            outcome = classify_status(status, retry_after, desc)
        elif code == 0:
            return Outcome.ok(), False
        elif isinstance(code, int):
            outcome = code_outcome(code, message, status, retry_after)
        else:
            outcome = Outcome("retry", f"unreadable TikTok answer: {response.text[:200]!r}")
        log.warning("%s: %s", self.name, outcome.error)
        fatal = outcome.kind == "retry" or code in TOKEN_CODES | PERMISSION_CODES
        return outcome, fatal


class TikTokAudienceConfig(DestinationConfig):
    advertiser_id: Text = Field(description="the TikTok advertiser id")
    audience_id: Text = Field(description="the custom audience id")
    access_token: Secret = Field(description="a TikTok API for Business access token")


def probe(config: Probed, client: httpx.Client) -> Verdict:
    """TikTok: ``GET /dmp/custom_audience/get/?advertiser_id=…&custom_audience_ids=[…]``
    with the ``Access-Token`` header; ``code`` 40102/40104/40105 (token), 40001
    (permission). https://business-api.tiktok.com/portal/docs/get-audience-details/v1.3"""
    base = (config.base_url or DEFAULT_BASE_URL).rstrip("/")
    response = client.get(
        f"{base}/dmp/custom_audience/get/",
        params={
            "advertiser_id": config.setting("advertiser_id") or "",
            "custom_audience_ids": orjson.dumps([config.setting("audience_id") or ""]).decode(),
        },
        headers={"Access-Token": config.setting("access_token") or ""},
    )
    verdict = by_status(config, response, ("access_token",), ("audience_id",))
    if not verdict[0]:
        return verdict
    body = body_of(response)
    code, message = body.get("code", -1), body.get("message", "")
    if code in TOKEN_CODES:
        return (
            False,
            f"TikTok refused the token ({code}: {message})",
            where(config, "access_token"),
        )
    if code in PERMISSION_CODES:
        return (
            False,
            f"no permission ({code}: {message})",
            where(config, "advertiser_id", "access_token"),
        )
    if code != 0:
        return False, f"TikTok error {code}: {message}", where(config, "audience_id")
    found = (body.get("data") or {}).get("list") or []
    if not found:
        return False, "the advertiser has no such audience", where(config, "audience_id")
    return True, "audience readable", ""


SPEC = DestinationSpec(
    type=TikTokAudience.TYPE,
    purpose="ads",
    vendor="TikTok",
    summary="a TikTok custom audience following one segment",
    config=TikTokAudienceConfig,
    roles=AUDIENCE,
    probe=probe,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> TikTokAudience:
    keys = TikTokAudienceConfig.of(config)
    return TikTokAudience(
        name=config.name,
        advertiser_id=keys.advertiser_id,
        audience_id=keys.audience_id,
        access_token=keys.access_token,
        base_url=config.base_url or DEFAULT_BASE_URL,
        purpose=config.purpose,
        segments=config.segment_names,
        transport=transport,
    )
