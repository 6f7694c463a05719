"""The sample generator writes Zendesk-shaped export pages, deterministically and in order."""

from __future__ import annotations

import base64
import itertools
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tactful.testing import sample
from tactful.testing.sample import SampleFiles, generate_exports
from tactful.testing.sample import exports as sample_exports

PERSONS = 1500

# Field sets copied from the recorded Zendesk responses (fixtures/zendesk-recorded).
TICKET_KEYS = {
    "allow_attachments", "allow_channelback", "assignee_id", "brand_id", "collaborator_ids",
    "created_at", "custom_fields", "custom_status_id", "description", "due_at", "email_cc_ids",
    "external_id", "fields", "follower_ids", "followup_ids", "forum_topic_id",
    "from_messaging_channel", "generated_timestamp", "group_id", "has_incidents", "id",
    "is_public", "organization_id", "priority", "problem_id", "raw_subject", "recipient",
    "requester_id", "satisfaction_rating", "sharing_agreement_ids", "status", "subject",
    "submitter_id", "tags", "ticket_form_id", "type", "updated_at", "url", "via",
}  # fmt: skip
USER_KEYS = {
    "active", "alias", "created_at", "custom_role_id", "default_group_id", "details", "email",
    "external_id", "iana_time_zone", "id", "last_login_at", "locale", "locale_id", "moderator",
    "name", "notes", "only_private_comments", "organization_id", "phone", "photo",
    "report_csv", "restricted_agent", "role", "role_type", "shared", "shared_agent",
    "shared_phone_number", "signature", "suspended", "tags", "ticket_restriction", "time_zone",
    "two_factor_auth_enabled", "updated_at", "url", "user_fields", "verified",
}  # fmt: skip
CURSOR_PAGE_KEYS = {"after_url", "after_cursor", "before_url", "before_cursor", "end_of_stream"}
EVENT_KEYS = {
    "id", "ticket_id", "timestamp", "created_at", "updater_id", "via", "event_type",
    "child_events",
}  # fmt: skip
RATING_KEYS = {
    "id", "url", "assignee_id", "group_id", "requester_id", "ticket_id", "score", "created_at",
    "updated_at", "comment",
}  # fmt: skip


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_bytes())
    return data


def _records(paths: tuple[Path, ...], key: str) -> list[dict[str, Any]]:
    return [record for path in paths for record in _load(path)[key]]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> SampleFiles:
    return generate_exports(tmp_path_factory.mktemp("sample"), persons=PERSONS)


def test_same_seed_gives_identical_files(files: SampleFiles, tmp_path: Path) -> None:
    again = generate_exports(tmp_path / "again", persons=PERSONS)
    assert [p.name for p in again.paths] == [p.name for p in files.paths]
    for mine, theirs in zip(files.paths, again.paths, strict=True):
        assert mine.read_bytes() == theirs.read_bytes(), mine.name
    other = generate_exports(tmp_path / "other", persons=PERSONS, seed=8)
    assert other.ticket_pages[0].read_bytes() != files.ticket_pages[0].read_bytes()


def test_counts_match_the_files(files: SampleFiles) -> None:
    assert files.users == len(_records(files.user_pages, "users"))
    assert files.tickets == len(_records(files.ticket_pages, "tickets"))
    assert files.ticket_updates == len(_records(files.ticket_update_pages, "tickets"))
    assert files.ticket_events == len(_records(files.ticket_event_pages, "ticket_events"))
    assert files.ratings == len(_records(files.rating_pages, "satisfaction_ratings"))
    assert files.records == (
        files.users + files.tickets + files.ticket_updates + files.ticket_events + files.ratings
    )
    assert PERSONS <= files.users <= PERSONS * 1.05  # a few duplicate user ids
    assert PERSONS <= files.tickets <= PERSONS * 3  # about 1 to 3 tickets a person
    assert files.ticket_updates > 0 and files.ticket_events > files.tickets and files.ratings > 0
    assert set(files.paths) == set(files.out_dir.glob("*.json"))


def test_pages_hold_at_most_their_page_size(files: SampleFiles) -> None:
    kinds = [
        (files.user_pages, "users", 1000),
        (files.ticket_pages, "tickets", 1000),
        (files.ticket_update_pages, "tickets", 1000),
        (files.ticket_event_pages, "ticket_events", 1000),
        (files.rating_pages, "satisfaction_ratings", 100),
    ]
    for paths, key, size in kinds:
        pages = [_load(p) for p in paths]
        assert all(len(page[key]) <= size for page in pages)
        assert all(len(page[key]) == size for page in pages[:-1])  # only the last is short
    assert len(files.ticket_pages) > 1 and len(files.rating_pages) > 1


