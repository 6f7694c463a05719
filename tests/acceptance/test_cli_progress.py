"""``tactful import`` and ``replay`` on a terminal show a progress bar with a rate and an ETA;
piped, or with ``--json``, they print no bar (issue 24)."""

from __future__ import annotations

import pytest

from tactful.testing.sample import SampleFiles

from .conftest import Cli


def test_import_and_replay_show_rate_and_eta_on_a_terminal(
    cli: Cli, exports: SampleFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")  # rich: the console is a terminal
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    imported = cli.ok("import", *map(str, exports.paths))
    assert "importing" in imported.err
    assert "/s" in imported.err  # bytes per second
    assert "-:--:--" in imported.err or "0:00:0" in imported.err  # the ETA column
    replayed = cli.ok("replay")
    assert "replaying events" in replayed.err
    assert "events/s" in replayed.err


def test_no_bar_when_piped_or_with_json(cli: Cli, exports: SampleFiles) -> None:
    imported = cli.ok("import", *map(str, exports.paths), "--json")
    assert "importing" not in imported.err
    replayed = cli.ok("replay")
    assert "replaying events" not in replayed.err and "events/s" not in replayed.err
