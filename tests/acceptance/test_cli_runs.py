"""Issue 21 §2: ``tactful deliveries runs [NAME] [--limit N] [--json]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tactful.cli.main import main
from tactful.config import load_settings
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import at, ticket, user
from tests.acceptance.test_serve_delivery_faults import write_config
from tests.integration.fault_servers import fault_servers


def runs(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    """The JSON that ``tactful deliveries runs ... --json`` printed."""
    capsys.readouterr()
    assert main(["--config", str(config), "deliveries", "runs", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_deliveries_runs_lists_each_destinations_rounds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fault_servers("ok", "reset") as servers:
        config = write_config(tmp_path, {"good": servers["ok"].url, "broken": servers["reset"].url})
        settings = load_settings(config)
        engine = Engine(rules_from_settings(settings), open_store(settings.store.url))
        engine.apply(
            [user(9, emails=("dana@example.com",)), ticket(5, at(0), "open", requester_id=9)]
        )
        with engine.store.reader() as reader:
            (person,) = reader.person_ids(None, 10)
        engine.store.close()
        assert main(["--config", str(config), "sync", "--json"]) == 0
        assert main(["--config", str(config), "sync", "--json"]) == 0
    out = runs(config, capsys, "good")
    (good,) = out["runs"]
    assert good["destination"] == "good" and good["events"] > 0 and good["row_errors"] == []
    assert good["skipped"] == {"no_identifier": 0, "no_consent": 0, "holdout": 0, "other": 0}
    assert good["platform"] is None and out["next_before"] is None
    broken = runs(config, capsys, "broken")["runs"]
    assert broken and broken[0]["retried"] > 0
    errors = broken[0]["row_errors"]
    assert errors and all("reset by peer" in e["error"] for e in errors)
    assert {e["person_id"] for e in errors} == {person}
    # all destinations, paged
    every = runs(config, capsys)["runs"]
    assert {r["destination"] for r in every} == {"good", "broken"}
    first = runs(config, capsys, "--limit", "1")
    assert len(first["runs"]) == 1 and first["next_before"] == first["runs"][0]["id"]
    rest = runs(config, capsys, "--before", str(first["next_before"]))["runs"]
    assert [r["id"] for r in rest] == [r["id"] for r in every[1:]]
    # the table
    assert main(["--config", str(config), "deliveries", "runs", "broken"]) == 0
    text = capsys.readouterr().out
    assert "broken" in text and "1 row error: request to" in text
    assert main(["--config", str(config), "deliveries", "runs", "nope"]) != 0
