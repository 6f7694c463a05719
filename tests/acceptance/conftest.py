"""Shared fixtures for the CLI acceptance tests.

The CLI is driven in-process through ``tactful.cli.main.main`` (output captured with ``capsys``);
a few tests use ``subprocess`` to prove the entry points work. Expectations about generated
data are computed here straight from the export files, independently of the importer.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tactful.cli.main import main
from tactful.testing.sample import SampleFiles, generate_exports

PERSONS = 300
OPEN_STATUSES = frozenset({"new", "open", "pending", "hold"})
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")


def parse_z(text: str) -> datetime:
    assert TIME_RE.match(text), f"not an ISO 8601 UTC time with Z: {text!r}"
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def squash(text: str) -> str:
    """Whitespace-normalized text (rich may wrap long messages)."""
    return " ".join(text.split())


@dataclass
class Result:
    code: int | str | None
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    def lines(self) -> list[dict[str, Any]]:
        rows = [json.loads(line) for line in self.out.splitlines() if line.strip()]
        assert all(isinstance(r, dict) for r in rows)
        return rows

    @property
    def text(self) -> str:
        return squash(self.out + " " + self.err)


class Cli:
    """``cli("person", "x@y", "--json")`` runs ``tactful --config CONFIG person x@y --json``."""

    def __init__(self, capsys: pytest.CaptureFixture[str], config: Path | None) -> None:
        self.capsys = capsys
        self.config = config

    def raw(self, *args: str) -> Result:
        self.capsys.readouterr()
        try:
            code: int | str | None = main(list(args))
        except SystemExit as exc:  # argparse: --help, usage errors
            code = exc.code
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def __call__(self, *args: str) -> Result:
        prefix = [] if self.config is None else ["--config", str(self.config)]
        return self.raw(*prefix, *args)

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.code == 0, (args, result.code, result.out[-2000:], result.err[-2000:])
        return result


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No ./tactful.toml or $TACTFUL_CONFIG from the developer's shell; wide rich output.
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TACTFUL_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "400")


def write_config(
    capsys: pytest.CaptureFixture[str], path: Path, db: Path, *, extra: str = ""
) -> Path:
    """``tactful init PATH``, then point the store at ``db`` (and append ``extra``)."""
    result = Cli(capsys, None).raw("init", str(path))
    assert result.code == 0, result.err
    text = path.read_text(encoding="utf-8")
    assert 'url = "sqlite:///tactful.db"' in text
    text = text.replace('url = "sqlite:///tactful.db"', f'url = "sqlite:///{db.as_posix()}"')
    path.write_text(text + extra, encoding="utf-8")
    return path


@pytest.fixture
def config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    return write_config(capsys, tmp_path / "tactful.toml", tmp_path / "t.db")


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], config: Path) -> Cli:
    return Cli(capsys, config)


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> SampleFiles:
    return generate_exports(tmp_path_factory.mktemp("exports"), persons=PERSONS)


@pytest.fixture
def imported(cli: Cli, exports: SampleFiles) -> Cli:
    cli.ok("import", *map(str, exports.paths), "--json")
    return cli


# --------------------------------------------------------------------------- expectations


def _records(paths: tuple[Path, ...], key: str) -> list[dict[str, Any]]:
    return [r for p in paths for r in json.loads(p.read_bytes())[key]]


@dataclass
class Expected:
    """Facts about the generated exports, computed from the files alone."""

    users: list[dict[str, Any]]
    ticket_versions: list[dict[str, Any]]
    audits: list[dict[str, Any]]
    ratings: list[dict[str, Any]]
    final: dict[int, dict[str, Any]] = field(default_factory=dict)  # ticket id -> last version
    group_of: dict[int, tuple[str, Any]] = field(default_factory=dict)  # user id -> person key
    persons: dict[tuple[str, Any], dict[str, Any]] = field(default_factory=dict)

    @property
    def status_changes(self) -> int:
        return sum(1 for a in self.audits for c in a["child_events"] if "status" in c)

    @property
    def answered_ratings(self) -> list[dict[str, Any]]:
        return [r for r in self.ratings if r["score"] in ("good", "bad")]

    @property
    def records(self) -> int:
        """Canonical events: users, ticket versions, status changes, given ratings, and the
        words of each version's description (issue 25)."""
        return (
            len(self.users)
            + len(self.ticket_versions)
            + self.status_changes
            + len(self.answered_ratings)
            + sum(1 for t in self.ticket_versions if (t.get("description") or "").strip())
        )

    @property
    def offered_only(self) -> int:
        return len(self.ratings) - len(self.answered_ratings)

    def counted_tickets(self, key: tuple[str, Any]) -> list[dict[str, Any]]:
        """The person's tickets that count: not deleted, not merged away."""
        return [
            t
            for t in self.final.values()
            if self.group_of[t["requester_id"]] == key
            and t["status"] != "deleted"
            and "closed_by_merge" not in t["tags"]
        ]

    def key_of(self, person: dict[str, Any]) -> tuple[str, Any]:
        keys = {self.group_of[int(z)] for z in person["identifiers"]["zendesk_user_id"]}
        assert len(keys) == 1, person["identifiers"]
        return keys.pop()


@pytest.fixture(scope="session")
def expected(exports: SampleFiles) -> Expected:
    exp = Expected(
        users=_records(exports.user_pages, "users"),
        ticket_versions=_records(exports.ticket_pages + exports.ticket_update_pages, "tickets"),
        audits=_records(exports.ticket_event_pages, "ticket_events"),
        ratings=_records(exports.rating_pages, "satisfaction_ratings"),
    )
    for t in exp.ticket_versions:
        old = exp.final.get(t["id"])
        if old is None or old["updated_at"] < t["updated_at"]:
            exp.final[t["id"]] = t
    # Persons: users sharing a normalized (trimmed, lower-cased) email are one person.
    for u in exp.users:
        email = (u["email"] or "").strip().lower()
        exp.group_of[u["id"]] = ("email", email) if email else ("user", u["id"])
    by_person: dict[tuple[str, Any], list[int]] = defaultdict(list)
    for user_id, key in exp.group_of.items():
        by_person[key].append(user_id)
    for key, user_ids in by_person.items():
        tickets = exp.counted_tickets(key)
        open_ = [t for t in tickets if t["status"] in OPEN_STATUSES]
        given = sorted(
            (r for r in exp.answered_ratings if exp.group_of[r["requester_id"]] == key),
            key=lambda r: r["updated_at"],
        )
        exp.persons[key] = {
            "user_ids": sorted(user_ids),
            "state": {
                "ticket_count": len(tickets),
                "open_ticket_count": len(open_),
                "has_open_ticket": bool(open_),
                "last_ticket_at": max((t["created_at"] for t in tickets), default=None),
                "last_activity_at": max((t["updated_at"] for t in tickets), default=None),
                "csat_score": {"good": 5, "bad": 1}[given[-1]["score"]] if given else None,
            },
        }
    return exp
