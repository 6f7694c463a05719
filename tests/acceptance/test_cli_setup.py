"""CLI acceptance: ``init``, ``check``, ``--help``, entry points, ``demo``, docs honesty."""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tactful import __version__
from tactful.cli.main import build_parser
from tactful.store.migrations import LATEST_VERSION, MIGRATIONS

from .conftest import Cli, squash, write_config

REPO = Path(__file__).resolve().parents[2]
SEEDED_SEGMENTS = {"suppress_promos", "service_recovery", "reintroduce"}

# A config with one problem per section: every one must be reported, at once.
BROKEN = """
[store]
url = "sqlite:///broken.db"

[zendesk]
subdomain = "acme"
email = "ops@acme.test"
api_token = "env:TACTFUL_ACCEPTANCE_MISSING_TOKEN"

[[states]]
name = "open_ticket"
when = "has_open_ticket and"

[[segments]]
name = "suppress_promos"
when = "has_open_tickets"

[[segments]]
name = "calm_down"
when = "ticket_count >= 1"
cooldown = "soon"

[[segments]]
name = "two_lines"
when = '''
not has_open_ticket
and bogus_field > 1
'''
"""


def _broken(tmp_path: Path) -> Path:
    path = tmp_path / "broken.toml"
    path.write_text(BROKEN, encoding="utf-8")
    return path


def _assert_all_broken_errors(errors: list[str]) -> None:
    text = [squash(e) for e in errors]

    def one(*needles: str) -> str:
        found = [e for e in text if all(n in e for n in needles)]
        assert len(found) == 1, (needles, text)
        return found[0]

    one("zendesk.api_token", "TACTFUL_ACCEPTANCE_MISSING_TOKEN")
    bad_parse = one("states[0]", "open_ticket")
    assert re.search(r"line 1, column 20\b", bad_parse), bad_parse
    unknown = one("segments[0]", "suppress_promos", "has_open_tickets")
    assert "unknown field" in unknown
    assert re.search(r"line 1, column 1\b", unknown), unknown
    one("segments[1]", "calm_down", "cooldown", "soon")
    two_lines = one("segments[2]", "two_lines", "bogus_field")
    assert re.search(r"line 2, column 5\b", two_lines), two_lines
    assert len(errors) == 5, text


# --------------------------------------------------------------------------- init