def test_cursor_pages_have_zendesk_envelopes(files: SampleFiles) -> None:
    for paths, key in ((files.user_pages, "users"), (files.ticket_pages, "tickets")):
        pages = [_load(p) for p in paths]
        for number, page in enumerate(pages):
            assert set(page) == {key} | CURSOR_PAGE_KEYS
            assert page["end_of_stream"] is (number == len(pages) - 1)
            last = page[key][-1]
            epoch = int(datetime.fromisoformat(last["updated_at"]).timestamp())
            cursor = base64.b64decode(page["after_cursor"]).decode()
            assert cursor == f"{epoch}.0||{last['id']}|"  # Zendesk's cursor shape
            assert page["after_url"].endswith("?cursor=" + quote(page["after_cursor"], safe=""))
        assert pages[0]["before_cursor"] is None
    events = [_load(p) for p in files.ticket_event_pages]
    for number, page in enumerate(events):
        assert set(page) == {"ticket_events", "next_page", "count", "end_time", "end_of_stream"}
        assert page["count"] == len(page["ticket_events"])
        assert page["end_time"] == page["ticket_events"][-1]["timestamp"]
        assert page["end_of_stream"] is (number == len(events) - 1)
    ratings = [_load(p) for p in files.rating_pages]
    for number, page in enumerate(ratings):
        assert set(page) == {"satisfaction_ratings", "meta", "links"}
        last = number == len(ratings) - 1
        assert page["meta"]["has_more"] is not last
        assert (page["links"]["next"] is None) is last


def test_records_have_zendesk_fields(files: SampleFiles) -> None:
    tickets = _records(files.ticket_pages, "tickets")
    assert all(set(t) == TICKET_KEYS for t in tickets)
    users = _records(files.user_pages, "users")
    assert all(set(u) >= USER_KEYS for u in users)
    assert all(u["role"] == "end-user" for u in users)
    events = _records(files.ticket_event_pages, "ticket_events")
    assert all(set(e) == EVENT_KEYS and e["event_type"] == "Audit" for e in events)
    for event in events:
        for child in event["child_events"]:
            assert {"id", "via", "via_reference_id", "event_type"} <= set(child)
    status_changes = [
        c
        for e in events
        for c in e["child_events"]
        if c["event_type"] == "Change" and "status" in c
    ]
    assert status_changes and all("previous_value" in c for c in status_changes)
    ratings = _records(files.rating_pages, "satisfaction_ratings")
    assert all(set(r) >= RATING_KEYS for r in ratings)
    assert {r["score"] for r in ratings} == {"good", "bad", "offered"}
    assert all(("reason_code" in r) == (r["score"] == "bad") for r in ratings)


def test_records_are_ordered_by_time(files: SampleFiles) -> None:
    def ordered(keys: list[tuple[Any, int]]) -> bool:
        return all(a <= b for a, b in itertools.pairwise(keys))

    for paths in (files.ticket_pages, files.ticket_update_pages):
        for path in paths:  # within each page, and across pages
            page = _load(path)["tickets"]
            assert ordered([(t["updated_at"], t["id"]) for t in page])
            assert ordered([(t["generated_timestamp"], t["id"]) for t in page])
        tickets = _records(paths, "tickets")
        assert ordered([(t["updated_at"], t["id"]) for t in tickets])
    users = _records(files.user_pages, "users")
    assert ordered([(u["updated_at"], u["id"]) for u in users])
    events = _records(files.ticket_event_pages, "ticket_events")
    assert ordered([(e["timestamp"], e["id"]) for e in events])
    ratings = _records(files.rating_pages, "satisfaction_ratings")
    assert ordered([(r["updated_at"], r["id"]) for r in ratings])


def test_times_fall_in_the_window(files: SampleFiles) -> None:
    assert files.start == datetime(2026, 8, 1, tzinfo=UTC)
    assert files.end == datetime(2026, 10, 30, tzinfo=UTC)
    start, end = "2026-08-01T00:00:00Z", "2026-10-30T00:00:00Z"
    tickets = _records(files.ticket_pages + files.ticket_update_pages, "tickets")
    assert all(start <= t["created_at"] <= t["updated_at"] <= end for t in tickets)
    users = _records(files.user_pages, "users")
    assert all(u["created_at"] <= u["updated_at"] <= start for u in users)


