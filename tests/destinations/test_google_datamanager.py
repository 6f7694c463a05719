"""Google Customer Match through the Data Manager API: the shared suite against the fake, and
the Data Manager specifics (request shape, per-person consent, validation, diagnostics)."""

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
from tactful.destinations.google_datamanager import GoogleDataManager
from tactful.testing.conformance import Conformance, conformance_tests
from tactful.testing.fakes.google_datamanager import FakeDataManager
from tactful.testing.sim.server import run_in_thread

AT = datetime(2026, 12, 1, tzinfo=UTC)
GRANTED = {"adUserData": "CONSENT_GRANTED", "adPersonalization": "CONSENT_GRANTED"}
DESTINATION = {
    "operatingAccount": {"accountType": "GOOGLE_ADS", "accountId": "1234567890"},
    "productDestinationId": "987654321",
}


def item(
    i: int,
    kind: ItemKind = "audience_add",
    consent: dict[str, bool] | None = None,
    **ids: Any,
) -> Item:
    identifiers = Identifiers(**ids) if ids else Identifiers(emails=(f"person{i}@example.com",))
    stated = {"ads": True} if consent is None else consent
    return Item(f"k{i}-{kind}", kind, f"p{i}", AT, identifiers, segment="vip", consent=stated)


def email(i: int) -> str:
    return hashing.sha256_hex(f"person{i}@example.com")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def destination(base_url: str, **kwargs: Any) -> GoogleDataManager:
    options: dict[str, Any] = {
        "name": "google",
        "operating_account_id": "123-456-7890",
        "audience_id": "987654321",
        "client_id": "client-id",
        "client_secret": "client-secret",
        "refresh_token": "refresh-token",
        "base_url": base_url,
        "clock": Clock(),
    }
    return GoogleDataManager(**(options | kwargs))


class TestDataManagerConformance(Conformance):
    def make(self, base_url: str) -> GoogleDataManager:
        return destination(base_url, members_per_request=10)

    def make_fake(self) -> Any:
        return FakeDataManager(max_members=10)

    def items(self, n: int) -> list[Item]:
        return [item(i) for i in range(n)]

    def ordered(self) -> list[Item]:
        return [item(1), item(1, "audience_remove")]


conformance_tests(TestDataManagerConformance)


@pytest.fixture
def served() -> Iterator[tuple[FakeDataManager, str]]:
    fake = FakeDataManager()
    base_url, stop = run_in_thread(fake.app)
    try:
        yield fake, base_url
    finally:
        stop()


@pytest.fixture
def google(served: tuple[FakeDataManager, str]) -> Iterator[tuple[FakeDataManager, Any]]:
    dest = destination(served[1])
    try:
        yield served[0], dest
    finally:
        dest.close()


def bodies(fake: FakeDataManager, suffix: str) -> list[Any]:
    return [json.loads(r.body) for r in fake.data_requests() if r.path.endswith(suffix)]


def test_exact_ingest_request(google: Any) -> None:
    fake, dest = google
    person = item(0, emails=(" Cloudy.SF+shop@Gmail.com ",), phones=("+1 (800) 555-0100",))
    assert [o.kind for o in dest.send([person])] == ["ok"]
    (request,) = fake.data_requests()
    assert (request.method, request.path) == ("POST", "/v1/audienceMembers:ingest")
    assert request.headers["authorization"] == "Bearer ya29.dm-1"
    assert "developer-token" not in request.headers  # the Data Manager API needs none
    gmail = hashing.sha256_hex("cloudysf@gmail.com")  # Gmail dots and +tag dropped
    phone = hashing.sha256_hex("+18005550100")
    assert json.loads(request.body) == {
        "destinations": [DESTINATION],
        "audienceMembers": [
            {
                "userData": {"userIdentifiers": [{"emailAddress": gmail}, {"phoneNumber": phone}]},
                "consent": GRANTED,
            }
        ],
        "encoding": "HEX",
    }
    assert fake.snapshot() == {("emailAddress", gmail), ("phoneNumber", phone)}
    assert dest.request_ids and len(dest.request_ids) == 1


def test_consent_follows_each_persons_stated_consent(google: Any) -> None:
    fake, dest = google
    items = [item(0), item(1, consent={}), item(2, consent={"email": True})]
    assert [o.kind for o in dest.send(items)] == ["ok"] * 3
    (body,) = bodies(fake, ":ingest")
    assert "consent" not in body  # no request-level consent covering everyone
    assert [m.get("consent") for m in body["audienceMembers"]] == [GRANTED, None, None]
    assert fake.consent_of(email(0)) == GRANTED
    assert fake.consent_of(email(1)) == {}


