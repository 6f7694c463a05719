"""``tactful backfill`` end to end against a fake Zendesk (MockTransport and loopback HTTP).

The fake serves the pages of ``tactful.testing.sample`` exports the way Zendesk's endpoints do:
cursor-based incremental exports (users, tickets), the time-based ticket events export and
the cursor-paginated satisfaction ratings list, with Basic auth, faults (5xx, 429) and a
request log. A few requesters are left out of the users export so that backfill has to look
them up with ``GET /api/v2/users/{id}.json``.

Crash tests: a run stopped after two ticket pages (an exception from ``on_progress``, a
Zendesk outage, and a real ``kill -9`` of ``tactful backfill`` in a subprocess), then run
again, leaves exactly what a clean single run leaves.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import orjson
import pytest

from tactful.cli.main import main
from tactful.engine.engine import Engine
from tactful.engine.importer import import_files
from tactful.testing import harness
from tactful.testing.sample import SampleFiles, generate_exports
from tactful.zendesk.backfill import (
    BackfillError,
    PageDone,
    backfill,
    checkpoint_key,
)
from tactful.zendesk.client import STREAMS, Checkpoint, ZendeskClient, api_token_auth

pytestmark = pytest.mark.store

EMAIL = "agent@glowlab.example"
TOKEN = "test-token-123"
BASE = "https://glowlab.zendesk.com"
USERS = STREAMS["users"].path
TICKETS = STREAMS["tickets"].path
EVENTS = STREAMS["ticket_events"].path
RATINGS = STREAMS["satisfaction_ratings"].path


# --------------------------------------------------------------------------- the fake


def _ts(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _cursor(position: int) -> str:
    return base64.b64encode(f"{position}.0||fake|".encode()).decode()


def _position(cursor: str) -> int:
    return int(base64.b64decode(cursor).decode().split(".", 1)[0])


def _records(paths: tuple[Path, ...], key: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in paths:
        out.extend(orjson.loads(path.read_bytes())[key])
    return out


class FakeZendesk:
    """The four export endpoints, users/{id}.json, Basic auth, faults and a request log."""

    def __init__(
        self,
        files: SampleFiles,
        *,
        page_size: int = 10,
        page_sizes: dict[str, int] | None = None,
        hide_users: int = 3,
    ) -> None:
        self.files = files
        self.page_sizes = {name: page_size for name in STREAMS} | (page_sizes or {})
        users = _records(files.user_pages, "users")
        tickets = _records(files.ticket_pages, "tickets") + _records(
            files.ticket_update_pages, "tickets"
        )
        self.tickets = sorted(tickets, key=lambda t: (t["generated_timestamp"], t["id"]))
        self.events = sorted(
            _records(files.ticket_event_pages, "ticket_events"),
            key=lambda e: (e["timestamp"], e["id"]),
        )
        self.ratings = sorted(
            _records(files.rating_pages, "satisfaction_ratings"),
            key=lambda r: (_ts(r["updated_at"]), r["id"]),
        )
        self.by_id = {u["id"]: u for u in users}
        requesters = list(dict.fromkeys(t["requester_id"] for t in self.tickets))
        self.hidden = set(requesters[:hide_users])
        self.users = sorted(
            (u for u in users if u["id"] not in self.hidden),
            key=lambda u: (_ts(u["updated_at"]), u["id"]),
        )
        self.log: list[tuple[str, str, dict[str, str]]] = []
        self.faults: list[tuple[str, int, dict[str, str]]] = []  # (path prefix, status, headers)
        self.outage: str | None = None  # every request to this prefix fails with 503
        self.hook: Callable[[str, str, dict[str, str]], None] | None = None
        self.lock = threading.Lock()

    def requests_to(self, path: str) -> list[dict[str, str]]:
        return [q for _, p, q in self.log if p == path]

    def fail(
        self, prefix: str, status: int = 503, times: int = 1, headers: dict[str, str] | None = None
    ) -> None:
        self.faults.extend([(prefix, status, headers or {})] * times)

    # -- dispatch ------------------------------------------------------------------------
    def handle(
        self, method: str, path: str, query: dict[str, str], auth: str | None
    ) -> tuple[int, dict[str, str], bytes]:
        with self.lock:
            self.log.append((method, path, dict(query)))
        if self.hook is not None:
            self.hook(method, path, query)
        if auth != api_token_auth(EMAIL, TOKEN):
            return 401, {}, b'{"error": "Couldn\'t authenticate you"}'
        if self.outage is not None and path.startswith(self.outage):
            return 503, {}, b"Service Unavailable"
        with self.lock:
            for i, (prefix, status, headers) in enumerate(self.faults):
                if path.startswith(prefix):
                    del self.faults[i]
                    return status, headers, b'{"error": "fault"}'
        if method != "GET":
            return 405, {}, b"{}"
        if path == USERS:
            return self._cursor_page("users", self.users, query, _user_ts)
        if path == TICKETS:
            return self._cursor_page(
                "tickets", self.tickets, query, lambda t: t["generated_timestamp"]
            )
        if path == EVENTS:
            return self._events(query)
        if path == RATINGS:
            return self._ratings(query)
        if path.startswith("/api/v2/users/") and path.endswith(".json"):
            user = self.by_id.get(int(path.rsplit("/", 1)[1].removesuffix(".json")))
            if user is None:
                return 404, {}, b'{"error": "RecordNotFound"}'
            return 200, {}, orjson.dumps({"user": user})
        return 404, {}, b'{"error": "InvalidEndpoint"}'

    def _start(self, items: list[Any], query: dict[str, str], ts: Callable[[Any], int]) -> int:
        if "cursor" in query:
            return _position(query["cursor"])
        start_time = int(query.get("start_time", "0"))
        return next((i for i, item in enumerate(items) if ts(item) >= start_time), len(items))

    def _cursor_page(
        self, key: str, items: list[Any], query: dict[str, str], ts: Callable[[Any], int]
    ) -> tuple[int, dict[str, str], bytes]:
        i = self._start(items, query, ts)
        page = items[i : i + self.page_sizes[key]]
        after = i + len(page)
        body = {
            key: page,
            "after_url": f"{BASE}{USERS if key == 'users' else TICKETS}?cursor={_cursor(after)}",
            "before_url": None,
            "after_cursor": _cursor(after),
            "before_cursor": _cursor(i) if i else None,
            "end_of_stream": after >= len(items),
        }
        return 200, {}, orjson.dumps(body)

    def _events(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        start = int(query.get("start_time", "0"))
        rest = [e for e in self.events if e["timestamp"] >= start]
        page = rest[: self.page_sizes["ticket_events"]]
        if page:  # like Zendesk, never split records that share a timestamp
            page += [e for e in rest[len(page) :] if e["timestamp"] == page[-1]["timestamp"]]
        end_time = page[-1]["timestamp"] if page else start
        body = {
            "ticket_events": page,
            "next_page": f"{BASE}{EVENTS}?start_time={end_time}",
            "count": len(page),
            "end_time": end_time,
            "end_of_stream": len(page) == len(rest),
        }
        return 200, {}, orjson.dumps(body)

    def _ratings(self, query: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        size = min(int(query.get("page[size]", "100")), self.page_sizes["satisfaction_ratings"])
        if "page[after]" in query:
            i = _position(query["page[after]"])
        else:
            start = int(query.get("start_time", "0"))
            items = self.ratings
            i = next((k for k, r in enumerate(items) if _ts(r["updated_at"]) >= start), len(items))
        page = self.ratings[i : i + size]
        after = i + len(page)
        body = {
            "satisfaction_ratings": page,
            "meta": {
                "has_more": after < len(self.ratings),
                "after_cursor": _cursor(after) if page else None,
                "before_cursor": _cursor(i) if page else None,
            },
            "links": {"prev": None, "next": None},
        }
        return 200, {}, orjson.dumps(body)

    # -- transports ----------------------------------------------------------------------
    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            query = dict(parse_qsl(request.url.query.decode()))
            status, headers, body = self.handle(
                request.method, request.url.path, query, request.headers.get("Authorization")
            )
            return httpx.Response(status, headers=headers, content=body)

        return httpx.MockTransport(handler)

    def serve(self) -> tuple[str, Callable[[], None]]:
        """Serve on loopback; returns (base_url, stop)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                url = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                status, headers, body = fake.handle(
                    self.command,
                    url.path,
                    dict(parse_qsl(url.query)),
                    self.headers.get("Authorization"),
                )
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass  # the client was killed

            do_GET = do_PUT = do_POST = do_DELETE = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def stop() -> None:
            server.shutdown()
            server.server_close()

        return f"http://127.0.0.1:{server.server_address[1]}", stop


