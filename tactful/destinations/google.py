"""Google Ads Customer Match destination (``google_customer_match``), over the REST API.

Consumes ``audience_add`` / ``audience_remove`` items. Per ``send``:

1. An access token (``google_oauth.AccessToken``), cached until a minute before
   ``expires_in``. A 401 from the Ads API drops it and retries the call once with a fresh
   one. ``invalid_grant`` rejects the batch with "refresh_token rejected: re-authorize".
2. The batch is planned into single-kind jobs (``google_jobs.plan``): Google forbids mixing
   creates and removes in one job, and per-person order is kept by running jobs in order.
3. Per job: ``POST /v26/customers/{cid}/offlineUserDataJobs:create`` (``CUSTOMER_MATCH_USER_LIST``
   with the user list; no job-level consent: each create operation carries its person's own
   ``consent``, see ``google_jobs.user_consent``), then
   ``…/offlineUserDataJobs/{id}:addOperations`` in chunks of at most ``identifiers_per_request``
   identifiers with ``enablePartialFailure``, then ``…:run``, then polling
   ``googleAds:search`` for the job's status with backoff until ``SUCCESS`` or ``FAILED``, at
   most ``poll_timeout`` seconds (``sleep`` and ``clock`` are injectable).

Outcomes: per-operation partial failures reject their items; RPC errors go through
``classify_status`` (429 ``RESOURCE_EXHAUSTED`` and 5xx retry, with ``Retry-After`` or Google's
``retryDelay``); a ``FAILED`` job or a poll timeout retries its items; when a job does not
complete, later jobs of the batch are not started and their items retry. A job still running
at the end of a send is awaited before the next send creates one (concurrent work on one list
fails with ``CONCURRENT_MODIFICATION``, and per-person order depends on it).

``audience_report`` reads the user list's size and match rate with ``googleAds:search``:
``SELECT user_list.size_for_search, user_list.size_for_display,
user_list.match_rate_percentage FROM user_list WHERE user_list.resource_name = '…'``
(https://developers.google.com/google-ads/api/reference/rpc/v24/UserList: estimated users
for Search and for the Display Network, and the Customer Match list's match rate, 0–100; the
REST answer carries the sizes, int64, as JSON strings). The two sizes are shown as the
audience's range (the smaller and the larger), the match rate as ``63%``.

Headers: ``Authorization: Bearer``, ``developer-token``, and ``login-customer-id`` when set
(customer ids are sent as digits, without dashes). A ``base_url`` (the fake, a simulator)
replaces both hosts: the Ads API under it and the token endpoint at ``{base_url}/token``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx
from pydantic import Field

from tactful.config.models import DestinationSettings
from tactful.core.platform import PlatformReport
from tactful.destinations.base import (
    Capabilities,
    Item,
    Outcome,
    PlatformUnreadable,
    Purpose,
    classify_status,
    parse_retry_after,
)
from tactful.destinations.google_jobs import (
    API_VERSION,
    JOB_KINDS,
    MAX_IDENTIFIERS_PER_REQUEST,
    NO_MATCH,
    RECOMMENDED_IDENTIFIERS_PER_REQUEST,
    Phase,
    describe_error,
    failed_operations,
    plan,
)
from tactful.destinations.google_oauth import CallFailed, GoogleOAuthConfig, OAuthKeys, signed_in
from tactful.destinations.spec import AUDIENCE, DestinationSpec, Secret, Text

ADS_URL = "https://googleads.googleapis.com"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MAX_BATCH = 10_000


def _digits(customer_id: str) -> str:
    return customer_id.replace("-", "").strip()


class GoogleCustomerMatch:
    type = "google_customer_match"

    def __init__(
        self,
        *,
        name: str,
        customer_id: str,
        user_list_id: str,
        developer_token: str,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        login_customer_id: str | None = None,
        base_url: str | None = None,
        purpose: Purpose = "ads",
        segments: Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        max_batch: int = MAX_BATCH,
        identifiers_per_request: int = RECOMMENDED_IDENTIFIERS_PER_REQUEST,
        poll_timeout: float = 600.0,
        poll_interval: float = 2.0,
        max_poll_interval: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 1 <= identifiers_per_request <= MAX_IDENTIFIERS_PER_REQUEST:
            raise ValueError(f"identifiers_per_request must be 1..{MAX_IDENTIFIERS_PER_REQUEST}")
        self.name = name
        self.purpose: Purpose = purpose
        self.segments = segments
        self.capabilities = Capabilities(max_batch=max_batch, kinds=JOB_KINDS)
        self.customer_id = _digits(customer_id)
        self.user_list = (
            user_list_id
            if user_list_id.startswith("customers/")
            else f"customers/{self.customer_id}/userLists/{user_list_id.strip()}"
        )
        self._ads_url = (base_url or ADS_URL).rstrip("/")
        self._headers = {"developer-token": developer_token}
        if login_customer_id and _digits(login_customer_id):
            self._headers["login-customer-id"] = _digits(login_customer_id)
        self._chunk = identifiers_per_request
        self._poll_timeout = poll_timeout
        self._poll_interval = poll_interval
        self._max_poll_interval = max_poll_interval
        self._sleep = sleep
        self._clock = clock
        self._pending: str | None = None  # a job run by an earlier send, not seen finished
        keys = OAuthKeys(client_id, client_secret, refresh_token)
        self._client, self._token = signed_in(base_url, transport, TIMEOUT, keys, clock)

    # --- send -----------------------------------------------------------------------------

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(items)
        phases, problems = plan(items, self.purpose)
        for index, error in problems.items():
            outcomes[index] = Outcome("skip" if error == NO_MATCH else "reject", error)
        try:
            if self._pending is not None:
                self._wait(self._pending)
        except CallFailed as abort:
            return [o or abort.outcome for o in outcomes]
        for number, phase in enumerate(phases):
            try:
                self._run(phase, outcomes)
            except CallFailed as abort:
                for index in phase.items:
                    outcomes[index] = outcomes[index] or abort.outcome
                skipped = Outcome(
                    "retry",
                    f"not started: an earlier job of this batch did not complete ({abort})",
                    abort.outcome.retry_after,
                )
                for later in phases[number + 1 :]:
                    for index in later.items:
                        outcomes[index] = skipped
                break
        return [o or Outcome.ok() for o in outcomes]

    def _run(self, phase: Phase, outcomes: list[Outcome | None]) -> None:
        metadata: dict[str, Any] = {"userList": self.user_list}
        job_body = {"type": "CUSTOMER_MATCH_USER_LIST", "customerMatchUserListMetadata": metadata}
        created = self._call(
            f"customers/{self.customer_id}/offlineUserDataJobs:create", {"job": job_body}
        )
        job = created.get("resourceName")
        if not isinstance(job, str) or not job:
            raise CallFailed(
                Outcome("retry", "offlineUserDataJobs:create returned no resourceName")
            )
        for start, end in phase.chunks(self._chunk):
            body = {"operations": phase.operations[start:end], "enablePartialFailure": True}
            answer = self._call(f"{job}:addOperations", body)
            for offset, error in failed_operations(answer.get("partialFailureError")).items():
                if 0 <= offset < end - start:
                    outcomes[phase.owners[start + offset]] = Outcome("reject", error)
        if all(outcomes[index] is not None for index in phase.items):
            return  # nothing left to run; a job never run is discarded by Google
        self._call(f"{job}:run", {})
        self._pending = job
        self._wait(job)

    def _wait(self, job: str) -> None:
        """Poll the job until it finishes; ``CallFailed`` on ``FAILED`` or after the timeout."""
        deadline = self._clock() + self._poll_timeout
        delay = self._poll_interval
        while True:
            self._sleep(delay)
            status, reason = self._status(job)
            if status == "SUCCESS":
                self._pending = None
                return
            if status == "FAILED":
                self._pending = None
                raise CallFailed(
                    Outcome("retry", f"job {job} FAILED: {reason or 'no reason given'}")
                )
            delay = min(delay * 2, self._max_poll_interval)
            if self._clock() + delay > deadline:
                raise CallFailed(
                    Outcome("retry", f"job {job} still {status} after {self._poll_timeout:g}s")
                )

    def _status(self, job: str) -> tuple[str, str]:
        query = (
            "SELECT offline_user_data_job.resource_name, offline_user_data_job.status,"
            " offline_user_data_job.failure_reason FROM offline_user_data_job"
            f" WHERE offline_user_data_job.resource_name = '{job}'"
        )
        answer = self._call(f"customers/{self.customer_id}/googleAds:search", {"query": query})
        rows = answer.get("results") or [None]
        found = rows[0].get("offlineUserDataJob") if isinstance(rows[0], dict) else None
        if not isinstance(found, dict):
            raise CallFailed(Outcome("retry", f"job {job} not found by googleAds:search"))
        return str(found.get("status", "UNKNOWN")), str(found.get("failureReason", ""))

    # --- the platform's report ---------------------------------------------------------------

    def audience_report(self) -> PlatformReport:
        """The user list's sizes (Search, Display) and match rate as Google reports them;
        ``PlatformUnreadable`` when Google does not answer with them."""
        query = (
            "SELECT user_list.size_for_search, user_list.size_for_display,"
            " user_list.match_rate_percentage FROM user_list"
            f" WHERE user_list.resource_name = '{self.user_list}'"
        )
        try:
            answer = self._call(f"customers/{self.customer_id}/googleAds:search", {"query": query})
        except CallFailed as exc:
            raise PlatformUnreadable(exc.outcome.error) from exc
        rows = answer.get("results") or [None]
        found = rows[0].get("userList") if isinstance(rows[0], dict) else None
        if not isinstance(found, dict):
            raise PlatformUnreadable(f"user list {self.user_list} not found by googleAds:search")
        sizes = [_count(found.get(k)) for k in ("sizeForSearch", "sizeForDisplay")]
        known = [n for n in sizes if n is not None]
        rate = _count(found.get("matchRatePercentage"))
        return PlatformReport(
            audience_lower=min(known) if known else None,
            audience_upper=max(known) if known else None,
            match_rate=f"{rate}%" if rate is not None else "",
        )

    # --- HTTP -----------------------------------------------------------------------------

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to the Ads API; the JSON answer, or ``CallFailed`` with the classified outcome."""
        url = f"{self._ads_url}/{API_VERSION}/{path}"
        for attempt in (1, 2):
            headers = {**self._headers, "authorization": f"Bearer {self._token.get()}"}
            try:
                response = self._client.post(url, json=body, headers=headers)
            except httpx.TransportError as e:
                raise CallFailed(Outcome("retry", f"{path}: {type(e).__name__}: {e}")) from e
            if response.status_code == 401 and attempt == 1:
                self._token.forget()  # expired or revoked early: refresh once
                continue
            return self._answer(path, response)
        raise AssertionError("unreachable")

    def _answer(self, path: str, response: httpx.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.is_success and isinstance(data, dict):
            return data
        text, delay = describe_error(data)
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        error = f"{path}: HTTP {response.status_code}" + (f" {text}" if text else "")
        if response.is_success:
            raise CallFailed(Outcome("retry", f"{error}: answer is not a JSON object"))
        status = response.status_code
        raise CallFailed(
            classify_status(status, retry_after if retry_after is not None else delay, error)
        )

    def close(self) -> None:
        self._client.close()


def _count(value: Any) -> int | None:
    """A non-negative integer from Google's JSON (int64 arrive as strings), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and value >= 0 else None


class CustomerMatchConfig(GoogleOAuthConfig):
    customer_id: Text = Field(description="the Google Ads customer id")
    user_list_id: Text = Field(description="the Customer Match user list id")
    developer_token: Secret = Field(description="the Google Ads API developer token")
    login_customer_id: Text | None = Field(
        default=None, description="the manager account id, when a manager account signs in"
    )


SPEC = DestinationSpec(
    type=GoogleCustomerMatch.type,
    purpose="ads",
    vendor="Google",
    summary="a Google Ads Customer Match list (offline user data jobs; allowlisted accounts)",
    config=CustomerMatchConfig,
    roles=AUDIENCE,
)


def create(
    config: DestinationSettings, *, transport: httpx.BaseTransport | None = None
) -> GoogleCustomerMatch:
    keys = CustomerMatchConfig.of(config)
    return GoogleCustomerMatch(
        name=config.name,
        customer_id=keys.customer_id,
        user_list_id=keys.user_list_id,
        developer_token=keys.developer_token,
        client_id=keys.client_id,
        client_secret=keys.client_secret,
        refresh_token=keys.refresh_token,
        login_customer_id=keys.login_customer_id,
        base_url=config.base_url,
        purpose=config.purpose,
        segments=config.segment_names,
        transport=transport,
    )