def test_add_then_remove_keep_their_order_and_removes_carry_no_consent(google: Any) -> None:
    fake, dest = google
    outcomes = dest.send([item(0), item(0, "audience_remove"), item(1)])
    assert [o.kind for o in outcomes] == ["ok"] * 3
    paths = [r.path for r in fake.data_requests()]
    assert paths == [
        "/v1/audienceMembers:ingest",
        "/v1/audienceMembers:remove",
        "/v1/audienceMembers:ingest",
    ]
    (remove,) = bodies(fake, ":remove")
    assert remove["audienceMembers"] == [
        {"userData": {"userIdentifiers": [{"emailAddress": email(0)}]}}
    ]
    assert fake.snapshot() == {("emailAddress", email(1))}


def test_more_than_ten_identifiers_become_several_members(google: Any) -> None:
    fake, dest = google
    many = tuple(f"p{n}@example.com" for n in range(12))
    assert dest.send([item(0, emails=many)])[0].kind == "ok"
    (body,) = bodies(fake, ":ingest")
    sizes = [len(m["userData"]["userIdentifiers"]) for m in body["audienceMembers"]]
    assert sizes == [10, 2]
    assert len(fake.snapshot()) == 12


def test_members_named_invalid_are_rejected_and_the_rest_sent_again(google: Any) -> None:
    fake, dest = google
    fake.refuse(email(1), "INVALID_FORMAT: not a valid email hash")
    outcomes = dest.send([item(0), item(1), item(2)])
    assert [o.kind for o in outcomes] == ["ok", "reject", "ok"]
    assert "INVALID_FORMAT" in outcomes[1].error
    first, second = bodies(fake, ":ingest")
    assert len(first["audienceMembers"]) == 3 and len(second["audienceMembers"]) == 2
    assert fake.snapshot() == {("emailAddress", email(0)), ("emailAddress", email(2))}
    assert [r.status for r in fake.data_requests()] == [400, 200]


def test_items_without_identifiers_or_of_other_kinds_are_rejected(google: Any) -> None:
    _, dest = google
    blank = Item("k", "audience_add", "p9", AT, Identifiers(external_ids=("X",)))
    profile = Item("k2", "profile", "p8", AT, Identifiers(emails=("a@example.com",)))
    outcomes = dest.send([blank, profile, item(0)])
    assert [o.kind for o in outcomes] == ["reject", "reject", "ok"]
    assert "no usable email or phone" in outcomes[0].error


def test_rate_limit_is_retry_with_googles_retry_delay(google: Any) -> None:
    fake, dest = google
    fake.fail_next(1, 429, retry_after=42)
    outcome = dest.send([item(0)])[0]
    assert (outcome.kind, outcome.retry_after, outcome.status) == ("retry", 42.0, 429)
    assert "RESOURCE_EXHAUSTED" in outcome.error
    assert fake.snapshot() == frozenset()


def test_after_a_transient_failure_the_rest_of_the_batch_waits(served: Any) -> None:
    fake, base_url = served
    dest = destination(base_url, members_per_request=2)
    try:
        fake.fail_next(1, 503)
        outcomes = dest.send([item(i) for i in range(5)])
    finally:
        dest.close()
    assert [o.kind for o in outcomes] == ["retry"] * 5
    assert all(o.error.startswith("held") for o in outcomes[2:])
    assert len(fake.data_requests()) == 1 and fake.snapshot() == frozenset()


def test_a_401_refreshes_the_token_once(google: Any) -> None:
    fake, dest = google
    assert dest.send([item(0)])[0].kind == "ok"
    fake.expire_access_tokens()
    assert dest.send([item(1)])[0].kind == "ok"
    assert fake.tokens_issued == 2


def test_revoked_refresh_token_rejects_with_reauthorize(served: Any) -> None:
    fake, base_url = served
    dest = destination(base_url, refresh_token="stale")
    try:
        outcome = dest.send([item(0)])[0]
    finally:
        dest.close()
    assert outcome.kind == "reject" and "re-authorize" in outcome.error
    assert fake.data_requests() == []


def test_a_manager_login_account_is_sent_and_required_by_the_fake(served: Any) -> None:
    fake, base_url = served
    fake.login_account_id = "1112223333"
    dest = destination(base_url)
    try:
        assert dest.send([item(0)])[0].status == 403  # the fake wants the manager account
        managed = destination(base_url, login_account_id="111-222-3333")
        assert managed.send([item(0)])[0].kind == "ok"
        managed.close()
    finally:
        dest.close()
    login = bodies(fake, ":ingest")[-1]["destinations"][0]["loginAccount"]
    assert login == {"accountType": "GOOGLE_ADS", "accountId": "1112223333"}


