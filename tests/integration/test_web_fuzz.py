"""Hypothesis-generated bodies against the webhook receiver: never a 5xx, and a rejected
request changes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.testclient import TestClient

from tests.integration.test_web import CONFIG, signed


def _dumps(value: Any) -> bytes:
    return json.dumps(value).encode()  # stdlib: big integers too


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=30,
)
ticketish = st.fixed_dictionaries(
    {
        "ticket": st.fixed_dictionaries(
            {
                "id": st.one_of(st.integers(-5, 10**12), st.text(max_size=8)),
                "status": st.sampled_from(["Open", "Solved", "", "deleted", "weird"]),
                "updated_at": st.one_of(st.text(max_size=25), st.just("2026-11-22T10:00Z")),
                "created_at": st.just("2026-11-22T09:00Z"),
                "requester": st.one_of(json_values, st.fixed_dictionaries({"id": st.integers()})),
            },
            optional={"tags": json_values, "priority": json_values, "via": json_values},
        )
    }
)
envelopes = st.fixed_dictionaries(
    {
        "type": st.sampled_from(
            [
                "zen:event-type:ticket.status_changed",
                "zen:event-type:user.merged",
                "zen:event-type:nope",
                "garbage",
            ]
        ),
        "id": st.text(max_size=10),
        "time": st.text(max_size=25),
        "detail": json_values,
        "event": json_values,
    }
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(_dumps),
    ticketish.map(_dumps),
    envelopes.map(_dumps),
    st.integers(1, 400).map(lambda depth: b"[" * depth + b"]" * depth),
    st.integers(1, 20000).map(lambda n: orjson.dumps({"tickets": [{"id": 1}] * n})),
)


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    from tactful.config import settings_from_toml
    from tactful.engine.engine import Engine, rules_from_settings
    from tactful.store.sqlite import SQLiteStore
    from tactful.web.app import create_app

    tmp: Path = tmp_path_factory.mktemp("fuzz")
    settings_obj = settings_from_toml(CONFIG, environ={})
    engine = Engine(rules_from_settings(settings_obj), SQLiteStore(f"sqlite:///{tmp}/t.db"))
    with TestClient(create_app(settings_obj, engine, tick_seconds=0)) as c:
        yield c


def counts(client: TestClient) -> dict[str, Any]:
    with client.app.state.ctx.engine.store.reader() as reader:  # type: ignore[attr-defined]
        return reader.counts()


@pytest.mark.slow
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=bodies, sign_it=st.booleans())
def test_receiver_never_5xx_and_rejections_change_nothing(
    client: TestClient, body: bytes, sign_it: bool
) -> None:
    before = counts(client)
    headers = signed(body) if sign_it else {"Content-Type": "application/json"}
    r = client.post("/webhooks/zendesk", content=body, headers=headers)
    assert r.status_code < 500, r.text
    if not sign_it:
        assert r.status_code == 401
    if r.status_code >= 400:
        assert counts(client) == before
