"""BigQuery and Snowflake warehouses: the shared suite against their fakes, and specifics."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tactful.config.models import DestinationSettings
from tactful.destinations import registry, warehouse
from tactful.destinations.base import Identifiers, Item
from tactful.destinations.warehouse_bigquery import BigQueryWarehouse
from tactful.destinations.warehouse_snowflake import SnowflakeWarehouse
from tactful.testing.conformance import Conformance, conformance_tests
from tactful.testing.fakes.bigquery import FakeBigQuery
from tactful.testing.fakes.snowflake import FakeSnowflake

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
).decode()
EMAIL = "loader@proj.iam.gserviceaccount.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"
CREDENTIALS = {"type": "service_account", "client_email": EMAIL, "private_key": PEM,
               "private_key_id": "kid-1", "token_uri": TOKEN_URI}  # fmt: skip


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def event(i: int, person: str = "p_1", minutes: int = 0) -> Item:
    return Item(f"ev-{i}", "event", person, T0 + timedelta(minutes=minutes),
                Identifiers(emails=(f"{person}@example.com",)), name="support_state_changed",
                properties={"new_state": f"s{i}"})  # fmt: skip


def profile(i: int, person: str = "p_1", minutes: int = 0) -> Item:
    ids, state = Identifiers(external_ids=("crm-1",)), {"support_state": f"s{i}"}
    return Item(
        f"pr-{i}", "profile", person, T0 + timedelta(minutes=minutes), ids, properties=state
    )


def erase(person: str) -> Item:
    return Item(f"er-{person}", "erase", person, T0 + timedelta(hours=1), Identifiers())


def mixed(n: int) -> list[Item]:
    return [event(i, f"p{i % 3}") if i % 2 else profile(i, f"p{i % 3}", i) for i in range(n)]


def bigquery(base_url: str, clock: Clock | None = None, **kw: Any) -> BigQueryWarehouse:
    clock = clock or Clock()
    return BigQueryWarehouse(name="bq", project="proj", dataset="analytics",
                             credentials=CREDENTIALS, location="EU", base_url=base_url,
                             sleep=clock.sleep, clock=clock, **kw)  # fmt: skip


def snowflake(base_url: str, clock: Clock | None = None, **kw: Any) -> SnowflakeWarehouse:
    clock = clock or Clock()
    return SnowflakeWarehouse(name="sf", account="xy12345.eu-central-1", database="ANALYTICS",
                              schema="TACTFUL", user="loader", private_key=PEM,
                              warehouse="LOAD_WH", role="LOADER", base_url=base_url,
                              sleep=clock.sleep, clock=clock, **kw)  # fmt: skip


def fake_bq(**kw: Any) -> FakeBigQuery:
    return FakeBigQuery(public_key=KEY.public_key(), **kw)


def fake_sf(**kw: Any) -> FakeSnowflake:
    kw = {"warehouse": "LOAD_WH", "role": "LOADER"} | kw
    return FakeSnowflake(public_key=KEY.public_key(), **kw)


class TestBigQueryConformance(Conformance):
    def make(self, base_url: str) -> Any:
        return bigquery(base_url)

    def make_fake(self) -> Any:
        return fake_bq(max_rows_per_load=10)

    def items(self, n: int) -> list[Item]:
        return mixed(n)


class TestSnowflakeConformance(Conformance):
    def make(self, base_url: str) -> Any:
        return snowflake(base_url)

    def make_fake(self) -> Any:
        return fake_sf()

    def items(self, n: int) -> list[Item]:
        return mixed(n)


conformance_tests(TestBigQueryConformance)
conformance_tests(TestSnowflakeConformance)


# --- BigQuery -------------------------------------------------------------------------------


def test_bigquery_jwt_claims_and_request_shapes(serve: Any) -> None:
    fake = fake_bq()
    dest = bigquery(serve(fake))
    assert [o.kind for o in dest.send([event(1), event(1), profile(1)])] == ["ok"] * 3
    claims = fake.assertions[0]
    assert claims["iss"] == EMAIL and claims["aud"] == "https://oauth2.googleapis.com/token"
    assert claims["scope"] == "https://www.googleapis.com/auth/bigquery"
    assert claims["exp"] - claims["iat"] == 3600
    header = jwt.get_unverified_header(fake.requests[0].body.decode().split("assertion=")[1])
    assert header["kid"] == "kid-1" and header["alg"] == "RS256"
    uploads = [r for r in fake.requests if r.path.startswith("/upload/")]
    assert len(uploads) == 2
    job = next(j for j in fake.jobs.values() if "load" in j["configuration"])
    load = job["configuration"]["load"]
    assert load["sourceFormat"] == "NEWLINE_DELIMITED_JSON"
    assert load["writeDisposition"] == "WRITE_TRUNCATE"
    assert load["destinationTable"]["tableId"].startswith("_tactful_stage_")
    assert job["jobReference"]["location"] == "EU"
    assert uploads[0].headers["content-type"].startswith("multipart/related; boundary=")
    ndjson = uploads[0].body.split(b"application/octet-stream\r\n\r\n")[1].split(b"\r\n--")[0]
    lines = [json.loads(line) for line in ndjson.splitlines()]
    assert lines == [{"key": "ev-1", "person_id": "p_1", "name": "support_state_changed",
                      "segment": None, "occurred_at": "2026-03-01T12:00:00+00:00",
                      "properties": {"new_state": "s1"},
                      "identifiers": {"email": ["p_1@example.com"]}}]  # fmt: skip
    polls = [r for r in fake.requests if r.method == "GET"]
    assert polls and all(r.path.startswith("/bigquery/v2/projects/proj/jobs/") for r in polls)
    merges = [j["configuration"]["query"]["query"] for j in fake.jobs.values()
              if "MERGE" in j["configuration"].get("query", {}).get("query", "")]  # fmt: skip
    assert merges[0].startswith("MERGE `proj.analytics.events` T USING `proj.analytics._tactful")
    assert "ON T.key = S.key WHEN NOT MATCHED THEN INSERT" in merges[0]
    assert "WHEN MATCHED AND S.updated_at >= T.updated_at" in merges[1]
    snap = fake.snapshot()
    assert set(snap) == {"events", "persons_current"}  # staging tables dropped
    assert [r["key"] for r in snap["events"]] == ["ev-1"]
    dest.close()


def test_bigquery_resend_finds_its_jobs_by_id(serve: Any) -> None:
    fake = fake_bq()
    dest = bigquery(serve(fake))
    items = [event(1), profile(1)]
    dest.send(items)
    jobs = set(fake.jobs)
    assert [o.kind for o in dest.send(items)] == ["ok", "ok"]
    assert set(fake.jobs) == jobs  # no new job: the 409 duplicates were found DONE
    assert sum(r.status == 409 for r in fake.requests) == 4
    dest.close()


def test_bigquery_poll_timeout_retries_then_resend_completes(serve: Any) -> None:
    fake = fake_bq(polls_to_finish=50)
    clock = Clock()
    dest = bigquery(serve(fake), clock, poll_timeout=5.0)
    first = dest.send([event(1)])
    assert first[0].kind == "retry" and "still RUNNING" in first[0].error
    fake.polls_to_finish = 0
    for job in fake.jobs:
        fake._polls[job] = 0
    assert dest.send([event(1)])[0].kind == "ok"
    assert len(fake.snapshot()["events"]) == 1
    dest.close()


def test_bigquery_never_older_and_erase(serve: Any) -> None:
    fake = fake_bq()
    dest = bigquery(serve(fake))
    dest.send([profile(2, minutes=5), event(1), event(2, "p_2")])
    dest.send([profile(1, minutes=1)])  # older: ignored
    assert fake.snapshot()["persons_current"][0]["state"] == {"support_state": "s2"}
    assert dest.send([erase("p_1")])[0].kind == "ok"
    snap = fake.snapshot()
    assert snap["persons_current"] == []
    assert sorted((r["person_id"], r["name"]) for r in snap["events"]) == [
        ("p_1", "person_erased"), ("p_2", "support_state_changed")]  # fmt: skip
    dest.close()


def test_bigquery_failed_job_rejects_and_later_runs_retry(serve: Any) -> None:
    fake = fake_bq()
    dest = bigquery(serve(fake))
    dest.send([event(0)])
    del fake.tables["events"]  # the MERGE job ends with errorResult notFound
    outcomes = dest.send([event(1), profile(1)])
    assert [o.kind for o in outcomes] == ["reject", "retry"]
    assert "notFound" in outcomes[0].error and "not started" in outcomes[1].error
    dest.close()


def test_bigquery_create_from_config(tmp_path: Any) -> None:
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(CREDENTIALS))
    config = DestinationSettings.model_validate({"name": "bq", "type": "warehouse",
        "url": "bigquery://proj/analytics", "credentials": str(path)})  # fmt: skip
    dest = registry.create(config)
    assert isinstance(dest, BigQueryWarehouse) and dest.dataset == "analytics"
    dest.close()
    inline = config.model_copy(
        update={
            "settings": {"url": "bigquery://proj/analytics", "credentials": json.dumps(CREDENTIALS)}
        }
    )
    registry.create(inline).close()


def test_snowflake_create_from_config_and_bad_urls(tmp_path: Any) -> None:
    path = tmp_path / "rsa_key.p8"
    path.write_text(PEM)
    config = DestinationSettings.model_validate({"name": "sf", "type": "warehouse",
        "url": "snowflake://xy12345/ANALYTICS/TACTFUL", "user": "loader",
        "private_key": str(path), "warehouse": "LOAD_WH"})  # fmt: skip
    dest = registry.create(config)
    assert isinstance(dest, SnowflakeWarehouse)
    assert dest.subject == "XY12345.LOADER" and dest.issuer.startswith("XY12345.LOADER.SHA256:")
    dest.close()
    for url in ("snowflake://acct/db", "bigquery://proj"):
        bad = DestinationSettings.model_validate({"name": "x", "type": "warehouse", "url": url})
        with pytest.raises(warehouse.UnsupportedWarehouse, match="look like"):
            registry.create(bad)


# --- Snowflake ------------------------------------------------------------------------------


def test_snowflake_jwt_and_exact_request_body(serve: Any) -> None:
    fake = fake_sf()
    dest = snowflake(serve(fake))
    assert [o.kind for o in dest.send([event(1)])] == ["ok"]
    claims = fake.claims[0]
    assert claims["sub"] == "XY12345.LOADER"
    assert claims["iss"] == f"XY12345.LOADER.{fake.issuer.split('.', 2)[2]}"
    assert claims["iss"].split(".")[2].startswith("SHA256:")
    post = [r for r in fake.requests if r.method == "POST"][-1]
    assert post.headers["x-snowflake-authorization-token-type"] == "KEYPAIR_JWT"
    body = json.loads(post.body)
    assert body["statement"] == (
        "MERGE INTO events AS t USING (SELECT column1 AS key, column2 AS person_id, column3 AS "
        "name, column4 AS segment, column5 AS occurred_at, column6 AS properties, column7 AS "
        "identifiers FROM VALUES (?, ?, ?, ?, ?, ?, ?)) AS s ON t.key = s.key WHEN NOT MATCHED "
        "THEN INSERT (key, person_id, name, segment, occurred_at, properties, identifiers, "
        "loaded_at) VALUES (s.key, s.person_id, s.name, NULLIF(s.segment, ''), "
        "TO_TIMESTAMP_TZ(s.occurred_at), PARSE_JSON(s.properties), PARSE_JSON(s.identifiers), "
        "CURRENT_TIMESTAMP())"
    )
    assert body["bindings"]["1"] == {"type": "TEXT", "value": "ev-1"}
    assert body["bindings"]["6"] == {"type": "TEXT", "value": '{"new_state":"s1"}'}
    assert {k: body[k] for k in ("database", "schema", "warehouse", "role")} == {
        "database": "ANALYTICS",
        "schema": "TACTFUL",
        "warehouse": "LOAD_WH",
        "role": "LOADER",
    }
    assert any(r.method == "GET" and r.status == 200 for r in fake.requests)  # polled 202 → 200
    dest.close()


def test_snowflake_idempotent_merge_never_older_and_erase(serve: Any) -> None:
    fake = fake_sf()
    dest = snowflake(serve(fake))
    items = [event(1), event(1), profile(2, minutes=5), event(3, "p_2")]
    assert [o.kind for o in dest.send(items)] == ["ok"] * 4
    dest.send(items)
    dest.send([profile(1, minutes=1)])
    snap = fake.snapshot()
    assert sorted(r["key"] for r in snap["events"]) == ["ev-1", "ev-3"]
    assert snap["persons_current"][0]["state"] == {"support_state": "s2"}
    assert dest.send([erase("p_1")])[0].kind == "ok"
    snap = fake.snapshot()
    assert snap["persons_current"] == []
    assert sorted(r["key"] for r in snap["events"]) == ["er-p_1", "ev-3"]
    dest.close()


def test_snowflake_poll_timeout_then_retry_stores_once(serve: Any) -> None:
    fake = fake_sf(polls_to_finish=50)
    dest = snowflake(serve(fake), poll_timeout=3.0)
    assert dest.send([event(1)])[0].kind == "retry"
    fake.polls_to_finish = 0
    assert dest.send([event(1)])[0].kind == "ok"
    assert len(fake.snapshot()["events"]) == 1
    dest.close()


def test_snowflake_rejects_bad_jwt_and_chunks_rows(serve: Any) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake = FakeSnowflake(public_key=other.public_key(), max_rows_per_statement=200)
    dest = snowflake(serve(fake))
    outcome = dest.send([event(1)])[0]
    assert outcome.kind == "reject" and "390144" in outcome.error
    dest.close()
    fake = fake_sf()
    dest = snowflake(serve(fake))
    assert {o.kind for o in dest.send([event(i) for i in range(450)])} == {"ok"}
    assert len(fake.snapshot()["events"]) == 450
    dest.close()
