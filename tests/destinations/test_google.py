"""Google Customer Match destination: the shared suite against the fake, and Google specifics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tactful.config.models import DestinationSettings
from tactful.destinations import hashing, registry
from tactful.destinations.base import Identifiers, Item, ItemKind
from tactful.destinations.google import GoogleCustomerMatch
from tactful.destinations.google_jobs import describe_error, failed_operations, plan
from tactful.testing.conformance import Conformance, conformance_tests
from tactful.testing.fakes.google import FakeGoogleAds
from tactful.testing.sim.server import run_in_thread

CID = "1234567890"
LIST = f"customers/{CID}/userLists/987654321"
AT = datetime(2026, 3, 1, tzinfo=UTC)
CONSENT = {"adUserData": "GRANTED", "adPersonalization": "GRANTED"}


def item(
    i: int,
    kind: ItemKind = "audience_add",
    person: str | None = None,
    consent: dict[str, bool] | None = None,
    **ids: Any,
) -> Item:
    identifiers = Identifiers(**ids) if ids else Identifiers(emails=(f"person{i}@example.com",))
    return Item(
        f"k{i}-{kind}",
        kind,
        person or f"p{i}",
        AT,
        identifiers,
        segment="vip",
        consent={"ads": True} if consent is None else consent,
    )


def email_member(i: int) -> tuple[str, str]:
    return ("hashedEmail", hashing.sha256_hex(f"person{i}@example.com"))


class Clock:
    """A monotonic clock that ``sleep`` advances (no real waiting)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def destination(base_url: str, clock: Clock | None = None, **kwargs: Any) -> GoogleCustomerMatch:
    clock = clock or Clock()
    options: dict[str, Any] = {
        "name": "google",
        "customer_id": "123-456-7890",
        "user_list_id": "987654321",
        "developer_token": "dev-token",
        "client_id": "client-id",
        "client_secret": "client-secret",
        "refresh_token": "refresh-token",
        "base_url": base_url,
        "sleep": clock.sleep,
        "clock": clock,
    }
    return GoogleCustomerMatch(**(options | kwargs))


def bodies(fake: FakeGoogleAds, suffix: str) -> list[Any]:
    return [json.loads(r.body) for r in fake.data_requests() if r.path.endswith(suffix)]


class TestGoogleConformance(Conformance):
    def make(self, base_url: str) -> GoogleCustomerMatch:
        return destination(base_url, identifiers_per_request=10)

    def make_fake(self) -> Any:
        return FakeGoogleAds(max_identifiers_per_request=10)

    def items(self, n: int) -> list[Item]:
        return [item(i) for i in range(n)]

    def ordered(self) -> list[Item]:
        return [item(1), item(1, "audience_remove")]


conformance_tests(TestGoogleConformance)


@pytest.fixture
def served() -> Iterator[tuple[FakeGoogleAds, str]]:
    fake = FakeGoogleAds(login_customer_id="1112223333")
    base_url, stop = run_in_thread(fake.app)
    try:
        yield fake, base_url
    finally:
        stop()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(served: tuple[FakeGoogleAds, str], request: pytest.FixtureRequest) -> Any:
    """Build a destination against the served fake (closed at teardown)."""

    def build(clock: Clock | None = None, **kwargs: Any) -> GoogleCustomerMatch:
        options = {"login_customer_id": "111-222-3333"} | kwargs
        dest = destination(served[1], clock, **options)
        request.addfinalizer(dest.close)
        return dest

    return build


@pytest.fixture
def google(
    served: tuple[FakeGoogleAds, str], make: Any, clock: Clock
) -> tuple[FakeGoogleAds, GoogleCustomerMatch]:
    return served[0], make(clock)


# --- OAuth -----------------------------------------------------------------------------------


