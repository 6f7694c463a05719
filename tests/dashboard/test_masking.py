"""Masked identifiers on the dashboard (``[api] mask_identifiers``, on by default): emails
and phones read ``a••@example.com`` / ``+1•••••••23`` on every page, and only the logins named
in ``[api] show_identifiers_to`` see them in full."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tactful.testing import at, ticket, user
from tactful.web.dashboard.masking import mask, mask_email, mask_phone, showing
from tests.dashboard.helpers import EMAIL, PASSWORD, TOKEN, World, person_of, world

pytestmark = pytest.mark.store

PHONE = "+14155550123"
MASKED_EMAIL = "a\u2022\u2022@example.com"
MASKED_PHONE = "+1\u2022\u2022\u2022\u2022\u2022\u2022\u2022\u202223"


def test_masks() -> None:
    assert mask_email(EMAIL) == MASKED_EMAIL
    assert mask_phone(PHONE) == MASKED_PHONE
    assert mask(EMAIL) == MASKED_EMAIL and mask(PHONE, "phone") == MASKED_PHONE
    assert mask("Zendesk user 21000000000001") == "Zendesk user 21000000000001"
    assert mask("ext-77", "external_id") == "ext-77"
    assert mask(f"{EMAIL}, {PHONE}") == f"{MASKED_EMAIL}, {MASKED_PHONE}"
    with showing(True):
        assert mask(EMAIL) == EMAIL and mask(PHONE, "phone") == PHONE
    assert mask(EMAIL) == MASKED_EMAIL  # back to masked after the request


def with_phone(w: World) -> World:
    """Ann also has a phone number."""
    w.engine.apply([user(1, at(7), emails=(EMAIL,), phones=(PHONE,))])
    w.engine.apply([ticket(1, at(7.5), "open", requester_id=1)])
    return w


def login(client: TestClient, secret: str) -> None:
    r = client.post("/login", data={"password": secret, "next": "/"}, follow_redirects=False)
    assert r.status_code == 303


def pages(w: World) -> list[str]:
    return [
        "/",
        "/people",
        "/people?q=ann",  # a partial search: the match is shown masked
        f"/people/{person_of(w.engine)}",
        "/segments/open_issue",
        "/destinations/hook",
    ]


@pytest.mark.parametrize("secret", [TOKEN, PASSWORD])
def test_identifiers_are_masked_on_every_page_by_default(tmp_path: Path, secret: str) -> None:
    w = with_phone(world(tmp_path, show=None))
    try:
        with TestClient(w.app) as client:
            login(client, secret)
            for path in pages(w):
                html = client.get(path).text
                assert EMAIL not in html and "bob@example.com" not in html, path
                assert PHONE not in html, path
            person = client.get(f"/people/{person_of(w.engine)}").text
            assert MASKED_EMAIL in person and MASKED_PHONE in person
            people = client.get("/people").text
            assert MASKED_EMAIL in people and "b\u2022\u2022@example.com" in people
            # Search still matches the full value; the page shows it masked.
            found = client.get("/people", params={"q": PHONE})
            assert found.status_code == 200 and MASKED_EMAIL in found.text
            assert 'data-person="' + person_of(w.engine) + '"' in found.text
    finally:
        w.engine.store.close()


def test_only_the_configured_login_sees_them_in_full(tmp_path: Path) -> None:
    w = with_phone(world(tmp_path, show='["token"]'))
    try:
        with TestClient(w.app) as client:
            login(client, TOKEN)
            person = client.get(f"/people/{person_of(w.engine)}").text
            assert EMAIL in person and PHONE in person
            assert EMAIL in client.get("/people").text
        with TestClient(w.app) as client:
            login(client, PASSWORD)
            for path in pages(w):
                html = client.get(path).text
                assert EMAIL not in html and PHONE not in html, path
    finally:
        w.engine.store.close()


def test_without_a_login_they_are_masked_unless_masking_is_off(tmp_path: Path) -> None:
    w = world(tmp_path, token=None, password=None, show=None)
    try:
        with TestClient(w.app, base_url="http://127.0.0.1") as client:
            html = client.get("/people").text
            assert MASKED_EMAIL in html and EMAIL not in html
        w.settings.api.mask_identifiers = False
        with TestClient(w.app, base_url="http://127.0.0.1") as client:
            assert EMAIL in client.get("/people").text
    finally:
        w.engine.store.close()
