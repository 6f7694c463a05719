"""CLI acceptance: ``tactful import`` of generated exports and of hand-written files."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tactful.testing.sample import SampleFiles

from .conftest import PERSONS, Cli, Expected, write_config


def _jsonl(path: Path, *docs: Any) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in docs), encoding="utf-8")
    return path


def _ticket(
    ticket_id: int, status: str, updated_at: str, requester_id: int | None = 9001, **more: Any
) -> dict[str, Any]:
    ticket: dict[str, Any] = {
        "id": ticket_id,
        "status": status,
        "priority": "normal",
        "subject": "Where is my order?",
        "tags": ["wismo"],
        "created_at": "2026-03-02T10:00:00Z",
        "updated_at": updated_at,
        "via": {"channel": "email"},
    }
    if requester_id is not None:
        ticket["requester_id"] = requester_id
    ticket.update(more)
    return {"ticket": ticket}


USER = {
    "user": {
        "id": 9001,
        "email": " Ann.Lee@Example.COM ",
        "phone": "+14155550123",
        "external_id": "cust-42",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-03-01T00:00:00Z",
        "active": True,
    }
}


# --------------------------------------------------------------------------- generated exports


def test_import_summary_counts_match_the_files(
    cli: Cli, exports: SampleFiles, expected: Expected
) -> None:
    result = cli.ok("import", *map(str, exports.paths), "--json")
    s = result.json()
    assert s["files"] == len(exports.paths)
    assert s["documents"] == len(exports.paths)  # one page a .json file
    assert s["records"] == expected.records
    assert s["applied"] == expected.records
    assert s["duplicates"] == 0
    assert s["rejected"] == {}
    # Ratings that were only offered are not imported, and are counted by reason.
    assert sum(s["skipped"].values()) == expected.offered_only > 0
    assert len(s["skipped"]) == 1
    assert "offered" in next(iter(s["skipped"]))
    assert s["shapes"] == {
        "users_page": len(exports.user_pages),
        "tickets_page": len(exports.ticket_pages) + len(exports.ticket_update_pages),
        "ticket_events_page": len(exports.ticket_event_pages),
        "ratings_page": len(exports.rating_pages),
    }
    assert s["entered"] > 0
    assert s["records_per_second"] > 0


def test_import_human_summary(cli: Cli, exports: SampleFiles, expected: Expected) -> None:
    result = cli.ok("import", *map(str, exports.paths))
    text = result.text
    assert f"read {expected.records:,} events" in text
    assert f"{expected.records:,} applied" in text
    assert "0 duplicates" in text
    assert str(expected.offered_only) in text


def test_people_match_tickets_counted_from_the_files(imported: Cli, expected: Expected) -> None:
    people = imported.ok("people", "--json").lines()
    assert len(people) == len(expected.persons) == PERSONS
    seen = set()
    for person in people:
        key = expected.key_of(person)
        seen.add(key)
        want = expected.persons[key]
        assert sorted(map(int, person["identifiers"]["zendesk_user_id"])) == want["user_ids"]
        got = {k: person["state"][k] for k in want["state"]}
        assert got == want["state"], person["person_id"]
    assert seen == set(expected.persons)
    # Users of the same email (other capitalisation) are one person.
    assert any(len(p["identifiers"]["zendesk_user_id"]) == 2 for p in people)
    status = Counter(t["status"] for t in expected.final.values())
    assert sum(p["state"]["open_ticket_count"] for p in people) == sum(
        status[s] for s in ("new", "open", "pending", "hold")
    )


def test_reimport_is_all_duplicates_and_changes_nothing(
    imported: Cli, exports: SampleFiles, expected: Expected
) -> None:
    before = imported.ok("people", "--json").out
    segments = imported.ok("segments", "--json").out
    again = imported.ok("import", *map(str, exports.paths), "--json").json()
    assert again["records"] == expected.records
    assert again["applied"] == 0
    assert again["duplicates"] == expected.records
    assert again["entered"] == again["exited"] == 0
    assert sum(again["skipped"].values()) == expected.offered_only
    assert imported.ok("people", "--json").out == before
    assert imported.ok("segments", "--json").out == segments


def test_batch_size_does_not_change_the_outcome(
    cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, exports: SampleFiles
) -> None:
    small = Cli(capsys, write_config(capsys, tmp_path / "small.toml", tmp_path / "small.db"))
    cli.ok("import", *map(str, exports.paths))
    small.ok("import", *map(str, exports.paths), "--batch-size", "7")

    def states(c: Cli) -> dict[tuple[str, ...], Any]:
        # Person ids are salted per store: key persons by their Zendesk user ids.
        return {
            tuple(sorted(p["identifiers"]["zendesk_user_id"])): p["state"]
            for p in c.ok("people", "--json").lines()
        }

    assert states(small) == states(cli)


def test_by_person_gives_the_same_people_and_summary(
    cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, exports: SampleFiles
) -> None:
    grouped = Cli(capsys, write_config(capsys, tmp_path / "bp.toml", tmp_path / "bp.db"))
    plain = cli.ok("import", *map(str, exports.paths), "--json").json()
    by_person = grouped.ok("import", *map(str, exports.paths), "--by-person", "--json").json()
    for key in ("files", "documents", "records", "applied", "duplicates", "entered", "exited"):
        assert by_person[key] == plain[key], key
    assert by_person["rejected"] == plain["rejected"]

    def people(c: Cli) -> dict[tuple[str, ...], Any]:
        # Person ids and holdout draws are salted per store: compare all but the draws.
        return {
            tuple(sorted(p["identifiers"]["zendesk_user_id"])): (
                p["state"],
                {name: (m["member"], m["since"]) for name, m in p["segments"].items()},
            )
            for p in c.ok("people", "--json").lines()
        }

    assert people(grouped) == people(cli)
    again = grouped.ok("import", *map(str, exports.paths), "--by-person", "--json").json()
    assert again["applied"] == 0 and again["duplicates"] == plain["records"]


def test_file_order_does_not_change_the_state(
    cli: Cli, capsys: pytest.CaptureFixture[str], tmp_path: Path, exports: SampleFiles
) -> None:
    backwards = Cli(capsys, write_config(capsys, tmp_path / "rev.toml", tmp_path / "rev.db"))
    cli.ok("import", *map(str, exports.paths))
    # ratings first, users last, every export's pages newest first
    backwards.ok("import", *map(str, reversed(exports.paths)))

    def states(c: Cli) -> dict[tuple[str, ...], Any]:
        return {
            tuple(sorted(p["identifiers"]["zendesk_user_id"])): p["state"]
            for p in c.ok("people", "--json").lines()
        }

    assert states(backwards) == states(cli)


# --------------------------------------------------------------------------- hand-written files


def test_import_jsonl_single_objects(cli: Cli, tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "single.jsonl",
        USER,
        _ticket(777, "open", "2026-03-02T10:00:00Z"),
        _ticket(777, "solved", "2026-03-03T12:00:00Z"),
    )
    s = cli.ok("import", str(path), "--json").json()
    assert s["files"] == 1
    assert s["documents"] == 3
    assert s["records"] == s["applied"] == 3
    assert s["shapes"] == {"user": 1, "ticket": 2}
    assert s["skipped"] == {}

    person = cli.ok("person", "ann.lee@example.com", "--json").json()
    assert person["identifiers"] == {
        "email": ["ann.lee@example.com"],
        "phone": ["+14155550123"],
        "external_id": ["cust-42"],
        "zendesk_user_id": ["9001"],
    }
    state = person["state"]
    assert state["ticket_count"] == 1
    assert state["has_open_ticket"] is False
    assert state["last_ticket_status"] == "solved"
    assert state["last_resolved_at"] == "2026-03-03T12:00:00Z"
    assert state["ticket_reason"] == "shipping"


def test_malformed_jsonl_names_file_and_line_and_applies_nothing(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text(
        json.dumps(USER)
        + "\n"
        + json.dumps(_ticket(777, "open", "2026-03-02T10:00:00Z"))
        + "\n"
        + '{"ticket": {"id": 778, "status": "open",\n',
        encoding="utf-8",
    )
    result = cli("import", str(path))
    assert result.code == 1
    assert "broken.jsonl" in result.text
    assert re.search(r"broken\.jsonl:3\b|line 3\b", result.text), result.text
    assert "invalid JSON" in result.text
    # Nothing of the file was applied: not the user, not the ticket of line 2.
    assert cli("person", "ann.lee@example.com").code == 1
    assert cli.ok("people", "--json").lines() == []


def test_malformed_json_names_file_and_line(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "page.json"
    path.write_text('{\n  "tickets": [\n    {"id": 1,,}\n  ]\n}\n', encoding="utf-8")
    result = cli("import", str(path), "--json")
    assert result.code == 1
    assert "page.json" in result.text
    assert re.search(r"page\.json:3\b|line 3\b", result.text), result.text
    assert cli.ok("people", "--json").out == ""


def test_unknown_object_shape_is_counted_not_fatal(cli: Cli, tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "mixed.jsonl", {"organization": {"id": 5}}, USER, 42)
    result = cli("import", str(path), "--json")
    assert result.code == 0, result.err
    s = result.json()
    assert s["documents"] == 3
    assert s["applied"] == 1
    unknown = {k: v for k, v in s["skipped"].items() if "unknown" in k}
    assert sum(unknown.values()) == 2, s["skipped"]
    assert s["shapes"] == {"unknown": 2, "user": 1}
    assert any("organization" in e for e in s["examples"]), s["examples"]
    assert cli("person", "cust-42").code == 0

    human = cli("import", str(path))
    assert human.code == 0
    assert "unknown object shape" in human.text


def test_ticket_without_requester_is_skipped_with_reason(cli: Cli, tmp_path: Path) -> None:
    path = _jsonl(
        tmp_path / "orphan.jsonl",
        _ticket(900, "open", "2026-03-02T10:00:00Z", requester_id=None),
    )
    result = cli("import", str(path), "--json")
    assert result.code == 1, result.err  # nothing usable: the account, and a failure
    s = result.json()
    assert s["applied"] == 0
    assert sum(s["skipped"].values()) == 1
    (reason,) = s["skipped"]
    assert "requester" in reason
    assert any("900" in e and "requester" in e for e in s["examples"]), s["examples"]
    assert cli.ok("people", "--json").out == ""


def test_missing_file_fails_before_importing_anything(cli: Cli, tmp_path: Path) -> None:
    good = _jsonl(tmp_path / "good.jsonl", USER)
    result = cli("import", str(good), str(tmp_path / "nope.json"))
    assert result.code == 1
    assert "nope.json" in result.text
    assert cli("person", "cust-42").code == 1


def test_workers_must_be_at_least_one(cli: Cli, tmp_path: Path) -> None:
    good = _jsonl(tmp_path / "good.jsonl", USER)
    result = cli("import", str(good), "--by-person", "--workers", "0")
    assert result.code == 1
    assert "--workers must be at least 1" in result.text
    assert cli("person", "cust-42").code == 1


def test_unknown_extension_is_an_error(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "data.csv"
    path.write_text("id,status\n1,open\n", encoding="utf-8")
    result = cli("import", str(path))
    assert result.code == 1
    assert "data.csv" in result.text


# --------------------------------------------------------------------------- exact account


def test_a_directory_is_named_as_such_not_missing(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    _jsonl(folder / "users.jsonl", USER)
    result = cli("import", str(folder))
    assert result.code == 1
    assert "a directory" in result.text
    assert "no such file" not in result.text


def test_nothing_usable_is_a_failure_with_an_exact_account(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "wrong.json"
    path.write_text('{"a": 1}', encoding="utf-8")
    result = cli("import", str(path), "--json")
    assert result.code == 1
    s = result.json()
    assert (s["records"], s["applied"], s["documents"]) == (0, 0, 1)
    assert s["skipped"] == {"unknown object shape": 1}
    human = cli("import", str(path))
    assert human.code == 1
    assert "nothing usable" in human.text
    assert "0 applied, 0 duplicates, 0 rejected; 1 objects skipped" in human.text


def test_a_malformed_json_file_anywhere_changes_nothing(cli: Cli, tmp_path: Path) -> None:
    good = tmp_path / "a-users.json"
    good.write_text(json.dumps({"users": [USER["user"]]}), encoding="utf-8")
    bad = tmp_path / "b-tickets.json"
    bad.write_text("not json", encoding="utf-8")
    result = cli("import", str(good), str(bad))
    assert result.code == 1
    assert "b-tickets.json" in result.text
    assert "nothing was imported" in result.text
    assert "before it were" not in result.text
    assert cli("person", "cust-42").code == 1