def test_token_is_refreshed_once_and_cached_until_expiry(google: Any, clock: Clock) -> None:
    fake, dest = google
    assert [o.kind for o in dest.send([item(0)])] == ["ok"]
    assert [o.kind for o in dest.send([item(1)])] == ["ok"]
    assert fake.tokens_issued == 1
    token_request = next(r for r in fake.requests if r.path == "/token")
    assert dict(httpx.QueryParams(token_request.body.decode())) == {
        "grant_type": "refresh_token",
        "client_id": "client-id",
        "client_secret": "client-secret",
        "refresh_token": "refresh-token",
    }
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    clock.now += 3599 - 60  # within a minute of expires_in: refresh
    assert dest.send([item(2)])[0].kind == "ok"
    assert fake.tokens_issued == 2


def test_every_ads_request_carries_the_headers(google: Any) -> None:
    fake, dest = google
    dest.send([item(0)])
    requests = fake.data_requests()
    assert requests and all(r.status == 200 for r in requests)
    for request in requests:
        assert request.headers["authorization"] == "Bearer ya29.fake-1"
        assert request.headers["developer-token"] == "dev-token"
        assert request.headers["login-customer-id"] == "1112223333"  # dashes stripped


def test_a_401_refreshes_the_token_and_retries_once(google: Any) -> None:
    fake, dest = google
    dest.send([item(0)])
    fake.expire_access_tokens()
    assert dest.send([item(1)])[0].kind == "ok"
    assert fake.tokens_issued == 2
    assert fake.snapshot()[LIST] == {email_member(0), email_member(1)}


def test_invalid_grant_rejects_with_reauthorize(google: Any) -> None:
    fake, dest = google
    fake.revoke_refresh_token()
    outcomes = dest.send([item(0), item(1)])
    assert [o.kind for o in outcomes] == ["reject", "reject"]
    assert outcomes[0].error.startswith("refresh_token rejected: re-authorize")
    assert "invalid_grant" in outcomes[0].error
    assert fake.data_requests() == []


def test_wrong_client_secret_is_a_clear_reject(make: Any) -> None:
    outcome = make(client_secret="nope").send([item(0)])[0]
    assert outcome.kind == "reject"
    assert "check client_id and client_secret" in outcome.error


def test_wrong_developer_token_is_rejected(make: Any) -> None:
    outcome = make(developer_token="bad").send([item(0)])[0]
    assert (outcome.kind, outcome.status) == ("reject", 401)
    assert "DEVELOPER_TOKEN_INVALID" in outcome.error


# --- exact bodies ------------------------------------------------------------------------------


def test_exact_requests_for_an_add(google: Any) -> None:
    fake, dest = google
    person = item(0, emails=(" Ada@Example.COM ", "ada@example.com"), phones=("+1 555 010 0000",))
    assert person.consent == {"ads": True}
    assert dest.send([person])[0].kind == "ok"
    paths = [r.path for r in fake.data_requests()]
    job = f"customers/{CID}/offlineUserDataJobs/1000"
    assert paths == [
        f"/v26/customers/{CID}/offlineUserDataJobs:create",
        f"/v26/{job}:addOperations",
        f"/v26/{job}:run",
        f"/v26/customers/{CID}/googleAds:search",
        f"/v26/customers/{CID}/googleAds:search",
    ]
    assert bodies(fake, ":create") == [
        {
            "job": {
                "type": "CUSTOMER_MATCH_USER_LIST",
                "customerMatchUserListMetadata": {"userList": LIST},
            }
        }
    ]
    email, phone = hashing.sha256_hex("ada@example.com"), hashing.sha256_hex("+15550100000")
    assert bodies(fake, ":addOperations") == [
        {
            "operations": [
                {
                    "create": {
                        "userIdentifiers": [{"hashedEmail": email}, {"hashedPhoneNumber": phone}],
                        "consent": CONSENT,
                    }
                }
            ],
            "enablePartialFailure": True,
        }
    ]
    assert bodies(fake, ":run") == [{}]
    query = bodies(fake, "googleAds:search")[0]["query"]
    assert "FROM offline_user_data_job" in query
    assert f"offline_user_data_job.resource_name = '{job}'" in query
    assert fake.snapshot()[LIST] == {("hashedEmail", email), ("hashedPhoneNumber", phone)}