def test_the_story_has_the_hard_cases(files: SampleFiles) -> None:
    users = _records(files.user_pages, "users")
    active = [u for u in users if u["active"]]
    assert any(u["email"] is None and u["phone"] for u in active)  # phone only
    assert any(u["external_id"] for u in users)
    assert any(u["phone"] and not u["phone"].startswith("+") for u in users)  # national format
    assert any(not u["active"] and u["email"] is None for u in users)  # deleted users
    emails = Counter(u["email"].lower() for u in users if u["email"])
    assert any(n == 2 for n in emails.values())  # one person, two user ids
    consents = [u["user_fields"]["marketing_consent_ads"] for u in users]
    assert {True, False, None} <= set(consents)

    tickets = _records(files.ticket_pages, "tickets")
    updates = _records(files.ticket_update_pages, "tickets")
    statuses = Counter(t["status"] for t in tickets)
    assert {"new", "open", "pending", "solved", "closed", "deleted"} <= set(statuses)
    merged = [t for t in tickets + updates if "closed_by_merge" in t["tags"]]
    assert merged and all(t["status"] == "closed" for t in merged)
    assert {t["priority"] for t in tickets} == {None, "low", "normal", "high", "urgent"}
    reasons = {f["value"] for t in tickets for f in t["custom_fields"] if f["id"] == 360012345}
    assert {"refund_request", "reaction", "shipping_delay", None} <= reasons
    subjects = " ".join(t["subject"].lower() for t in tickets)
    for word in ("refund", "irritation", "allergic", "wrong", "damaged", "subscription"):
        assert word in subjects

    # Every repeated ticket is a later version, on the other side of open/resolved.
    first_seen = {t["id"]: t for t in tickets}
    assert all(u["id"] in first_seen for u in updates)
    assert all(first_seen[u["id"]]["updated_at"] < u["updated_at"] for u in updates)
    resolved_later = [u for u in updates if first_seen[u["id"]]["status"] == "open"]
    assert any(u["status"] in {"solved", "closed"} for u in resolved_later)
    assert len({t["id"] for t in tickets}) == len(tickets)  # each ticket once per export


def test_references_resolve(files: SampleFiles) -> None:
    user_ids = {u["id"] for u in _records(files.user_pages, "users")}
    tickets = _records(files.ticket_pages, "tickets")
    ticket_ids = {t["id"] for t in tickets}
    assert {t["requester_id"] for t in tickets} <= user_ids
    events = _records(files.ticket_event_pages, "ticket_events")
    assert {e["ticket_id"] for e in events} == ticket_ids
    ratings = _records(files.rating_pages, "satisfaction_ratings")
    assert {r["ticket_id"] for r in ratings} <= ticket_ids
    assert {r["requester_id"] for r in ratings} <= user_ids
    assert len({r["ticket_id"] for r in ratings}) == len(ratings)  # one rating per ticket


def test_final_ticket_status_matches_the_last_status_event(files: SampleFiles) -> None:
    latest = {t["id"]: t for t in _records(files.ticket_pages, "tickets")}
    latest.update({t["id"]: t for t in _records(files.ticket_update_pages, "tickets")})
    last_status: dict[int, str] = {}
    for event in _records(files.ticket_event_pages, "ticket_events"):
        for child in event["child_events"]:
            if "status" in child:
                last_status[event["ticket_id"]] = child["status"]
    assert all(last_status[i] == t["status"] for i, t in latest.items())


def test_small_chunks_and_many_runs_keep_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sample_exports, "CHUNK_PERSONS", 20)
    monkeypatch.setattr(sample_exports, "MAX_OPEN_RUNS", 3)
    files = generate_exports(tmp_path, persons=400)
    tickets = _records(files.ticket_pages, "tickets")
    keys = [(t["updated_at"], t["id"]) for t in tickets]
    assert keys == sorted(keys)
    assert files.tickets == len(tickets) and len({t["id"] for t in tickets}) == len(tickets)
    events = _records(files.ticket_event_pages, "ticket_events")
    assert [e["timestamp"] for e in events] == sorted(e["timestamp"] for e in events)
    assert not list(tmp_path.glob(".sample-*"))  # run files are cleaned up


def test_regenerating_replaces_old_pages(tmp_path: Path) -> None:
    generate_exports(tmp_path, persons=1200)
    files = generate_exports(tmp_path, persons=5)
    assert set(tmp_path.glob("*.json")) == set(files.paths)
    assert len(files.ticket_pages) == 1


def test_no_persons_gives_one_empty_final_page_per_export(tmp_path: Path) -> None:
    files = generate_exports(tmp_path, persons=0)
    assert files.records == 0
    for path in files.paths:
        page = _load(path)
        assert page.get("end_of_stream", True) is True
    assert len(files.paths) == 5


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        generate_exports(tmp_path, persons=1, start=datetime(2026, 8, 1))
    with pytest.raises(ValueError, match="persons"):
        generate_exports(tmp_path, persons=-1)
    with pytest.raises(ValueError, match="days"):
        generate_exports(tmp_path, persons=1, days=0)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = sample.main(
        [str(tmp_path), "--persons", "50", "--seed", "3", "--start", "2026-01-01T00:00:00Z"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "users" in out and "tickets" in out and str(tmp_path) in out
    tickets = _records(tuple(sorted(tmp_path.glob("tickets-0*.json"))), "tickets")
    assert tickets and all(t["created_at"].startswith("2026-") for t in tickets)
