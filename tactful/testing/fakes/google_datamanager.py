"""A fake Google Data Manager API (Customer Match audience members) and OAuth token endpoint.

Follows Google's reference (https://developers.google.com/data-manager/api/reference/rest/v1/
audienceMembers/ingest, ``…/remove``, ``…/requestStatus/retrieve``, ``…/Consent``,
``…/UserData``; limits from https://developers.google.com/data-manager/api/devguides/limits):

- ``POST /token``: ``grant_type=refresh_token`` → ``access_token``; a wrong client is 401
  ``invalid_client``, a wrong refresh token 400 ``invalid_grant``.
- ``POST /v1/audienceMembers:ingest`` and ``:remove``: bearer token (401 ``UNAUTHENTICATED``),
  then injected faults (``fail_next``; 429 is ``RESOURCE_EXHAUSTED`` with ``RetryInfo``), then
  validation. 1-10 ``destinations`` whose ``operatingAccount`` (``accountType``, digits
  ``accountId``) may use the audience (``loginAccount``, when given, must be the configured
  manager: else 403 ``PERMISSION_DENIED``), ``productDestinationId`` an audience of that
  account; 1 to ``max_members`` (10,000) ``audienceMembers``, each exactly one ``userData``
  with 1-10 ``userIdentifiers`` of exactly one ``emailAddress`` / ``phoneNumber`` (SHA-256 hex
  with ``encoding: HEX``, which user data requires), ``consent`` values from
  ``CONSENT_GRANTED`` / ``CONSENT_DENIED`` / ``CONSENT_STATUS_UNSPECIFIED`` (ingest only: the
  remove request has no consent field). Any violation fails the whole request with 400
  ``INVALID_ARGUMENT`` and a ``google.rpc.BadRequest`` listing each ``fieldViolations[].field``
  (``audience_members[3].user_data.user_identifiers[0]``); nothing is applied.
- An accepted request answers ``{"requestId"}`` and is applied: members join (or leave) the
  audience, each hashed identifier keeping its member's consent (``consent_of``).
- ``GET /v1/requestStatus:retrieve?requestId=``: ``PROCESSING`` for ``polls_to_finish`` reads,
  then ``SUCCESS`` with ``recordCount``, ``userIdentifierCount`` and, for ingests,
  ``uploadMatchRateRange`` computed from the identifiers Google "knows" (``google_users``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.testing.fakes.base import FakeBase

MAX_MEMBERS, MAX_IDENTIFIERS, MAX_DESTINATIONS = 10_000, 10, 10
ACCOUNT_TYPES = {"GOOGLE_ADS", "DISPLAY_VIDEO_ADVERTISER", "DISPLAY_VIDEO_PARTNER", "DATA_PARTNER"}
CONSENT_STATUSES = {"CONSENT_GRANTED", "CONSENT_DENIED", "CONSENT_STATUS_UNSPECIFIED"}
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_BAD_REQUEST = "type.googleapis.com/google.rpc.BadRequest"
_RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
_ERROR_INFO = "type.googleapis.com/google.rpc.ErrorInfo"


def _rpc_error(status: int, message: str, *details: dict[str, Any]) -> JSONResponse:
    error = {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}
    return JSONResponse({"error": error | {"details": list(details)}}, status)


class FakeDataManager(FakeBase):
    def __init__(
        self,
        *,
        account_id: str = "1234567890",
        audience_id: str = "987654321",
        login_account_id: str | None = None,
        client_id: str = "client-id",
        client_secret: str = "client-secret",
        refresh_token: str = "refresh-token",
        token_ttl: int = 3599,
        max_members: int = MAX_MEMBERS,
        polls_to_finish: int = 1,
    ) -> None:
        super().__init__()
        self.account_id, self.audience_id = account_id, audience_id
        self.login_account_id = login_account_id
        self.client = (client_id, client_secret)
        self.refresh_token, self.token_ttl = refresh_token, token_ttl
        self.max_members, self.polls_to_finish = max_members, polls_to_finish
        self.members: set[tuple[str, str]] = set()  # (emailAddress|phoneNumber, hash)
        self.consents: dict[str, dict[str, str]] = {}  # hash -> consent of its member
        self.google_users: set[str] = set()  # hashes Google can match (for match rates)
        self.refused: dict[str, str] = {}  # hash -> why a member carrying it is invalid
        self.statuses: dict[str, dict[str, Any]] = {}  # requestId -> status row
        self.tokens_issued = 0
        self._tokens: set[str] = set()
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/{path:path}", self._api, methods=["GET", "POST"]),
            ]
        )

    # --- controls (the FakeVendor protocol, and more) ---------------------------------------

    def max_items_per_request(self) -> int:
        return self.max_members

    def snapshot(self) -> frozenset[tuple[str, str]]:
        with self.lock:
            return frozenset(self.members)

    def consent_of(self, hashed: str) -> dict[str, str]:
        with self.lock:
            return dict(self.consents.get(hashed, {}))

    def refuse(self, hashed: str, why: str = "INVALID_FORMAT: the value is invalid.") -> None:
        """Members carrying ``hashed`` fail validation (a field violation naming them)."""
        with self.lock:
            self.refused[hashed.lower()] = why

    def expire_access_tokens(self) -> None:
        with self.lock:
            self._tokens.clear()

    # --- HTTP ---------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        with self.lock:
            if (form.get("client_id"), form.get("client_secret")) != self.client:
                response = JSONResponse({"error": "invalid_client"}, 401)
            elif form.get("grant_type") != "refresh_token" or (
                form.get("refresh_token") != self.refresh_token
            ):
                description = "Token has been expired or revoked."
                response = JSONResponse(
                    {"error": "invalid_grant", "error_description": description}, 400
                )
            else:
                self.tokens_issued += 1
                token = f"ya29.dm-{self.tokens_issued}"
                self._tokens.add(token)
                answer = {"access_token": token, "expires_in": self.token_ttl}
                response = JSONResponse(answer | {"token_type": "Bearer"})
            self._record(request, body, response.status_code)
        return response

    async def _api(self, request: Request) -> Response:
        return await self._serve(request, self._answer)

    def _answer(self, request: Request, raw: bytes) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self._tokens:
            return _rpc_error(401, "Request had invalid authentication credentials.")
        if self._faults:
            return self._fault(*self._faults.popleft())
        path = request.url.path
        if request.method == "GET" and path == "/v1/requestStatus:retrieve":
            return self._status(request.query_params.get("requestId", ""))
        if request.method == "POST" and path in (
            "/v1/audienceMembers:ingest",
            "/v1/audienceMembers:remove",
        ):
            try:
                data = json.loads(raw or b"{}")
            except ValueError:
                return _rpc_error(400, "Invalid JSON payload received.")
            if not isinstance(data, dict):
                return _rpc_error(400, "Invalid JSON payload received.")
            return self._members(data, ingest=path.endswith(":ingest"))
        return _rpc_error(404, f"Not found: {request.method} {path}")

    def _fault(self, status: int, retry_after: int | None) -> Response:
        details: list[dict[str, Any]] = []
        if status == 429:
            quota = "IngestionMutateRequestsPerMinutePerProject"
            details.append(
                {
                    "@type": _ERROR_INFO,
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "googleapis.com",
                    "metadata": {"quota_limit": quota},
                }
            )
            if retry_after is not None:
                details.append({"@type": _RETRY_INFO, "retryDelay": f"{retry_after}s"})
        return _rpc_error(status, f"Injected {status}.", *details)

    # --- the service --------------------------------------------------------------------------

    def _members(self, data: dict[str, Any], *, ingest: bool) -> Response:
        denied = self._check_destinations(data.get("destinations"))
        if isinstance(denied, Response):
            return denied
        violations = denied
        members = data.get("audienceMembers")
        if not isinstance(members, list) or not members:
            violations.append(("audience_members", "At least one audience member is required."))
            members = []
        elif len(members) > self.max_members:
            text = f"At most {self.max_members} audience members can be sent in one request."
            violations.append(("audience_members", text))
        if data.get("encoding") not in ("HEX", "BASE64"):
            violations.append(("encoding", "Encoding is required for UserData uploads."))
        if not ingest and "consent" in data:
            violations.append(("consent", 'Unknown name "consent": cannot find field.'))
        for index, member in enumerate(members[: self.max_members]):
            violations.extend(self._check_member(index, member, ingest, data.get("encoding")))
        if violations:
            field_violations = [{"field": f, "description": d} for f, d in violations]
            detail = {"@type": _BAD_REQUEST, "fieldViolations": field_violations}
            return _rpc_error(400, "Request contains an invalid argument.", detail)
        return self._apply(members, ingest)

    def _check_destinations(self, destinations: Any) -> list[tuple[str, str]] | Response:
        if not isinstance(destinations, list) or not 1 <= len(destinations) <= MAX_DESTINATIONS:
            return [("destinations", f"Give 1 to {MAX_DESTINATIONS} destinations.")]
        out: list[tuple[str, str]] = []
        for index, destination in enumerate(destinations):
            where = f"destinations[{index}]"
            destination = destination if isinstance(destination, dict) else {}
            account = destination.get("operatingAccount")
            account = account if isinstance(account, dict) else {}
            if account.get("accountType") not in ACCOUNT_TYPES:
                out.append((f"{where}.operating_account.account_type", "Invalid account type."))
            elif not str(account.get("accountId", "")).isdigit():
                out.append((f"{where}.operating_account.account_id", "Invalid account id."))
            login = destination.get("loginAccount")
            login_id = login.get("accountId") if isinstance(login, dict) else None
            if account.get("accountId") != self.account_id or login_id != self.login_account_id:
                return _rpc_error(403, "The caller does not have permission.")
            if destination.get("productDestinationId") != self.audience_id:
                text = "The audience does not exist in the operating account."
                out.append((f"{where}.product_destination_id", text))
        return out

    def _check_member(
        self, index: int, member: Any, ingest: bool, encoding: Any
    ) -> list[tuple[str, str]]:
        where = f"audience_members[{index}]"
        member = member if isinstance(member, dict) else {}
        data = member.get("userData")
        identifiers = data.get("userIdentifiers") if isinstance(data, dict) else None
        if not isinstance(identifiers, list) or not 1 <= len(identifiers) <= MAX_IDENTIFIERS:
            return [(f"{where}.user_data.user_identifiers", "Give 1 to 10 user identifiers.")]
        out: list[tuple[str, str]] = []
        for position, identifier in enumerate(identifiers):
            keys = list(identifier) if isinstance(identifier, dict) else []
            at = f"{where}.user_data.user_identifiers[{position}]"
            if len(keys) != 1 or keys[0] not in ("emailAddress", "phoneNumber"):
                out.append((at, "Exactly one of email_address, phone_number or address."))
            elif encoding == "HEX" and not _SHA256_HEX.fullmatch(str(identifier[keys[0]]).lower()):
                out.append((at, "INVALID_SHA256_FORMAT: the value is not a hex SHA-256 hash."))
            elif str(identifier[keys[0]]).lower() in self.refused:
                out.append((at, self.refused[str(identifier[keys[0]]).lower()]))
        consent = member.get("consent")
        if consent is not None and not ingest:
            out.append((f"{where}.consent", "Consent is not accepted when removing members."))
        elif consent is not None and (
            not isinstance(consent, dict)
            or any(
                k not in ("adUserData", "adPersonalization") or v not in CONSENT_STATUSES
                for k, v in consent.items()
            )
        ):
            out.append((f"{where}.consent", "Invalid value for enum ConsentStatus."))
        return out

    def _apply(self, members: list[dict[str, Any]], ingest: bool) -> Response:
        hashes: list[list[str]] = []
        for member in members:
            consent = member.get("consent") or {}
            mine = []
            for identifier in member["userData"]["userIdentifiers"]:
                key, value = next(iter(identifier.items()))
                value = str(value).lower()
                mine.append(value)
                if ingest:
                    self.members.add((key, value))
                    self.consents[value] = dict(consent)
                else:
                    self.members.discard((key, value))
                    self.consents.pop(value, None)
            hashes.append(mine)
        request_id = str(uuid.uuid4())
        counts = {
            "recordCount": str(len(members)),
            "userIdentifierCount": str(sum(len(h) for h in hashes)),
        }
        if ingest:
            matched = sum(1 for h in hashes if self.google_users & set(h))
            counts["uploadMatchRateRange"] = _match_rate_range(matched, len(members))
            status = {"audienceMembersIngestionStatus": {"userDataIngestionStatus": counts}}
        else:
            status = {"audienceMembersRemovalStatus": {"userDataRemovalStatus": counts}}
        self.statuses[request_id] = {"polls": self.polls_to_finish, "status": status}
        return JSONResponse({"requestId": request_id})

    def _status(self, request_id: str) -> Response:
        found = self.statuses.get(request_id)
        if found is None:
            return _rpc_error(404, "Request id not found.")
        destination = {
            "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": self.account_id},
            "productDestinationId": self.audience_id,
        }
        row: dict[str, Any] = {"destination": destination}
        if found["polls"] > 0:
            found["polls"] -= 1
            row["requestStatus"] = "PROCESSING"
        else:
            row |= {"requestStatus": "SUCCESS", **found["status"]}
        return JSONResponse({"requestStatusPerDestination": [row]})


def _match_rate_range(matched: int, total: int) -> str:
    """Google's ``MatchRateRange`` bucket for ``matched`` of ``total`` records."""
    if total == 0:
        return "MATCH_RATE_RANGE_UNKNOWN"
    percent = 100 * matched / total
    if percent < 20:
        return "MATCH_RATE_RANGE_LESS_THAN_20"
    if percent <= 30:
        return "MATCH_RATE_RANGE_20_TO_30"
    for low in (31, 41, 51, 61, 71, 81):
        if percent < low + 10:
            return f"MATCH_RATE_RANGE_{low}_TO_{low + 9}"
    return "MATCH_RATE_RANGE_91_TO_100"
