"""The dashboard's replay preview: a dry run from the configuration page (issue 17)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from .helpers import World, world
from .test_routes import csrf_of, login

pytestmark = pytest.mark.store


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    out = world(tmp_path)
    yield out
    out.engine.store.close()


def test_the_config_page_previews_a_replay_and_changes_nothing(w: World) -> None:
    with w.engine.store.reader() as reader:
        counts = reader.counts()
    with TestClient(w.app) as client:
        login(client)
        page = client.get("/config")
        assert 'action="/replay/preview"' in page.text
        token = csrf_of(page.text)
        assert client.post("/replay/preview", data={"csrf": "forged"}).status_code == 403
        r = client.post("/replay/preview", data={"csrf": token})
    assert r.status_code == 200, r.text
    assert "Dry run:" in r.text and "Nothing was changed." in r.text
    assert "0 messages" in r.text  # the same configuration: nothing to correct
    assert "hook" in r.text  # one row per destination
    with w.engine.store.reader() as reader:
        assert reader.counts() == counts
