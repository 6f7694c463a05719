"""One hierarchy of errors (``tactful.exceptions``), sorted by what the caller should do;
the command line's exit status follows from it (docs/cli.md, Exit status)."""

from __future__ import annotations

import argparse

import pytest

from tactful.cli import main as cli
from tactful.config import ConfigError
from tactful.demo.runner import DemoError
from tactful.engine.importer import ChangedDuringImport
from tactful.exceptions import (
    CommandError,
    InvalidConfig,
    InvalidInput,
    NeedsOperator,
    ServiceError,
    TactfulError,
    TryAgain,
    UsageError,
    exit_code,
)
from tactful.report.build import ReportError
from tactful.store.base import StoreConflict, StoreError
from tactful.zendesk.backfill import BackfillError, BackfillSummary
from tactful.zendesk.client import ZendeskAuthError, ZendeskError
from tactful.zendesk.parse import ParseError

# Each project error, the kind it is, and the exit status it gives.
ERRORS: list[tuple[Exception, type[TactfulError], int]] = [
    (UsageError("--now: not a time"), UsageError, 2),
    (ConfigError(["store.url: must be a URL"], "tactful.toml"), InvalidConfig, 1),
    (ParseError("users.json", 3, "not JSON"), InvalidInput, 1),
    (ChangedDuringImport("users.json", 0, "changed while it was read"), InvalidInput, 1),
    (ReportError("no segment named 'x'"), InvalidInput, 1),
    (CommandError("no store at ./tactful.db"), CommandError, 1),
    (DemoError("port 8080 is taken"), CommandError, 1),
    (BackfillError("Zendesk failed", BackfillSummary()), CommandError, 1),
    (StoreError("disk full"), NeedsOperator, 1),
    (ZendeskError("HTTP 503"), ServiceError, 1),
    (ZendeskAuthError("HTTP 401"), ServiceError, 1),
    (StoreConflict("deadlock detected: nothing was written"), TryAgain, 75),
]


@pytest.mark.parametrize(("error", "kind", "status"), ERRORS, ids=lambda v: type(v).__name__)
def test_each_error_has_its_kind_and_exit_status(
    error: Exception, kind: type[TactfulError], status: int
) -> None:
    assert isinstance(error, kind)
    assert exit_code(error) == status
    assert exit_code(KeyboardInterrupt()) == 130 and exit_code(OSError()) == 1


def _raising(error: Exception) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tactful")
    sub = parser.add_subparsers(dest="command")

    def handler(app: cli.App) -> int:
        raise error

    sub.add_parser("boom").set_defaults(handler=handler)
    return parser


@pytest.mark.parametrize(("error", "kind", "status"), ERRORS, ids=lambda v: type(v).__name__)
def test_the_command_line_exits_with_the_kinds_status(
    error: Exception,
    kind: type[TactfulError],
    status: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Any project error a command lets through is a message and an exit status, never a
    traceback (a Zendesk or parse error escaping a command used to be one)."""
    monkeypatch.setattr(cli, "build_parser", lambda: _raising(error))
    assert cli.main(["boom"]) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert str(error).splitlines()[0] in err