def test_consent_signals_follow_each_persons_stated_ads_consent(google: Any) -> None:
    """Issue 18 §1: ``adUserData`` / ``adPersonalization`` are the person's, not a constant:
    stated consent → ``GRANTED`` per member; never stated → no signal at all (Google records
    it as unspecified), and no job-level consent that would cover everyone."""
    fake, dest = google
    stated, unstated = item(0), item(1, consent={})
    other_purpose = item(2, consent={"email": True})
    assert [o.kind for o in dest.send([stated, unstated, other_purpose])] == ["ok"] * 3
    metadata = bodies(fake, ":create")[0]["job"]["customerMatchUserListMetadata"]
    assert "consent" not in metadata
    operations = bodies(fake, ":addOperations")[0]["operations"]
    assert [op["create"].get("consent") for op in operations] == [CONSENT, None, None]
    assert fake.consent_of(email_member(0)[1]) == CONSENT
    assert fake.consent_of(email_member(1)[1]) == {}
    assert fake.consent_of(email_member(2)[1]) == {}
    assert fake.snapshot()[LIST] == {email_member(0), email_member(1), email_member(2)}


def test_the_fake_refuses_an_unknown_consent_status(served: Any) -> None:
    fake, base_url = served
    dest = destination(base_url, login_customer_id="111-222-3333")
    try:
        dest.send([item(0)])
        job = bodies(fake, ":create")[0]
        created = httpx.post(
            f"{base_url}/v26/customers/{CID}/offlineUserDataJobs:create",
            json=job,
            headers={
                "authorization": "Bearer ya29.fake-1",
                "developer-token": "dev-token",
                "login-customer-id": "1112223333",
            },
        ).json()["resourceName"]
        hashed = email_member(3)[1]
        bad = {
            "create": {
                "userIdentifiers": [{"hashedEmail": hashed}],
                "consent": {"adUserData": "YES"},
            }
        }
        answer = httpx.post(
            f"{base_url}/v26/{created}:addOperations",
            json={"operations": [bad], "enablePartialFailure": True},
            headers={
                "authorization": "Bearer ya29.fake-1",
                "developer-token": "dev-token",
                "login-customer-id": "1112223333",
            },
        ).json()
        assert "INVALID_ENUM_VALUE" in json.dumps(answer["partialFailureError"])
    finally:
        dest.close()


def test_a_remove_job_has_no_consent_and_remove_operations(google: Any) -> None:
    fake, dest = google
    dest.send([item(0)])
    assert dest.send([item(0, "audience_remove")])[0].kind == "ok"
    create = bodies(fake, ":create")[1]
    assert create["job"]["customerMatchUserListMetadata"] == {"userList": LIST}
    operations = bodies(fake, ":addOperations")[1]["operations"]
    assert operations == [{"remove": {"userIdentifiers": [{"hashedEmail": email_member(0)[1]}]}}]
    assert fake.snapshot()[LIST] == frozenset()


# --- chunking ----------------------------------------------------------------------------------


def test_operations_are_chunked_within_the_identifier_limit(served: Any, make: Any) -> None:
    fake = served[0]
    fake.max_identifiers = 25
    many = item(99, emails=tuple(f"x{n}@example.com" for n in range(25)))
    outcomes = make(identifiers_per_request=25).send([item(i) for i in range(7)] + [many])
    assert [o.kind for o in outcomes] == ["ok"] * 8
    sizes = [
        [len(next(iter(op.values()))["userIdentifiers"]) for op in body["operations"]]
        for body in bodies(fake, ":addOperations")
    ]
    # 7 one-identifier operations, then the 25-identifier person as 20 + 5 (20 per UserData)
    assert sizes == [[1] * 7, [20, 5]]
    assert len(bodies(fake, ":create")) == 1  # one job, several addOperations requests
    assert len(fake.snapshot()[LIST]) == 7 + 25


