"""Issue 21 §4: `tactful sync --dry-run` lists per destination what would be sent now (adds,
removes, profile updates, events, with samples) and sends nothing, writes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tactful.cli.main import main
from tactful.config import settings_from_toml
from tactful.delivery.store import DeliveryStore
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import at, consent, new_store_url, ticket, user
from tests.integration.fault_servers import fault_servers

pytestmark = pytest.mark.store

HOOK_SECRET = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="


def config_text(url: str, store: str) -> str:
    root = url.rsplit("/", 1)[0]
    return f"""
[store]
url = "{store}"
[[segments]]
name = "suppress"
when = "has_open_ticket"
[[destinations]]
name = "hook"
type = "webhook"
url = "{url}"
secret = "{HOOK_SECRET}"
[[destinations]]
name = "meta"
type = "meta_audience"
segment = "suppress"
audience_id = "123"
access_token = "tok"
base_url = "{root}"
"""


def run(capsys: pytest.CaptureFixture[str], config: Path, *args: str) -> Any:
    code = main(["--config", str(config), *args, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out)


def test_dry_run_lists_what_would_be_sent_and_sends_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = new_store_url(tmp_path)
    with fault_servers("ok") as servers:
        text = config_text(servers["ok"].url, url)
        config = tmp_path / "tactful.toml"
        config.write_text(text)
        settings = settings_from_toml(text, environ={})
        engine = Engine(rules_from_settings(settings), open_store(url))
        engine.apply(
            [
                user(1, emails=("ann@example.com",)),
                user(2, emails=("bo@example.com",)),
                consent(at(-1), "ads", False, email="bo@example.com"),  # skipped for Meta
                ticket(1, at(0), "open", requester_id=1),
                ticket(2, at(0), "open", requester_id=2),
            ]
        )
        engine.store.close()

        plan = run(capsys, config, "sync", "--dry-run")
        assert plan["dry_run"] is True
        meta, hook = plan["destinations"]["meta"], plan["destinations"]["hook"]
        assert meta["would_send"]["audience_add"] == 1 and meta["skipped"] >= 1, json.dumps(meta)
        assert meta["samples"][0]["kind"] == "audience_add"
        assert meta["samples"][0]["email"] == "a***@example.com"  # masked
        events = hook["would_send"]["event"]
        assert events >= 2 and hook["samples"][0]["name"]
        assert servers["ok"].requests == 0  # nothing sent
        # nothing written either: the outbox is still unrouted, a second preview agrees
        assert run(capsys, config, "sync", "--dry-run") == plan
        check = open_store(url)
        assert DeliveryStore(check).listing(["pending", "done", "dead", "skipped"]) == []
        check.close()

        # --full also previews the reconcile (read only)
        full = run(capsys, config, "sync", "--dry-run", "--full")
        assert full["destinations"]["meta"]["reconcile"] == {"add": 1, "remove": 0}

        # the real sync sends what the preview listed
        report = run(capsys, config, "sync")
        # one request per webhook event, one batch for Meta's add and one reading of the
        # audience's size (issue 21 §3; the same loopback host)
        assert servers["ok"].requests == events + 2
        assert report["skipped"] >= 1
