"""A fake Google Ads API (Customer Match pieces) and Google OAuth token endpoint, one ASGI app.

Serves, on one base URL:

- ``POST /token``: ``grant_type=refresh_token`` with ``client_id``, ``client_secret`` and
  ``refresh_token`` (form-encoded) → ``{"access_token", "expires_in", "scope",
  "token_type"}``; a wrong client is 401 ``invalid_client``, a wrong or revoked refresh token
  400 ``invalid_grant``.
- ``POST /v26/customers/{cid}/offlineUserDataJobs:create``, ``…/offlineUserDataJobs/{id}``
  ``:addOperations`` and ``:run``, and ``POST /v26/customers/{cid}/googleAds:search`` (the
  job-status query, and the user list's ``size_for_search``, ``size_for_display`` and
  ``match_rate_percentage``:
  https://developers.google.com/google-ads/api/reference/rpc/v24/UserList; sizes, int64, as
  JSON strings). The sizes are the list's members times ``match_rate_percentage`` (70 by
  default), Search's ``search_share`` of that (Search counts only signed-in users);
  ``list_sizes`` sets them outright.

Ads requests are checked in Google's order: bearer token (401 ``UNAUTHENTICATED``),
``developer-token`` (401 ``DEVELOPER_TOKEN_INVALID``), ``login-customer-id`` and access to the
customer (403 ``USER_PERMISSION_DENIED``), then injected faults (``fail_next``). Errors are
``google.rpc.Status`` JSON with ``GoogleAdsFailure`` details. A job goes PENDING → RUNNING
(``:run``) → SUCCESS after ``polls_to_finish`` status searches answered RUNNING; then its
operations are applied, in order, to the list's members (``fail_jobs``: FAILED instead).
``addOperations`` enforces the documented limits (request-level ``TOO_MANY_USER_IDENTIFIERS``
beyond ``max_identifiers_per_request``, 100,000 by default; 20 per operation), SHA-256 hex,
contact-info identifiers only, no creates and removes in one job (``CONFLICTING_OPERATION``),
``removeAll`` first, and reports per-operation errors in ``partialFailureError`` when
``enablePartialFailure`` is set (otherwise the whole request fails). Running a job while
another job on the same list runs is 409 ``CONCURRENT_MODIFICATION``. A create's
``UserData.consent`` (``adUserData`` / ``adPersonalization``: ``GRANTED``, ``DENIED``,
``UNSPECIFIED``, ``UNKNOWN``) overrides the job's consent for that member and is kept per
member (``consent_of``); another value is ``INVALID_ENUM_VALUE``
(https://developers.google.com/google-ads/api/reference/rpc/v26/UserData).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.destinations.google_jobs import (
    API_VERSION,
    MAX_IDENTIFIERS_PER_OPERATION,
    MAX_IDENTIFIERS_PER_REQUEST,
)
from tactful.testing.fakes.base import FakeBase

FAILURE_TYPE = f"type.googleapis.com/google.ads.googleads.{API_VERSION}.errors.GoogleAdsFailure"
_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_HASHED = {"hashedEmail": "hashed_email", "hashedPhoneNumber": "hashed_phone_number"}
_GRPC = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
         404: "NOT_FOUND", 409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
         503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}  # fmt: skip
_MESSAGES = {
    "DEVELOPER_TOKEN_INVALID": "The developer token is not valid.",
    "USER_PERMISSION_DENIED": "User doesn't have permission to access customer.",
    "RESOURCE_EXHAUSTED": "Too many requests.",
    "INTERNAL_ERROR": "An internal error has occurred.",
    "INVALID_USER_LIST_TYPE": "Type of the user list is not applicable for the job.",
    "INVALID_USER_LIST_ID": "The user list ID provided for the job is invalid.",
    "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS": "The customer has not accepted the customer "
    "data terms in the conversion settings page.",
    "JOB_ALREADY_STARTED": "Once the upload job is started, new operations cannot be added.",
    "TOO_MANY_USER_IDENTIFIERS": "Maximum number of user identifiers allowed per request is "
    "100,000 and per operation is 20.",
    "INVALID_OPERATION_ORDER": "When a remove-all operation is provided, it has to be the first "
    "operation of the operation list.",
    "CONFLICTING_OPERATION": "Mixing creation and removal of offline data in the same job is "
    "not allowed.",
    "MISSING_USER_IDENTIFIER": "The user identifier is missing valid data.",
    "INCOMPATIBLE_UPLOAD_KEY_TYPE": "Upload data is not compatible with the upload key type of "
    "the associated user list.",
    "INVALID_SHA256_FORMAT": "The SHA256 encoded value is malformed.",
    "CONCURRENT_MODIFICATION": "Multiple requests were attempting to modify the same resource "
    "at once. Retry the request.",
}
_CONSENT_FIELDS = ("adUserData", "adPersonalization")
_CONSENT_STATUSES = frozenset({"UNSPECIFIED", "UNKNOWN", "GRANTED", "DENIED"})
_JOBS = re.compile(rf"/{API_VERSION}/customers/(\d+)/offlineUserDataJobs(?:/(\d+))?:(\w+)")
_SEARCH = re.compile(rf"/{API_VERSION}/customers/(\d+)/googleAds:search")
_CUSTOMER = re.compile(rf"/{API_VERSION}/customers/(\d+)/")
_LIST_QUERY = re.compile(r"FROM\s+user_list\s+WHERE\s+user_list\.resource_name\s*=\s*'([^']+)'")
_JOB_QUERY = re.compile(
    r"FROM\s+offline_user_data_job\s+WHERE\s+offline_user_data_job\.resource_name\s*=\s*'([^']+)'"
)


@dataclass
class FakeJob:
    resource_name: str
    user_list: str
    consent: dict[str, str]
    status: str = "PENDING"
    operations: list[dict[str, Any]] = field(default_factory=list)
    polls_left: int = 0
    failure_reason: str = ""


def ads_error(family: str, code: str, *path: str | tuple[str, int]) -> dict[str, Any]:
    """One ``GoogleAdsError``; ``path`` items are field names or ``(name, index)``."""
    error: dict[str, Any] = {"errorCode": {family: code}, "message": _MESSAGES.get(code, code)}
    if path:
        elements = [
            {"fieldName": p} if isinstance(p, str) else {"fieldName": p[0], "index": p[1]}
            for p in path
        ]
        error["location"] = {"fieldPathElements": elements}
    return error


def rpc_status(code: int, errors: list[dict[str, Any]], message: str) -> dict[str, Any]:
    details = [{"@type": FAILURE_TYPE, "errors": errors, "requestId": "fake-request"}]
    return {"code": code, "message": message, "details": details if errors else []}


def failure(status: int, *errors: dict[str, Any], message: str = "") -> JSONResponse:
    text = message or errors[0]["message"]
    body = rpc_status(status, list(errors), text) | {"status": _GRPC.get(status, "UNKNOWN")}
    return JSONResponse({"error": body}, status)


def _user_data(op: Any) -> tuple[str, list[Any]]:
    """``(verb, userIdentifiers)`` of an operation; verb ``""`` when not exactly one is set."""
    verbs = [v for v in ("create", "remove", "removeAll") if isinstance(op, dict) and v in op]
    if len(verbs) != 1:
        return "", []
    data = op[verbs[0]]
    identifiers = data.get("userIdentifiers") if isinstance(data, dict) else None
    return verbs[0], identifiers if isinstance(identifiers, list) else []


class FakeGoogleAds(FakeBase):
    def __init__(
        self,
        *,
        customer_id: str = "1234567890",
        user_list_id: str = "987654321",
        developer_token: str = "dev-token",
        login_customer_id: str | None = None,
        client_id: str = "client-id",
        client_secret: str = "client-secret",
        refresh_token: str = "refresh-token",
        token_ttl: int = 3599,
        polls_to_finish: int = 1,
        max_identifiers_per_request: int = MAX_IDENTIFIERS_PER_REQUEST,
        match_rate_percentage: int = 70,
        search_share: float = 0.8,
    ) -> None:
        super().__init__()
        self.match_rate_percentage, self.search_share = match_rate_percentage, search_share
        self.list_sizes: tuple[int, int] | None = None  # (search, display), when set
        self.customer_id, self.developer_token = customer_id, developer_token
        self.login_customer_id = login_customer_id
        self.user_list = f"customers/{customer_id}/userLists/{user_list_id}"
        self.client = (client_id, client_secret)
        self.refresh_token, self.token_ttl = refresh_token, token_ttl
        self.polls_to_finish = polls_to_finish
        self.max_identifiers = max_identifiers_per_request
        self.tokens_issued = 0
        self.jobs: dict[str, FakeJob] = {}
        self.members: dict[str, set[tuple[str, str]]] = {self.user_list: set()}
        # (user list, hashed identifier) -> the consent in effect for that member
        self.consents: dict[tuple[str, str], dict[str, str]] = {}
        self.poisoned: dict[str, str] = {}  # hash → offlineUserDataJobError code
        self._tokens: set[str] = set()
        self._fail_jobs = 0
        methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/{path:path}", self._ads, methods=methods),
            ]
        )

    # --- controls (the FakeVendor protocol, and more) ---------------------------------------

    def fail_jobs(self, n: int) -> None:
        """The next ``n`` jobs to finish end ``FAILED`` without applying their operations."""
        with self.lock:
            self._fail_jobs += n

    def poison(self, hashed: str, code: str = "MISSING_USER_IDENTIFIER") -> None:
        """Operations carrying ``hashed`` fail with ``offlineUserDataJobError.{code}``."""
        with self.lock:
            self.poisoned[hashed.lower()] = code

    def revoke_refresh_token(self) -> None:
        with self.lock:
            self.refresh_token = "revoked:" + self.refresh_token

    def expire_access_tokens(self) -> None:
        with self.lock:
            self._tokens.clear()

    def snapshot(self) -> dict[str, frozenset[tuple[str, str]]]:
        """Each user list's members as ``(hashedEmail|hashedPhoneNumber, hash)``."""
        with self.lock:
            return {name: frozenset(members) for name, members in self.members.items()}

    def max_items_per_request(self) -> int:
        return self.max_identifiers

    def consent_of(self, hashed: str, user_list: str | None = None) -> dict[str, str]:
        """The consent Google holds for a member (the user's, else the job's; {}: none)."""
        with self.lock:
            return dict(self.consents.get((user_list or self.user_list, hashed.lower()), {}))

    # --- HTTP ---------------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
        with self.lock:
            if form.get("grant_type") != "refresh_token":
                error, status = ("unsupported_grant_type", "Invalid grant_type"), 400
            elif (form.get("client_id"), form.get("client_secret")) != self.client:
                error, status = ("invalid_client", "Unauthorized"), 401
            elif form.get("refresh_token") != self.refresh_token:
                error, status = ("invalid_grant", "Token has been expired or revoked."), 400
            else:
                self.tokens_issued += 1
                token = f"ya29.fake-{self.tokens_issued}"
                self._tokens.add(token)
                error, status = None, 200
            if error is None:
                scope = "https://www.googleapis.com/auth/adwords"
                answer = {"access_token": token, "expires_in": self.token_ttl, "scope": scope}
                response = JSONResponse(answer | {"token_type": "Bearer"})
            else:
                response = JSONResponse({"error": error[0], "error_description": error[1]}, status)
            self._record(request, body, response.status_code)
        return response

    async def _ads(self, request: Request) -> Response:
        return await self._serve(request, lambda r, body: self._gate(r) or self._dispatch(r, body))

    def _gate(self, request: Request) -> Response | None:
        headers = request.headers
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token not in self._tokens:
            return failure(401, message="Request had invalid authentication credentials.")
        if headers.get("developer-token") != self.developer_token:
            return failure(401, ads_error("authenticationError", "DEVELOPER_TOKEN_INVALID"))
        login = headers.get("login-customer-id")
        if self.login_customer_id is None:
            allowed = login in (None, self.customer_id)
        else:
            allowed = login == self.login_customer_id
        customer = _CUSTOMER.match(request.url.path)
        if customer is not None and (not allowed or customer.group(1) != self.customer_id):
            return failure(403, ads_error("authorizationError", "USER_PERMISSION_DENIED"))
        if self._faults:
            return self._fault(*self._faults.popleft())
        return None

    def _fault(self, status: int, retry_after: int | None) -> Response:
        if status == 429:
            error = ads_error("quotaError", "RESOURCE_EXHAUSTED")
            if retry_after is not None:
                quota = {"rateScope": "DEVELOPER", "retryDelay": f"{retry_after}s"}
                error["details"] = {"quotaErrorDetails": quota}
        elif status >= 500:
            error = ads_error("internalError", "INTERNAL_ERROR")
        else:
            error = ads_error("requestError", "UNKNOWN") | {"message": f"Injected {status}."}
        response = failure(status, error)
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    def _dispatch(self, request: Request, body: bytes) -> Response:
        path = request.url.path
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            return failure(400, message="Invalid JSON payload received.")
        if request.method != "POST" or not isinstance(data, dict):
            return failure(404, message=f"Not found: {path}")
        if (jobs := _JOBS.fullmatch(path)) is not None:
            if jobs.group(3) == "create" and jobs.group(2) is None:
                return self._create(data)
            job = self.jobs.get(f"customers/{jobs.group(1)}/offlineUserDataJobs/{jobs.group(2)}")
            if job is not None and jobs.group(3) == "addOperations":
                return self._add(job, data)
            if job is not None and jobs.group(3) == "run":
                return self._run(job)
        if _SEARCH.fullmatch(path) is not None:
            return self._search(data)
        return failure(404, message=f"Not found: {path}")

    # --- the service --------------------------------------------------------------------------

    def _create(self, data: dict[str, Any]) -> Response:
        job = data.get("job")
        job = job if isinstance(job, dict) else {}
        metadata = job.get("customerMatchUserListMetadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        if job.get("type") != "CUSTOMER_MATCH_USER_LIST":
            return failure(400, ads_error("offlineUserDataJobError", "INVALID_USER_LIST_TYPE"))
        if metadata.get("userList") not in self.members:
            return failure(400, ads_error("offlineUserDataJobError", "INVALID_USER_LIST_ID"))
        consent = metadata.get("consent")
        consent = consent if isinstance(consent, dict) else {}
        if "DENIED" in consent.values():
            code = "CUSTOMER_NOT_ACCEPTED_CUSTOMER_DATA_TERMS"
            return failure(400, ads_error("offlineUserDataJobError", code))
        name = f"customers/{self.customer_id}/offlineUserDataJobs/{len(self.jobs) + 1000}"
        self.jobs[name] = FakeJob(name, metadata["userList"], consent)
        return JSONResponse({"resourceName": name})

    def _add(self, job: FakeJob, data: dict[str, Any]) -> Response:
        if job.status != "PENDING":
            return failure(400, ads_error("offlineUserDataJobError", "JOB_ALREADY_STARTED"))
        operations = data.get("operations")
        if not isinstance(operations, list) or not operations:
            return failure(400, ads_error("fieldError", "REQUIRED", "operations"))
        if sum(len(_user_data(op)[1]) for op in operations) > self.max_identifiers:
            return failure(400, ads_error("offlineUserDataJobError", "TOO_MANY_USER_IDENTIFIERS"))
        errors: list[dict[str, Any]] = []
        accepted: list[dict[str, Any]] = []
        verbs = {_user_data(op)[0] for op in job.operations}
        for index, op in enumerate(operations):
            problem = self._check(op, index, verbs)
            if problem is None:
                accepted.append(op)
                verbs.add(_user_data(op)[0])
            else:
                errors.append(problem)
        if errors and not data.get("enablePartialFailure"):
            return failure(400, *errors)
        job.operations.extend(accepted)
        if not errors:
            return JSONResponse({})
        message = f"Multiple errors in 'details'. First error: {errors[0]['message']}"
        return JSONResponse({"partialFailureError": rpc_status(3, errors, message)})

    def _check(self, op: Any, index: int, verbs: set[str]) -> dict[str, Any] | None:
        verb, identifiers = _user_data(op)
        at: tuple[str, int] = ("operations", index)

        def fail(code: str, *path: str | tuple[str, int]) -> dict[str, Any]:
            return ads_error("offlineUserDataJobError", code, at, *path)

        if verb == "":
            return ads_error("requestError", "REQUIRED_FIELD_MISSING", at)
        if verb == "removeAll":
            return fail("INVALID_OPERATION_ORDER") if verbs else None
        if ({"create", "remove"} - {verb}) & verbs:
            return fail("CONFLICTING_OPERATION")
        if not identifiers:
            return fail("MISSING_USER_IDENTIFIER", verb)
        consent = op[verb].get("consent", {})
        if not isinstance(consent, dict) or any(
            k not in _CONSENT_FIELDS or v not in _CONSENT_STATUSES for k, v in consent.items()
        ):
            return ads_error("fieldError", "INVALID_ENUM_VALUE", at, verb, "consent")
        if len(identifiers) > MAX_IDENTIFIERS_PER_OPERATION:
            return fail("TOO_MANY_USER_IDENTIFIERS", verb)
        for position, identifier in enumerate(identifiers):
            where = (verb, ("user_identifiers", position))
            keys = list(identifier) if isinstance(identifier, dict) else []
            if len(keys) != 1 or keys[0] not in _HASHED:
                return fail("INCOMPATIBLE_UPLOAD_KEY_TYPE", *where)
            value = identifier[keys[0]]
            if not isinstance(value, str) or not _SHA256.fullmatch(value):
                return fail("INVALID_SHA256_FORMAT", *where, _HASHED[keys[0]])
            if value.lower() in self.poisoned:
                return fail(self.poisoned[value.lower()], *where, _HASHED[keys[0]])
        return None

    def _run(self, job: FakeJob) -> Response:
        if job.status != "PENDING":
            return failure(400, ads_error("offlineUserDataJobError", "JOB_ALREADY_STARTED"))
        if any(j.status == "RUNNING" and j.user_list == job.user_list for j in self.jobs.values()):
            return failure(409, ads_error("databaseError", "CONCURRENT_MODIFICATION"))
        job.status, job.polls_left = "RUNNING", self.polls_to_finish
        return JSONResponse(
            {"name": job.resource_name.replace("offlineUserDataJobs", "operations")}
        )

    def _list_sizes(self, user_list: str) -> Response:
        mask = "userList.sizeForSearch,userList.sizeForDisplay,userList.matchRatePercentage"
        members = self.members.get(user_list)
        if members is None:
            return JSONResponse({"fieldMask": mask})
        matched = len(members) * self.match_rate_percentage // 100
        search, display = self.list_sizes or (int(matched * self.search_share), matched)
        row = {
            "resourceName": user_list,
            "sizeForSearch": str(search),
            "sizeForDisplay": str(display),
            "matchRatePercentage": self.match_rate_percentage,
        }
        return JSONResponse({"results": [{"userList": row}], "fieldMask": mask})

    def _search(self, data: dict[str, Any]) -> Response:
        listed = _LIST_QUERY.search(str(data.get("query", "")))
        if listed is not None:
            return self._list_sizes(listed.group(1))
        match = _JOB_QUERY.search(str(data.get("query", "")))
        if match is None:
            code = "PROHIBITED_RESOURCE_TYPE_IN_FROM_CLAUSE"
            return failure(400, ads_error("queryError", code))
        mask = "offlineUserDataJob.resourceName,offlineUserDataJob.status"
        job = self.jobs.get(match.group(1))
        if job is None:
            return JSONResponse({"fieldMask": mask})
        if job.status == "RUNNING":
            if job.polls_left > 0:
                job.polls_left -= 1
            else:
                self._finish(job)
        row: dict[str, Any] = {"resourceName": job.resource_name, "status": job.status}
        if job.failure_reason:
            row["failureReason"] = job.failure_reason
        return JSONResponse({"results": [{"offlineUserDataJob": row}], "fieldMask": mask})

    def _finish(self, job: FakeJob) -> None:
        if self._fail_jobs > 0:
            self._fail_jobs -= 1
            job.status, job.failure_reason = "FAILED", "UNKNOWN"
            return
        members = self.members[job.user_list]
        for op in job.operations:
            verb, identifiers = _user_data(op)
            if verb == "removeAll":
                members.clear()
                self.consents = {k: v for k, v in self.consents.items() if k[0] != job.user_list}
            consent = (op[verb].get("consent") or job.consent) if verb == "create" else {}
            for identifier in identifiers:
                key, value = next(iter(identifier.items()))
                (members.add if verb == "create" else members.discard)((key, value.lower()))
                if verb == "create" and consent:
                    self.consents[(job.user_list, value.lower())] = dict(consent)
                else:
                    self.consents.pop((job.user_list, value.lower()), None)
        job.status = "SUCCESS"