def _user_ts(user: dict[str, Any]) -> int:
    return _ts(user["updated_at"])


# --------------------------------------------------------------------------- fixtures


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> SampleFiles:
    return generate_exports(tmp_path_factory.mktemp("exports"), persons=40)


ALL_HISTORY = '\n[delivery]\nhistory = "all"\n'


def make_engine(path: Path) -> Engine:
    return harness("", f"sqlite:///{path}").engine


def make_client(fake: FakeZendesk, time: FakeTime | None = None) -> ZendeskClient:
    time = time or FakeTime()
    return ZendeskClient(
        BASE,
        EMAIL,
        TOKEN,
        transport=fake.transport(),
        sleep=time.sleep,
        clock=time.clock,
        rand=lambda: 1.0,  # the full backoff step (equal jitter takes off up to half)
    )


def event_keys(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return sorted(r[0] for r in conn.execute("SELECT key FROM events"))


def history(db: Path, leave_out: set[int]) -> list[tuple[Any, ...]]:
    """Every segment change and state change with its time (person ids left out: random
    per store), but those of the Zendesk users in ``leave_out``."""
    values = ",".join(f"'{u}'" for u in sorted(leave_out)) or "''"
    others = (
        "person_id NOT IN (SELECT person_id FROM identifiers WHERE kind = 'zendesk_user_id' "
        f"AND value IN ({values}))"
    )
    with sqlite3.connect(db) as conn:
        changes = conn.execute(
            f"SELECT segment, change, at_us FROM membership_history WHERE {others}"
        ).fetchall()
        states = conn.execute(
            f"SELECT at_us, old_state, new_state, changed FROM state_changes WHERE {others}"
        ).fetchall()
    return sorted(changes) + sorted(states)


def counts(engine: Engine) -> dict[str, int]:
    with engine.store.reader() as reader:
        out = reader.counts()
    out.pop("documents")  # a resumed run may store a re-read page of time-based events again
    return out


def people(engine: Engine) -> list[tuple[Any, ...]]:
    """Every person by identifiers and support state (person ids are random per store)."""
    with engine.store.reader() as reader:
        ids = reader.person_ids(None, 100_000)
        idents = reader.identifiers_of(ids)
        rows = reader.load_persons(ids)
    return sorted(
        (tuple(sorted(idents[pid])), str(rows[pid].state.get("support_state"))) for pid in ids
    )


@pytest.fixture(scope="module")
def clean(
    sample: SampleFiles, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Engine, Any]:
    """One uninterrupted backfill: the reference every other run must match."""
    db = tmp_path_factory.mktemp("clean") / "clean.db"
    engine = make_engine(db)
    summary = backfill(engine, make_client(FakeZendesk(sample)))
    return db, engine, summary


# --------------------------------------------------------------------------- tests


def test_clean_run_pulls_every_stream_and_matches_an_import_of_the_same_pages(
    sample: SampleFiles, clean: tuple[Path, Engine, Any], tmp_path: Path
) -> None:
    db, engine, summary = clean
    assert set(summary.streams) == set(STREAMS)
    assert all(s.end_of_stream for s in summary.streams.values())
    assert summary.streams["tickets"].pages >= 7  # 63 ticket versions, 10 a page
    assert summary.lookups == 3 and summary.lookups_missing == 0
    assert summary.rejected == {}
    # the same records imported from the files give exactly the same events and persons
    ref_db = tmp_path / "import.db"
    ref = make_engine(ref_db)
    import_files(ref, sample.paths)
    assert event_keys(db) == event_keys(ref_db)
    outbox = {"outbox"}  # delivery rows depend on how events were batched
    assert counts(engine).keys() - outbox == counts(ref).keys() - outbox
    assert {k: v for k, v in counts(engine).items() if k not in outbox} == {
        k: v for k, v in counts(ref).items() if k not in outbox
    }
    assert people(engine) == people(ref)
    # Every change happened at the same moment as in the import, which merges the same pages
    # by time: no stream's events fell behind the clock the others had moved on.
    # (Users looked up one by one arrive when they are looked up, not at their own time.)
    hidden = FakeZendesk(sample).hidden
    assert history(db, hidden) == history(ref_db, hidden)
    assert len(history(db, hidden)) > 100
    for stream in STREAMS:
        assert engine.get_meta(checkpoint_key(stream)) is not None


def test_requesters_known_only_by_id_are_looked_up_once(
    sample: SampleFiles, tmp_path: Path
) -> None:
    fake = FakeZendesk(sample)
    engine = make_engine(tmp_path / "s.db")
    backfill(engine, make_client(fake))
    lookups = [p for _, p, _ in fake.log if p.startswith("/api/v2/users/")]
    assert sorted(lookups) == sorted(f"/api/v2/users/{i}.json" for i in fake.hidden)
    with engine.store.reader() as reader:
        for user_id in fake.hidden:
            (pid,) = reader.find_persons("zendesk_user_id", str(user_id))
            kinds = {k for k, _ in reader.identifiers_of([pid])[pid]}
            assert "zendesk_user_id" in kinds and len(kinds) > 1  # the user's email/phone too


def test_second_run_continues_from_checkpoints_and_applies_nothing_new(
    sample: SampleFiles, tmp_path: Path
) -> None:
    fake = FakeZendesk(sample)
    engine = make_engine(tmp_path / "s.db")
    backfill(engine, make_client(fake))
    stored = {s: engine.get_meta(checkpoint_key(s)) for s in STREAMS}
    fake.log.clear()
    again = backfill(engine, make_client(fake))
    assert again.applied == 0
    assert again.lookups == 0
    # each stream starts where the first run stopped, not at the beginning
    first = {p: q for _, p, q in reversed(fake.log)}
    assert first[USERS] == {"cursor": Checkpoint.from_text(stored["users"] or "").cursor}
    assert first[TICKETS]["cursor"] == Checkpoint.from_text(stored["tickets"] or "").cursor
    assert int(first[EVENTS]["start_time"]) > 0
    assert "page[after]" in first[RATINGS]
    assert again.streams["users"].pages == 1 and again.streams["tickets"].pages == 1


class Crash(Exception):
    pass


def test_resume_after_a_crash_between_pages(
    sample: SampleFiles, clean: tuple[Path, Engine, Any], tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    engine = make_engine(db)
    fake = FakeZendesk(sample)

    def crash_after_two_ticket_pages(done: PageDone) -> None:
        if done.stream == "tickets" and done.page == 2:
            raise Crash

    with pytest.raises(Crash):
        backfill(engine, make_client(fake), on_progress=crash_after_two_ticket_pages)
    cursor = Checkpoint.from_text(engine.get_meta(checkpoint_key("tickets")) or "").cursor
    assert cursor is not None and _position(cursor) == 20
    # The streams run side by side, merged by time: the others stopped part way too.
    clean_db, clean_engine, _ = clean
    for stream in ("ticket_events", "satisfaction_ratings"):
        assert engine.get_meta(checkpoint_key(stream)) != clean_engine.get_meta(
            checkpoint_key(stream)
        )

    fake.log.clear()
    resumed = backfill(engine, make_client(fake))
    assert fake.requests_to(TICKETS)[0] == {"cursor": cursor}
    assert resumed.streams["tickets"].duplicates == 0  # the whole pages were not re-read
    # Only events of pages begun but not finished before the crash come again (skipped).
    assert resumed.duplicates <= 3 * 10
    assert event_keys(db) == event_keys(clean_db)
    assert counts(engine) == counts(clean_engine)
    assert people(engine) == people(clean_engine)


def test_zendesk_outage_stops_with_a_clear_error_and_a_rerun_completes(
    sample: SampleFiles, clean: tuple[Path, Engine, Any], tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    engine = make_engine(db)
    fake = FakeZendesk(sample)
    time = FakeTime()

    def outage_after_two_ticket_pages(method: str, path: str, query: dict[str, str]) -> None:
        if path == TICKETS and len(fake.requests_to(TICKETS)) == 3:
            fake.outage = "/api/v2/"

    fake.hook = outage_after_two_ticket_pages
    with pytest.raises(BackfillError) as info:
        backfill(engine, make_client(fake, time))
    message = str(info.value)
    assert "GET /api/v2/incremental/tickets/cursor.json returned HTTP 503" in message
    assert "after 8 attempts" in message and "next run continues" in message
    assert info.value.summary.streams["tickets"].pages == 2
    # exponential backoff (no jitter here); the streams' first pages are fetched side by
    # side, so the incremental budget (10 a minute) may also have waited a minute
    assert [s for s in time.sleeps if s != 60.0][:3] == [1.0, 2.0, 4.0]
    assert TOKEN not in message and EMAIL not in message

    fake.hook, fake.outage = None, None
    backfill(engine, make_client(fake))
    clean_db, clean_engine, _ = clean
    assert event_keys(db) == event_keys(clean_db)
    assert counts(engine) == counts(clean_engine)


def test_429_waits_retry_after_and_5xx_backs_off(sample: SampleFiles, tmp_path: Path) -> None:
    fake = FakeZendesk(sample, page_size=100, page_sizes={"satisfaction_ratings": 10})
    fake.fail(TICKETS, 429, headers={"Retry-After": "17"})
    fake.fail(RATINGS, 502, times=2)
    time = FakeTime()
    summary = backfill(make_engine(tmp_path / "s.db"), make_client(fake, time))
    assert summary.throttled == 1
    assert time.sleeps == [17.0, 1.0, 2.0]  # fewer than 10 incremental requests: no budget wait
    assert summary.requests == len(fake.log)
    assert all(s.end_of_stream for s in summary.streams.values())


def test_incremental_budget_sleeps_only_when_ten_requests_were_made_in_a_minute(
    sample: SampleFiles, tmp_path: Path
) -> None:
    fake = FakeZendesk(sample, page_size=5)
    time = FakeTime()
    sleeps_at: list[int] = []
    original = time.sleep

    def sleep(seconds: float) -> None:
        sleeps_at.append(sum(1 for _, p, _ in fake.log if p.startswith("/api/v2/incremental/")))
        original(seconds)

    time.sleep = sleep  # type: ignore[method-assign]
    summary = backfill(make_engine(tmp_path / "s.db"), make_client(fake, time))
    incremental = sum(1 for _, p, _ in fake.log if p.startswith("/api/v2/incremental/"))
    assert incremental > 20
    # the clock only moves when sleeping: the 11th request waits the full minute, the 21st too
    assert sleeps_at[0] == 10 and time.sleeps[0] == pytest.approx(60.0)
    assert len(time.sleeps) == (incremental - 1) // 10
    assert summary.waited == pytest.approx(sum(time.sleeps))


def test_since_starts_every_stream_at_that_time(sample: SampleFiles, tmp_path: Path) -> None:
    fake = FakeZendesk(sample)
    engine = make_engine(tmp_path / "s.db")
    since = datetime(2026, 9, 1, tzinfo=UTC)
    epoch = str(int(since.timestamp()))
    summary = backfill(engine, make_client(fake), since=since)
    assert fake.requests_to(USERS)[0] == {"start_time": epoch}
    assert fake.requests_to(TICKETS)[0] == {"start_time": epoch}
    # the comments' text is asked for (issue 25): read into words and a sentiment, not kept
    assert fake.requests_to(EVENTS)[0] == {"start_time": epoch, "include": "comment_events"}
    assert fake.requests_to(RATINGS)[0] == {"page[size]": "100", "start_time": epoch}
    # each ticket row is a version and its description's words (issue 25)
    assert all(t.get("description") for t in fake.tickets)
    assert 0 < summary.streams["tickets"].records < 2 * len(fake.tickets)


def test_selected_streams_only(sample: SampleFiles, tmp_path: Path) -> None:
    fake = FakeZendesk(sample)
    summary = backfill(make_engine(tmp_path / "s.db"), make_client(fake), streams=["tickets"])
    assert set(summary.streams) == {"tickets"}
    paths = [p for _, p, _ in fake.log if p != TICKETS]
    # without the users stream every requester is looked up, each once
    assert all(p.startswith("/api/v2/users/") for p in paths)
    assert len(paths) == len(set(paths)) == len({t["requester_id"] for t in fake.tickets})
    with pytest.raises(ValueError, match="unknown stream"):
        backfill(make_engine(tmp_path / "t.db"), make_client(fake), streams=["tickets", "orgs"])


# --------------------------------------------------------------------------- the CLI


def write_config(tmp_path: Path, base_url: str) -> Path:
    config = tmp_path / "tactful.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n\n'
        f'[zendesk]\nbase_url = "{base_url}"\nemail = "{EMAIL}"\n'
        'api_token = "env:TEST_ZENDESK_TOKEN"\n',
        encoding="utf-8",
    )
    return config


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_ZENDESK_TOKEN", TOKEN)
    monkeypatch.delenv("TACTFUL_CONFIG", raising=False)


def test_cli_backfill_json_then_resume_without_since(
    sample: SampleFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cli_env: None,
) -> None:
    from tactful.cli import zendesk as commands

    fake = FakeZendesk(sample)
    time = FakeTime()
    monkeypatch.setattr(
        commands,
        "make_client",
        lambda settings, **kw: ZendeskClient.from_settings(
            settings.zendesk, transport=fake.transport(), sleep=time.sleep, clock=time.clock, **kw
        ),
    )
    config = write_config(tmp_path, BASE)
    assert main(["--config", str(config), "backfill", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ok"] is True and first["lookups"] == 3
    assert first["streams"]["users"]["started_from"] == "the beginning"
    assert main(["--config", str(config), "backfill", "--stream", "tickets", "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert list(second["streams"]) == ["tickets"]
    assert second["streams"]["tickets"]["started_from"] == "cursor"
    assert second["applied"] == 0
    # text output: a table and a summary line
    assert main(["--config", str(config), "backfill"]) == 0
    out = capsys.readouterr().out
    assert "ticket_events" in out and "requesters looked up" in out


def test_cli_backfill_reports_missing_settings_and_bad_since(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], cli_env: None
) -> None:
    config = tmp_path / "tactful.toml"
    config.write_text('[zendesk]\nsubdomain = "acme"\n', encoding="utf-8")
    assert main(["--config", str(config), "backfill"]) == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "[zendesk] is missing email, api_token" in err
    config = write_config(tmp_path, BASE)
    assert main(["--config", str(config), "backfill", "--since", "yesterday"]) == 1
    assert "--since: not a date" in capsys.readouterr().err


def test_cli_outage_json_says_what_was_saved(
    sample: SampleFiles,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    cli_env: None,
) -> None:
    from tactful.cli import zendesk as commands

    fake = FakeZendesk(sample)
    fake.outage = RATINGS
    time = FakeTime()
    monkeypatch.setattr(
        commands,
        "make_client",
        lambda settings, **kw: ZendeskClient.from_settings(
            settings.zendesk, transport=fake.transport(), sleep=time.sleep, clock=time.clock, **kw
        ),
    )
    config = write_config(tmp_path, BASE)
    assert main(["--config", str(config), "backfill", "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["ok"] is False and "HTTP 503" in result["error"]
    assert "satisfaction_ratings" in result["error"]
    # The streams are merged by time, so none gets ahead of the one that is down.
    assert not any(s["end_of_stream"] for s in result["streams"].values())
    fake.outage = None
    assert main(["--config", str(config), "backfill"]) == 0


# --------------------------------------------------------------------------- kill -9


@pytest.fixture
def loopback(sample: SampleFiles) -> Iterator[tuple[FakeZendesk, str]]:
    fake = FakeZendesk(sample, page_size=20, page_sizes={"ticket_events": 1000})
    url, stop = fake.serve()
    try:
        yield fake, url
    finally:
        stop()


def cli(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "tactful", "--config", str(config), *args]


def child_env(token: str) -> dict[str, str]:
    """This environment for ``tactful`` in a child process: the Zendesk token in
    ``TEST_ZENDESK_TOKEN``, no ``TACTFUL_CONFIG``."""
    env = {k: v for k, v in os.environ.items() if k != "TACTFUL_CONFIG"}
    env["TEST_ZENDESK_TOKEN"] = token
    return env


def run_cli(
    config: Path, *args: str, token: str = TOKEN, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli(config, *args),
        capture_output=True,
        text=True,
        env=child_env(token),
        timeout=timeout,
        check=False,
    )


def kill_9_at(
    reached: threading.Event, release: threading.Event, command: list[str], token: str
) -> None:
    """Run ``command`` in a child process, ``kill -9`` it once ``reached`` is set (the fake
    Zendesk holds the request it waits at until ``release``), then let the request go."""
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(token)
    )
    try:
        assert reached.wait(60), "the backfill never asked for the third ticket page"
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        release.set()
        if child.poll() is None:
            child.kill()
        child.communicate()


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_9_during_backfill_then_rerun_applies_everything_exactly_once(
    loopback: tuple[FakeZendesk, str], tmp_path: Path
) -> None:
    fake, url = loopback
    config = write_config(tmp_path, url)
    # Every change told as it happened, so that the outboxes of the two runs compare (the
    # default tells old history as net changes, decided against each run's wall clock).
    config.write_text(config.read_text() + ALL_HISTORY, encoding="utf-8")
    reached = threading.Event()
    release = threading.Event()

    def block_third_ticket_page(method: str, path: str, query: dict[str, str]) -> None:
        if path == TICKETS and len(fake.requests_to(TICKETS)) == 3:
            reached.set()
            release.wait(30)

    fake.hook = block_third_ticket_page
    kill_9_at(reached, release, cli(config, "backfill", "--json"), TOKEN)
    fake.hook = None

    db = tmp_path / "cli.db"
    killed_engine = make_engine(db)
    ticket_cursor = Checkpoint.from_text(killed_engine.get_meta(checkpoint_key("tickets")) or "")
    assert ticket_cursor.cursor is not None and _position(ticket_cursor.cursor) == 40
    killed_engine.store.close()

    fake.log.clear()
    done = run_cli(config, "backfill", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["streams"]["tickets"]["duplicates"] == 0
    assert fake.requests_to(TICKETS)[0] == {"cursor": ticket_cursor.cursor}

    # a clean single run with the same page sizes (so that even outbox rows compare)
    clean_db = tmp_path / "clean.db"
    clean_engine = harness(ALL_HISTORY, f"sqlite:///{clean_db}").engine
    same_pages = FakeZendesk(fake.files, page_size=20, page_sizes={"ticket_events": 1000})
    backfill(clean_engine, make_client(same_pages))
    engine = make_engine(db)
    assert event_keys(db) == event_keys(clean_db)
    assert counts(engine) == counts(clean_engine)
    assert people(engine) == people(clean_engine)


# --------------------------------------------------------------------------- the simulator


def sim_story(sim: Any, customers: int = 12) -> tuple[list[int], list[int]]:
    """Customers, one ticket each; every other ticket solved and rated."""
    users, tickets = [], []
    for i in range(customers):
        sim.advance(timedelta(minutes=3))
        users.append(sim.create_user(f"Customer {i}", f"c{i}@example.com"))
    for i, user in enumerate(users):
        sim.advance(timedelta(minutes=7))
        tickets.append(sim.create_ticket(user, f"Question {i}", tags=["refund"] if i % 3 else []))
    for i, ticket in enumerate(tickets):
        sim.advance(timedelta(minutes=11))
        if i % 2 == 0:
            sim.solve(ticket)
            sim.advance(timedelta(hours=1))
            sim.rate(ticket, "good" if i % 4 == 0 else "bad")
    sim.advance(timedelta(minutes=5))
    return users, tickets


@pytest.fixture
def simulator() -> Iterator[tuple[Any, str, FakeTime]]:
    """The simulator on loopback; its rate-limit window runs on the test's fake clock."""
    sim_module = pytest.importorskip("tactful.testing.sim")
    time = FakeTime()
    sim = sim_module.ZendeskSimulator(rate_clock=lambda: datetime.fromtimestamp(time.now, UTC))
    base_url, stop = sim_module.run_in_thread(sim.app)
    sim.base_url = base_url
    try:
        yield sim, base_url, time
    finally:
        stop()


def pull(engine: Engine, client: ZendeskClient, **kwargs: Any) -> Any:
    """``backfill`` with a client that is closed afterwards."""
    with client:
        return backfill(engine, client, **kwargs)


def sim_client(sim: Any, base_url: str, time: FakeTime, per_page: int | None = 4) -> ZendeskClient:
    return ZendeskClient(
        base_url,
        sim.email,
        sim.api_token,
        sleep=time.sleep,
        clock=time.clock,
        per_page=per_page,
        rand=lambda: 1.0,  # the full backoff step (equal jitter takes off up to half)
    )


def test_backfill_against_the_simulator_then_pick_up_later_changes(
    simulator: tuple[Any, str, FakeTime], tmp_path: Path
) -> None:
    sim, url, time = simulator
    users, tickets = sim_story(sim)
    engine = make_engine(tmp_path / "s.db")
    summary = pull(engine, sim_client(sim, url, time))
    assert all(s.end_of_stream for s in summary.streams.values())
    assert summary.streams["users"].pages == 3 and summary.streams["tickets"].pages == 3
    assert summary.lookups == 0  # every requester came with the users export
    assert [r.status for r in sim.requests] == [200] * len(sim.requests)  # never throttled
    with engine.store.reader() as reader:
        assert reader.counts()["persons"] == len(users)
        assert reader.counts()["tickets"] == len(tickets)
        (ann,) = reader.find_persons("email", "c0@example.com")
        state = reader.load_persons([ann])[ann].state
    assert state["csat_score"] is not None and state["has_open_ticket"] is False

    # later: a new customer writes in and an old ticket is reopened
    sim.advance(timedelta(days=1))
    new_user = sim.create_user("Late Comer", "late@example.com")
    sim.advance(timedelta(minutes=1))
    sim.create_ticket(new_user, "Hello?")
    sim.advance(timedelta(minutes=1))
    sim.reopen(tickets[0])
    sim.advance(timedelta(minutes=1))
    sim.requests.clear()
    again = pull(engine, sim_client(sim, url, time))
    assert again.streams["users"].records == 1
    # two ticket versions, each with its description's words (issue 25)
    assert again.streams["tickets"].records == 2 + 2
    assert again.applied >= 3 and again.duplicates <= again.streams["ticket_events"].records
    first = sim.requests_to(TICKETS)[0]
    assert "cursor" in first.query and "start_time" not in first.query
    with engine.store.reader() as reader:
        assert reader.counts()["persons"] == len(users) + 1
        (ann,) = reader.find_persons("email", "c0@example.com")
        assert reader.load_persons([ann])[ann].state["has_open_ticket"] is True


def test_simulator_requesters_are_looked_up_and_faults_are_ridden_out(
    simulator: tuple[Any, str, FakeTime], tmp_path: Path
) -> None:
    sim, url, time = simulator
    users, _ = sim_story(sim, customers=6)
    sim.rate_limit_next(1, retry_after=9, path_prefix=TICKETS)
    sim.fail_next(2, 503, path_prefix="/api/v2/users/")
    engine = make_engine(tmp_path / "s.db")
    summary = pull(engine, sim_client(sim, url, time), streams=["tickets"])
    assert summary.lookups == len(users) and summary.lookups_missing == 0
    assert summary.throttled == 1
    assert time.sleeps[:3] == [9.0, 1.0, 2.0]
    lookups = [r for r in sim.requests if r.path.startswith("/api/v2/users/")]
    assert [r.status for r in lookups[:3]] == [503, 503, 200]
    assert len({r.path for r in lookups}) == len(users)  # each requester fetched once
    with engine.store.reader() as reader:
        assert reader.find_persons("email", "c5@example.com")


def test_simulator_incremental_budget_is_respected(
    simulator: tuple[Any, str, FakeTime], tmp_path: Path
) -> None:
    sim, url, time = simulator
    sim_story(sim, customers=30)
    summary = pull(make_engine(tmp_path / "s.db"), sim_client(sim, url, time, per_page=2))
    incremental = sim.requests_to("/api/v2/incremental/")
    assert len(incremental) > 20
    assert all(r.status == 200 for r in sim.requests)  # the simulator never had to say 429
    assert summary.throttled == 0
    assert len(time.sleeps) == (len(incremental) - 1) // 10


def test_install_and_write_back_against_the_simulator(
    simulator: tuple[Any, str, FakeTime],
) -> None:
    from tactful.zendesk.install import RECOMMENDED_TRIGGER_BODY, TRIGGER_TITLE, install

    sim, url, time = simulator
    (user,), _ = sim_story(sim, customers=1)
    with sim_client(sim, url, time) as client:
        result = install(client, "https://tactful.example")
        (hook,) = sim.webhooks.values()
        assert hook["endpoint"] == "https://tactful.example/webhooks/zendesk"
        assert result.secret == sim.signing_secrets[hook["id"]]
        (trigger,) = sim.triggers.values()
        assert trigger["title"] == TRIGGER_TITLE
        assert trigger["actions"][0]["value"] == [hook["id"], RECOMMENDED_TRIGGER_BODY]
        again = install(client, "https://tactful.example")
        assert (again.webhook, again.trigger) == ("unchanged", "unchanged")
        assert install(client, "https://moved.example").webhook == "updated"
        assert sim.webhooks[hook["id"]]["endpoint"] == "https://moved.example/webhooks/zendesk"

        assert "high_value" in client.add_user_tags(user, ["high_value", "vip"])
        assert client.remove_user_tags(user, ["vip"]) == ["high_value"]
        assert sim.users[user].tags == ["high_value"]
        updated = client.update_user_fields(user, {"value_score": "4"})
        assert updated["user_fields"]["value_score"] == "4"
        assert client.get_user(999_999_999) is None


@pytest.mark.slow
@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
def test_kill_9_against_the_simulator_then_rerun_matches_a_clean_run(tmp_path: Path) -> None:
    sim_module = pytest.importorskip("tactful.testing.sim")
    # real time for the simulator's own limit (the CLI keeps under 10 a minute by itself)
    sim = sim_module.ZendeskSimulator(rate_limit_per_minute=1000)
    sim_story(sim)
    reached, release = threading.Event(), threading.Event()
    ticket_requests = 0

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        nonlocal ticket_requests
        if scope["type"] == "http" and scope["path"] == TICKETS:
            ticket_requests += 1
            if ticket_requests == 3:
                reached.set()
                await asyncio.to_thread(release.wait, 30)
        await sim.app(scope, receive, send)

    url, stop = sim_module.run_in_thread(app, lifespan="off")
    sim.base_url = url
    config = tmp_path / "tactful.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "cli.db"}"\n\n'
        f'[zendesk]\nbase_url = "{url}"\nemail = "{sim.email}"\n'
        'api_token = "env:TEST_ZENDESK_TOKEN"\n',
        encoding="utf-8",
    )
    args = ("backfill", "--page-size", "4", "--json")
    try:
        kill_9_at(reached, release, cli(config, *args), sim.api_token)
        db = tmp_path / "cli.db"
        killed = make_engine(db)
        saved = Checkpoint.from_text(killed.get_meta(checkpoint_key("tickets")) or "")
        assert saved.cursor is not None
        assert killed.get_meta(checkpoint_key("ticket_events")) is None
        killed.store.close()

        sim.requests.clear()
        done = run_cli(config, *args, token=sim.api_token)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["streams"]["tickets"]["duplicates"] == 0
        assert sim.requests_to(TICKETS)[0].query == {"cursor": saved.cursor, "per_page": "4"}

        clean_db = tmp_path / "clean.db"
        clean_engine = make_engine(clean_db)
        pull(clean_engine, sim_client(sim, url, FakeTime()))
    finally:
        stop()
    engine = make_engine(db)
    assert event_keys(db) == event_keys(clean_db)
    assert counts(engine) == counts(clean_engine)
    assert people(engine) == people(clean_engine)