def test_diagnostics_read_the_request_status_and_match_rate(google: Any) -> None:
    fake, dest = google
    fake.google_users.update({email(0), email(1), email(2)})
    assert [o.kind for o in dest.send([item(i) for i in range(4)])] == ["ok"] * 4
    (request_id,) = dest.request_ids
    first = dest.diagnostics(request_id)
    assert first.status == "PROCESSING" and first.match_rate_range is None
    done = dest.diagnostics(request_id)
    assert (done.status, done.record_count, done.identifier_count) == ("SUCCESS", 4, 4)
    assert done.match_rate_range == "MATCH_RATE_RANGE_71_TO_80"  # 3 of 4 matched


def test_the_fake_refuses_what_google_refuses(served: Any) -> None:
    fake, base_url = served
    token = httpx.post(
        f"{base_url}/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "client-id",
            "client_secret": "client-secret",
            "refresh_token": "refresh-token",
        },
    ).json()["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    member = {"userData": {"userIdentifiers": [{"emailAddress": "not-a-hash"}]}}
    body = {"destinations": [DESTINATION], "audienceMembers": [member, member]}
    answer = httpx.post(f"{base_url}/v1/audienceMembers:ingest", json=body, headers=headers)
    assert answer.status_code == 400
    fields = [v["field"] for v in answer.json()["error"]["details"][0]["fieldViolations"]]
    assert fields == ["encoding"]  # user data needs an encoding
    body["encoding"] = "HEX"
    answer = httpx.post(f"{base_url}/v1/audienceMembers:ingest", json=body, headers=headers)
    fields = [v["field"] for v in answer.json()["error"]["details"][0]["fieldViolations"]]
    assert fields == [
        "audience_members[0].user_data.user_identifiers[0]",
        "audience_members[1].user_data.user_identifiers[0]",
    ]
    good = {"userData": {"userIdentifiers": [{"emailAddress": email(0)}]}, "consent": GRANTED}
    removal = {"destinations": [DESTINATION], "audienceMembers": [good], "encoding": "HEX"}
    answer = httpx.post(f"{base_url}/v1/audienceMembers:remove", json=removal, headers=headers)
    assert answer.status_code == 400  # removes carry no consent
    assert fake.snapshot() == frozenset()


def config(**keys: Any) -> DestinationSettings:
    data = {
        "name": "google",
        "type": "google_data_manager",
        "segment": "vip",
        "operating_account_id": "123-456-7890",
        "audience_id": 987654321,
        "client_id": "client-id",
        "client_secret": "client-secret",
        "refresh_token": "refresh-token",
    }
    return DestinationSettings.model_validate(data | keys)


def test_registry_creates_it_from_config(served: Any) -> None:
    dest = registry.create(config(base_url=served[1]))
    assert isinstance(dest, GoogleDataManager)
    assert (dest.purpose, dest.segments) == ("ads", ["vip"])
    assert dest.destination == DESTINATION
    assert dest.capabilities.kinds == {"audience_add", "audience_remove"}
    assert dest.send([item(0)])[0].kind == "ok"
    dest.close()


def test_config_names_missing_keys_and_bad_account_types() -> None:
    assert config().problems() == []
    (problem,) = config(account_type="ADS").problems()
    assert problem[0] == "account_type" and problem[1].endswith("got 'ADS'")
    incomplete = DestinationSettings.model_validate(
        {"name": "g", "type": "google_data_manager", "segment": "vip"}
    )
    assert {key for key, _ in incomplete.problems()} >= {"operating_account_id", "refresh_token"}
    with pytest.raises(ValueError, match="audience_id"):
        registry.create(incomplete)


def test_audience_report_waits_for_processing_then_reports_the_match_rate(google: Any) -> None:
    """Issue 21 §3: the worker's periodic reading feeds Google's diagnostics into sync runs."""
    from tactful.destinations.google_datamanager import match_rate_text

    fake, dest = google
    fake.google_users.update({email(0), email(1), email(2)})
    assert [o.kind for o in dest.send([item(i) for i in range(4)])] == ["ok"] * 4
    assert dest.audience_report() is None  # still PROCESSING: kept for the next reading
    assert len(dest.request_ids) == 1
    report = dest.audience_report()
    assert report is not None
    assert (report.status, report.received, report.match_rate) == ("SUCCESS", 4, "71-80%")
    assert dest.request_ids == [] and dest.audience_report() is None  # reported once
    assert match_rate_text("MATCH_RATE_RANGE_LESS_THAN_20") == "less than 20%"
    assert match_rate_text("MATCH_RATE_RANGE_UNKNOWN") == ""