def test_the_fake_refuses_requests_over_the_limit(served: Any, make: Any) -> None:
    served[0].max_identifiers = 10
    outcomes = make(identifiers_per_request=11).send([item(i) for i in range(11)])
    assert {o.kind for o in outcomes} == {"reject"}
    assert "TOO_MANY_USER_IDENTIFIERS" in outcomes[0].error


def test_identifiers_per_request_is_bounded_by_the_documented_limit() -> None:
    with pytest.raises(ValueError, match="identifiers_per_request"):
        destination("http://127.0.0.1:9", identifiers_per_request=100_001)


# --- order ------------------------------------------------------------------------------------


def test_add_then_remove_of_one_person_runs_as_two_jobs_in_order(google: Any) -> None:
    fake, dest = google
    outcomes = dest.send([item(0), item(0, "audience_remove"), item(1)])
    assert [o.kind for o in outcomes] == ["ok", "ok", "ok"]
    creates = [b["job"]["customerMatchUserListMetadata"] for b in bodies(fake, ":create")]
    assert creates == [{"userList": LIST}, {"userList": LIST}]
    adds, removes = (b["operations"] for b in bodies(fake, ":addOperations"))
    assert [next(iter(op)) for op in adds] == ["create", "create"]  # person 1 joined the 1st job
    assert [next(iter(op)) for op in removes] == ["remove"]
    assert fake.snapshot()[LIST] == {email_member(1)}


def test_remove_then_add_ends_with_the_person_in(google: Any) -> None:
    fake, dest = google
    dest.send([item(0)])
    outcomes = dest.send([item(0, "audience_remove"), item(0)])
    assert [o.kind for o in outcomes] == ["ok", "ok"]
    assert fake.snapshot()[LIST] == {email_member(0)}


def test_plan_keeps_order_across_shared_identifiers() -> None:
    shared = ("family@example.com",)
    items = [
        item(0, emails=shared),
        item(1, "audience_remove", person="p1", emails=shared),
        item(2),
        item(3, emails=shared),
    ]
    phases, problems = plan(items)
    assert problems == {}
    assert [(p.kind, p.items) for p in phases] == [
        ("audience_add", [0, 2]),
        ("audience_remove", [1]),
        ("audience_add", [3]),
    ]


def test_items_without_identifiers_are_skipped_and_other_kinds_rejected(google: Any) -> None:
    dest = google[1]
    nothing = item(0, external_ids=("crm-1",))
    event = Item("e", "event", "p9", AT, Identifiers(emails=("a@example.com",)), name="x")
    outcomes = dest.send([nothing, event, item(2)])
    assert [o.kind for o in outcomes] == ["skip", "reject", "ok"]
    assert outcomes[0].error == "no usable email or phone to match on"
    assert "unsupported item kind" in outcomes[1].error


# --- failures ---------------------------------------------------------------------------------


def test_partial_failures_reject_only_their_items(google: Any) -> None:
    fake, dest = google
    fake.poison(email_member(1)[1])
    outcomes = dest.send([item(0), item(1), item(2)])
    assert [o.kind for o in outcomes] == ["ok", "reject", "ok"]
    assert "MISSING_USER_IDENTIFIER" in outcomes[1].error
    assert fake.snapshot()[LIST] == {email_member(0), email_member(2)}