def test_init_writes_a_starter_file_that_checks(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "fresh.toml"
    result = cli.raw("init", str(path))
    assert result.code == 0, result.err
    text = path.read_text(encoding="utf-8")
    for section in ("[store]", "[[reasons]]", "[[states]]", "[[segments]]", "[consent]"):
        assert section in text
    assert text.count("\n#") > 20, "the starter file should be commented"

    check = cli.raw("--config", str(path), "check", "--json")
    assert check.code == 0, check.err
    summary = check.json()
    assert summary["ok"] is True
    assert summary["source"] == str(path)
    assert set(summary["segments"]) >= SEEDED_SEGMENTS
    assert "refund" in summary["reasons"]
    assert summary["states"], summary
    assert summary["destinations"] == []

    human = cli.raw("--config", str(path), "check")
    assert human.code == 0
    assert "ok" in human.text


def test_init_refuses_to_overwrite_without_force(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text("# my own config\n", encoding="utf-8")
    refused = cli.raw("init", str(path))
    assert refused.code == 1
    assert "force" in refused.text
    assert path.read_text(encoding="utf-8") == "# my own config\n"

    forced = cli.raw("init", str(path), "--force")
    assert forced.code == 0
    assert "[[segments]]" in path.read_text(encoding="utf-8")


def test_init_default_path_is_tactful_toml_in_cwd(cli: Cli, tmp_path: Path) -> None:
    workdir = tmp_path / "wd"
    workdir.mkdir()
    os.chdir(workdir)  # the autouse fixture restores the cwd
    assert cli.raw("init").code == 0
    assert (workdir / "tactful.toml").is_file()
    # ./tactful.toml is then the default configuration
    summary = cli.raw("check", "--json").json()
    assert summary["ok"] is True
    assert summary["source"] == "tactful.toml"


# --------------------------------------------------------------------------- check


def test_check_reports_every_error_at_once_json(cli: Cli, tmp_path: Path) -> None:
    result = cli.raw("--config", str(_broken(tmp_path)), "check", "--json")
    assert result.code == 1
    body = result.json()
    assert body["ok"] is False
    assert set(body) == {"ok", "source", "errors"}
    assert all(isinstance(e, str) for e in body["errors"])
    _assert_all_broken_errors(body["errors"])


def test_check_reports_every_error_at_once_text(cli: Cli, tmp_path: Path) -> None:
    result = cli.raw("--config", str(_broken(tmp_path)), "check")
    assert result.code == 1
    text = result.text
    assert "5 configuration errors" in text
    for needle in (
        "TACTFUL_ACCEPTANCE_MISSING_TOKEN",
        "states[0] (open_ticket)",
        "has_open_tickets",
        "soon",
        "bogus_field",
    ):
        assert needle in text


def test_broken_config_stops_other_commands(cli: Cli, tmp_path: Path) -> None:
    result = cli.raw("--config", str(_broken(tmp_path)), "segments", "--json")
    assert result.code == 1
    assert "bogus_field" in result.text
    assert not (tmp_path / "broken.db").exists()


def test_missing_secret_is_fine_once_set(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TACTFUL_ACCEPTANCE_MISSING_TOKEN", "s3cret-token")
    body = cli.raw("--config", str(_broken(tmp_path)), "check", "--json").json()
    assert not any("TACTFUL_ACCEPTANCE_MISSING_TOKEN" in e for e in body["errors"])
    assert len(body["errors"]) == 4
    assert "s3cret-token" not in json.dumps(body)


def test_check_missing_file(cli: Cli, tmp_path: Path) -> None:
    result = cli.raw("--config", str(tmp_path / "nope.toml"), "check", "--json")
    assert result.code == 1
    body = result.json()
    assert body["ok"] is False
    assert any("nope.toml" in e for e in body["errors"])


def test_tactful_config_env_var_is_honoured(
    cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = write_config(capsys, tmp_path / "via-env.toml", tmp_path / "env.db")
    monkeypatch.setenv("TACTFUL_CONFIG", str(good))
    summary = cli.raw("check", "--json").json()
    assert summary["ok"] is True
    assert summary["source"] == str(good)
    assert summary["store"].endswith("env.db")

    monkeypatch.setenv("TACTFUL_CONFIG", str(_broken(tmp_path)))
    broken = cli.raw("check", "--json")
    assert broken.code == 1
    assert broken.json()["source"].endswith("broken.toml")

    # --config wins over the environment
    explicit = cli.raw("--config", str(good), "check", "--json")
    assert explicit.code == 0
    assert explicit.json()["source"] == str(good)


# --------------------------------------------------------------------------- help and docs


def _commands() -> list[tuple[str, ...]]:
    """Every registered (sub)command path, parsed from the argparse tree."""
    found: list[tuple[str, ...]] = []

    def walk(parser: argparse.ArgumentParser, path: tuple[str, ...]) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    found.append((*path, name))
                    walk(sub, (*path, name))

    walk(build_parser(), ())
    return found


COMMANDS = _commands()


def test_the_command_tree_is_what_the_docs_promise() -> None:
    top = {c[0] for c in COMMANDS}
    assert {
        "init",
        "check",
        "import",
        "replay",
        "tick",
        "person",
        "people",
        "segments",
        "demo",
    } <= top
    assert ("segments", "members") in COMMANDS
    assert ("segments", "preview") in COMMANDS


@pytest.mark.parametrize("command", [(), *COMMANDS], ids=lambda c: " ".join(c) or "tactful")
def test_every_command_has_help(cli: Cli, command: tuple[str, ...]) -> None:
    result = cli.raw(*command, "--help")
    assert result.code == 0
    assert result.out.startswith("usage: tactful")
    assert " ".join(("tactful", *command)) in squash(result.out)


def test_docs_mention_every_registered_subcommand() -> None:
    docs = squash((REPO / "docs" / "cli.md").read_text(encoding="utf-8"))
    missing = [" ".join(c) for c in COMMANDS if f"tactful {' '.join(c)}" not in docs]
    assert not missing, f"docs/cli.md does not document: {missing}"


def test_usage_errors_exit_2(cli: Cli) -> None:
    assert cli.raw().code == 2  # no command
    assert cli.raw("no-such-command").code == 2
    assert cli.raw("person").code == 2  # KEY missing
    assert cli.raw("--version").code == 0


# --------------------------------------------------------------------------- entry points


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TACTFUL_CONFIG"}
    env["COLUMNS"] = "400"
    return env


def test_python_dash_m_and_console_script(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("tactful")
    assert script.is_file(), "the tactful console script is installed next to python"
    env = _env()

    def run(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    version = run(sys.executable, "-m", "tactful", "--version")
    assert version.returncode == 0, version.stderr
    assert __version__ in version.stdout

    assert run(str(script), "init", "cfg.toml").returncode == 0
    cfg = tmp_path / "cfg.toml"
    cfg.write_text(
        cfg.read_text().replace("sqlite:///tactful.db", f"sqlite:///{tmp_path / 'p.db'}"),
        encoding="utf-8",
    )
    check = run(str(script), "--config", "cfg.toml", "check", "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["ok"] is True

    data = tmp_path / "one.jsonl"
    data.write_text(
        json.dumps(
            {
                "ticket": {
                    "id": 42,
                    "status": "open",
                    "subject": "Allergic reaction to the serum",
                    "created_at": "2026-05-01T08:00:00Z",
                    "updated_at": "2026-05-01T08:00:00Z",
                    "requester": {"id": 4242, "email": "sub@example.com"},
                }
            }
        )
        + "\n",
        encoding="utf-8",
    )
    imported = run(str(script), "--config", "cfg.toml", "import", str(data), "--json")
    assert imported.returncode == 0, imported.stderr
    assert json.loads(imported.stdout)["applied"] == 1

    person = run(
        sys.executable, "-m", "tactful", "--config", "cfg.toml", "person", "4242", "--json"
    )
    assert person.returncode == 0, person.stderr
    body = json.loads(person.stdout)
    assert body["identifiers"]["email"] == ["sub@example.com"]
    assert body["state"]["ticket_reason"] == "reaction"
    assert body["segments"]["reaction_care"]["member"] is True

    unknown = run(sys.executable, "-m", "tactful", "--config", "cfg.toml", "person", "x@y.z")
    assert unknown.returncode == 1
    usage = run(str(script), "bogus")
    assert usage.returncode == 2


# --------------------------------------------------------------------------- demo


def test_demo_generates_imports_and_prints_segments(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = cli.raw("demo", "--offline", "--dir", str(out), "--persons", "200")
    assert result.code == 0, result.err
    for name in SEEDED_SEGMENTS:
        assert name in result.out
    assert (out / "tactful.toml").is_file()
    assert (out / "tactful.db").is_file()
    assert list((out / "exports").glob("tickets-*.json"))
    # The store it built is usable with the config it wrote.
    segs = cli.raw("--config", str(out / "tactful.toml"), "segments", "--json")
    assert segs.code == 0, segs.err
    body = segs.json()
    assert sum(body["support_states"].values()) == 200
    people = cli.raw("--config", str(out / "tactful.toml"), "people", "--json").lines()
    assert len(people) == 200


def test_migrate_status_changes_nothing_and_migrate_applies(cli: Cli, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    assert not db.exists()
    status = cli.ok("migrate", "--status", "--json").json()
    assert status["version"] == 0 and status["latest"] == LATEST_VERSION
    versions = [version for version, _, _ in MIGRATIONS]
    assert versions == list(range(1, len(versions) + 1))  # numbered without gaps
    assert [p["version"] for p in status["pending"]] == versions
    assert not db.exists()  # --status wrote nothing
    applied = cli.ok("migrate", "--json").json()
    assert (
        applied["version"] == LATEST_VERSION
        and [p["version"] for p in applied["applied"]] == versions
    )
    again = cli.ok("migrate", "--status")
    assert f"schema version {LATEST_VERSION} (latest {LATEST_VERSION}); 0 migration(s) pending" in (
        again.text
    )
    # A store migrated by a newer Tactful is refused, by `migrate` and by every command.
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO schema_migrations VALUES (?, 'from the future', 0)", (99,))
    conn.commit()
    conn.close()
    for args in (("migrate", "--status"), ("segments",)):
        result = cli(*args)
        assert result.code == 1
        assert "schema version 99, newer than this Tactful knows" in result.text


# --------------------------------------------------------------------------- no configuration


def test_check_without_a_config_file_says_so(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TACTFUL_CONFIG", raising=False)
    (tmp_path / "empty").mkdir()
    os.chdir(tmp_path / "empty")  # the autouse fixture restores the cwd
    result = cli.raw("check")
    assert result.code == 1
    assert "no configuration file" in result.text
    assert "ok" not in result.out
    body = cli.raw("check", "--json")
    assert body.code == 1
    assert body.json()["ok"] is False


def test_read_commands_never_create_a_store(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TACTFUL_CONFIG", raising=False)
    empty = tmp_path / "empty"
    empty.mkdir()
    os.chdir(empty)
    for command in (["people"], ["segments"], ["person", "x@example.com"], ["deliveries"]):
        result = cli.raw(*command)
        assert result.code == 1, command
        assert "no store at tactful.db" in result.text
        assert "no configuration file" in result.text
    assert list(empty.iterdir()) == []
