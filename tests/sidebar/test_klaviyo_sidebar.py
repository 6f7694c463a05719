"""The sidebar's actions against Klaviyo's fake, as the other sidebar tests do against
Customer.io's (issue 22): health, opt-out, list removal and email change."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tactful.config import settings_from_toml
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import FakeClock, at, new_store_url, ticket, user
from tactful.testing.fakes.klaviyo import FakeKlaviyo
from tactful.testing.sim.server import run_in_thread
from tactful.web.app import create_app
from tests.sidebar.helpers import EMAIL, PUBLIC_PEM, PUBLIC_URL, TICKET, token

pytestmark = pytest.mark.store


class KlaviyoWorld:
    def __init__(self, tmp_path: Path) -> None:
        self.klaviyo = FakeKlaviyo()
        url, self._stop = run_in_thread(self.klaviyo.app)
        text = f"""
[zendesk]
subdomain = "glowlab"
public_url = "{PUBLIC_URL}"
app_public_key = '''{PUBLIC_PEM}'''

[[segments]]
name = "unhappy"
when = 'health == "unsatisfied"'

[[destinations]]
name = "klaviyo"
type = "klaviyo"
api_key = "pk_test"
base_url = "{url}"
"""
        settings = settings_from_toml(text, environ={})
        self.engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
        self.engine.apply([user(1, emails=(EMAIL,)), ticket(1, at(0), "open")])
        self.worker = DeliveryWorker(settings, self.engine.store)
        self.worker.sync()  # the profile now exists at the Klaviyo fake
        self.app = create_app(
            settings, self.engine, tick_seconds=0, clock=FakeClock(at(1)), deliver_seconds=0
        )
        self.app.state.sidebar.esp_timeout = 2.0

    def stop(self) -> None:
        self.worker.close()
        self._stop()
        self.engine.store.close()


@pytest.fixture
def kw(tmp_path: Path) -> Iterator[KlaviyoWorld]:
    out = KlaviyoWorld(tmp_path)
    yield out
    out.stop()


def session_of(client: TestClient) -> str:
    resp = client.post("/app/sidebar", data={"token": token()})
    assert resp.status_code == 200, resp.text
    found = re.search(r'"session": "([^"]+)"', resp.text)
    assert found
    return found.group(1)


def act(client: TestClient, session: str, action: str, idem: str, **form: str) -> httpx.Response:
    return client.post(
        f"/app/sidebar/actions/{action}?ticket={TICKET}",
        data={"email": EMAIL, "idem": idem, **form},
        headers={"Authorization": f"Bearer {session}"},
    )


def test_klaviyo_profile_and_every_action(kw: KlaviyoWorld) -> None:
    kw.klaviyo.add_to_list(EMAIL, "LsT1", "Newsletter")
    with TestClient(kw.app) as client:
        session = session_of(client)
        html = client.get(
            "/app/sidebar/panel",
            params={"email": EMAIL, "ticket": str(TICKET)},
            headers={"Authorization": f"Bearer {session}"},
        ).text
        assert "Newsletter" in html and "ESP unavailable" not in html

        health = act(client, session, "health", "idem-k-0001", health="unsatisfied")
        assert health.status_code == 200, health.text
        kw.worker.sync()
        props = kw.klaviyo.profile(EMAIL)["attributes"]["properties"]
        assert props["zendesk_health"] == "unsatisfied"

        optout = act(client, session, "optout", "idem-k-0002", opted_out="true")
        assert optout.status_code == 200, optout.text
        assert kw.klaviyo.profile(EMAIL)["consent"] == "UNSUBSCRIBED"

        removed = act(client, session, "remove-list", "idem-k-0003", list_id="LsT1")
        assert removed.status_code == 200, removed.text
        assert not kw.klaviyo.lists["LsT1"]["members"]

        moved = act(client, session, "change-email", "idem-k-0004", new_email="ann.new@example.com")
        assert moved.status_code == 200, moved.text
    assert kw.klaviyo.profile("ann.new@example.com") is not None
    assert kw.klaviyo.profile(EMAIL) is None