def test_poll_timeout_is_retry_and_the_next_send_waits_for_that_job(
    served: Any, make: Any, clock: Clock
) -> None:
    fake = served[0]
    fake.polls_to_finish = 10**6
    dest = make(clock, poll_timeout=300.0)
    outcomes = dest.send([item(0), item(1, "audience_remove")])
    assert [o.kind for o in outcomes] == ["retry", "retry"]
    assert "still RUNNING after 300s" in outcomes[0].error
    assert outcomes[1].error.startswith("not started")
    assert len(bodies(fake, ":create")) == 1
    assert sum(clock.slept) <= 300 and clock.slept[:3] == [2.0, 4.0, 8.0]
    # The job is still running at Google: the next send waits for it before a new job.
    again = dest.send([item(2)])
    assert again[0].kind == "retry" and "still RUNNING" in again[0].error
    assert len(bodies(fake, ":create")) == 1
    next(iter(fake.jobs.values())).polls_left = 0  # Google finishes it
    fake.polls_to_finish = 1
    assert dest.send([item(2)])[0].kind == "ok"
    assert fake.snapshot()[LIST] == {email_member(0), email_member(2)}


def test_a_failed_job_is_retry_and_later_jobs_do_not_start(google: Any) -> None:
    fake, dest = google
    fake.fail_jobs(1)
    outcomes = dest.send([item(0), item(0, "audience_remove")])
    assert [o.kind for o in outcomes] == ["retry", "retry"]
    assert "FAILED: UNKNOWN" in outcomes[0].error
    assert outcomes[1].error.startswith("not started")
    assert len(bodies(fake, ":create")) == 1
    assert fake.snapshot()[LIST] == frozenset()


def test_resource_exhausted_is_retry_with_googles_delay(google: Any) -> None:
    fake, dest = google
    fake.fail_next(1, 429, retry_after=30)
    outcome = dest.send([item(0)])[0]
    assert (outcome.kind, outcome.retry_after, outcome.status) == ("retry", 30.0, 429)
    assert "RESOURCE_EXHAUSTED" in outcome.error


def test_retry_delay_is_read_from_the_failure_details() -> None:
    body = {
        "error": {
            "code": 429,
            "status": "RESOURCE_EXHAUSTED",
            "details": [
                {
                    "errors": [
                        {
                            "errorCode": {"quotaError": "RESOURCE_EXHAUSTED"},
                            "message": "Too many requests.",
                            "details": {"quotaErrorDetails": {"retryDelay": "12.5s"}},
                        }
                    ]
                }
            ],
        }
    }
    text, delay = describe_error(body)
    assert delay == 12.5
    assert text == "RESOURCE_EXHAUSTED; RESOURCE_EXHAUSTED: Too many requests."


def test_not_allowlisted_explains_the_data_manager_api() -> None:
    body = {
        "error": {
            "status": "PERMISSION_DENIED",
            "details": [
                {
                    "errors": [
                        {
                            "errorCode": {
                                "notAllowlistedError": "CUSTOMER_NOT_ALLOWLISTED_FOR_THIS_FEATURE"
                            }
                        }
                    ]
                }
            ],
        }
    }
    assert "Data Manager API" in describe_error(body)[0]


def test_concurrent_modification_is_retry(google: Any) -> None:
    fake, dest = google
    fake.fail_next(1, 409)
    assert dest.send([item(0)])[0].kind == "retry"


# --- the fake itself --------------------------------------------------------------------------


