"""Search by name on the dashboard's people page (issue 23): the Zendesk user's name finds
the person and is shown beside their (masked) identifier."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tactful.core.events import UserSeen
from tactful.testing import at
from tests.dashboard.helpers import PASSWORD, person_of, world

pytestmark = pytest.mark.store


def test_people_are_found_by_name(tmp_path: Path) -> None:
    w = world(tmp_path, show=None)  # identifiers masked, names shown
    w.engine.apply([UserSeen("zendesk:user:1:named", at(7), 1, name="Ann Lee")])
    ann = person_of(w.engine)
    try:
        with TestClient(w.app) as client:
            r = client.post("/login", data={"password": PASSWORD}, follow_redirects=False)
            assert r.status_code == 303
            found = client.get("/people", params={"q": "lee"})
            assert found.status_code == 200
            rows = re.findall(r'<tr data-person="([^"]+)">', found.text)
            assert rows == [ann]
            assert '<span class="name">Ann Lee</span>' in found.text
            assert "ann@example.com" not in found.text  # still masked
            # One match: the person's page comes with it, named.
            assert re.search(r'<h2 id="person-h">Ann Lee · a\u2022\u2022@example\.com', found.text)
            assert client.get("/people", params={"q": "nobody"}).status_code == 404
            page = client.get(f"/people/{ann}").text
            assert "Ann Lee" in page
    finally:
        w.engine.store.close()