def test_fake_reports_malformed_hashes_and_mixing_per_operation(served: Any) -> None:
    base_url = served[1]
    token = httpx.post(
        f"{base_url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "client-id",
            "client_secret": "client-secret",
            "refresh_token": "refresh-token",
        },
    ).json()["access_token"]
    headers = {
        "authorization": f"Bearer {token}",
        "developer-token": "dev-token",
        "login-customer-id": "1112223333",
    }
    root = f"{base_url}/v26/customers/{CID}"
    job = httpx.post(
        f"{root}/offlineUserDataJobs:create",
        json={
            "job": {
                "type": "CUSTOMER_MATCH_USER_LIST",
                "customerMatchUserListMetadata": {"userList": LIST},
            }
        },
        headers=headers,
    ).json()["resourceName"]
    good = {"hashedEmail": email_member(0)[1]}
    operations = [
        {"create": {"userIdentifiers": [good]}},
        {"create": {"userIdentifiers": [{"hashedEmail": "not-a-hash"}]}},
        {"remove": {"userIdentifiers": [good]}},
    ]
    answer = httpx.post(
        f"{base_url}/v26/{job}:addOperations",
        json={"operations": operations, "enablePartialFailure": True},
        headers=headers,
    ).json()
    assert failed_operations(answer["partialFailureError"]) == {
        1: "INVALID_SHA256_FORMAT: The SHA256 encoded value is malformed.",
        2: "CONFLICTING_OPERATION: Mixing creation and removal of offline data in the same job "
        "is not allowed.",
    }
    strict = httpx.post(
        f"{base_url}/v26/{job}:addOperations", json={"operations": operations[1:2]}, headers=headers
    )
    assert strict.status_code == 400
    assert strict.json()["error"]["status"] == "INVALID_ARGUMENT"
    no_login = {k: v for k, v in headers.items() if k != "login-customer-id"}
    assert httpx.post(f"{root}/googleAds:search", json={}, headers=no_login).status_code == 403


# --- config ----------------------------------------------------------------------------------


def test_registry_creates_it_from_config(served: Any) -> None:
    base_url = served[1]
    config = DestinationSettings.model_validate(
        {
            "name": "google-ads",
            "type": "google_customer_match",
            "segment": "vip",
            "customer_id": "123-456-7890",
            "user_list_id": 987654321,
            "developer_token": "dev-token",
            "login_customer_id": "111-222-3333",
            "client_id": "client-id",
            "client_secret": "client-secret",
            "refresh_token": "refresh-token",
            "base_url": base_url,
        }
    )
    dest = registry.create(config)
    assert isinstance(dest, GoogleCustomerMatch)
    assert (dest.purpose, dest.segments, dest.user_list) == ("ads", ["vip"], LIST)
    assert dest.capabilities.kinds == {"audience_add", "audience_remove"}
    dest.close()


def test_create_names_missing_keys() -> None:
    config = DestinationSettings.model_validate(
        {"name": "g", "type": "google_customer_match", "segment": "vip", "customer_id": "1"}
    )
    with pytest.raises(ValueError, match="user_list_id"):
        registry.create(config)


# --- the platform's report (issue 21 §3) ----------------------------------------------------


def test_audience_report_reads_the_user_lists_sizes_and_match_rate(google: Any) -> None:
    fake, dest = google
    assert [o.kind for o in dest.send([item(i) for i in range(10)])] == ["ok"] * 10
    report = dest.audience_report()
    # 10 members at 70%: 7 matched on Display, 80% of them (5) on Search
    assert (report.audience_lower, report.audience_upper, report.match_rate) == (5, 7, "70%")
    assert report.audience_size == "5–7"
    [query] = [b["query"] for b in bodies(fake, "googleAds:search") if "user_list" in b["query"]]
    assert query == (
        "SELECT user_list.size_for_search, user_list.size_for_display,"
        " user_list.match_rate_percentage FROM user_list"
        f" WHERE user_list.resource_name = '{LIST}'"
    )
    fake.list_sizes, fake.match_rate_percentage = (1200, 1200), 41
    again = dest.audience_report()
    assert (again.audience_lower, again.audience_upper, again.match_rate) == (1200, 1200, "41%")


def test_audience_report_failures_are_unreadable_not_delivery_errors(google: Any) -> None:
    from tactful.destinations.base import PlatformUnreadable

    fake, dest = google
    fake.fail_next(1, 503)
    with pytest.raises(PlatformUnreadable, match="HTTP 503"):
        dest.audience_report()
    fake.members.pop(LIST)  # a list Google does not know (deleted)
    with pytest.raises(PlatformUnreadable, match="not found"):
        dest.audience_report()
