"""Issue 21 §3: an ad audience's size as the platform reports it (Meta's approximate bounds,
read with ``GET /{audience_id}``) is read by the worker at most every ``READ_EVERY``, kept
with the sync run (so the runs show its trend) and as the latest reading (``/metrics``, the
dashboard), beside Tactful's own member count."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tactful.config import settings_from_toml
from tactful.delivery import platform
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.runs import RunStore
from tactful.store.sqlite import open_store
from tactful.testing import FakeClock, at, new_store_url, ticket, user
from tactful.testing.fakes.meta import FakeMeta
from tactful.testing.sim.server import run_in_thread

pytestmark = pytest.mark.store

AUDIENCE = "23850000000000000"


@pytest.fixture
def meta() -> Iterator[tuple[FakeMeta, str]]:
    fake = FakeMeta()
    root, stop = run_in_thread(fake.app)
    try:
        yield fake, FakeMeta.base_url(root)
    finally:
        stop()


def config(base_url: str) -> str:
    return f"""
[[segments]]
name = "suppress"
when = "has_open_ticket"

[[destinations]]
name = "meta"
type = "meta_audience"
segment = "suppress"
audience_id = "{AUDIENCE}"
access_token = "meta-test-token"
base_url = "{base_url}"
"""


def gets(fake: FakeMeta) -> int:
    return sum(1 for r in fake.requests if r.method == "GET")


def test_the_audience_size_is_read_periodically_and_kept_with_the_runs(
    tmp_path: Path, meta: tuple[FakeMeta, str]
) -> None:
    fake, base_url = meta
    settings = settings_from_toml(config(base_url), environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    clock = FakeClock(at(0))
    worker = DeliveryWorker(settings, engine.store, clock=clock)
    try:
        engine.apply(
            [e for i in range(1, 4) for e in (user(i, emails=(f"p{i}@example.com",)),
                                           ticket(i, at(0), "open", requester_id=i))]
        )  # fmt: skip
        worker.sync()
        assert len(fake.snapshot()[AUDIENCE]) == 3 and gets(fake) == 1
        [run] = RunStore(engine.store).page("meta").runs
        assert run.counts.added == 3
        assert run.platform is not None
        assert (run.platform.audience_lower, run.platform.audience_upper) == (3, 3)
        assert run.platform.received == 3  # the upload's own answer, in the same run

        worker.sync()  # within READ_EVERY: not read again
        assert gets(fake) == 1
        fake.matched = 1234  # Meta matched more people since (a range)
        clock.advance(platform.READ_EVERY + timedelta(seconds=1))
        worker.sync()
        assert gets(fake) == 2
        newest = RunStore(engine.store).page("meta").runs[0]
        assert newest.platform is not None and newest.platform.audience_size == "1,200–1,300"
        read = platform.latest(engine.store, "meta")
        assert read is not None and read[1].audience_size == "1,200–1,300"

        fake.access_token = "rotated"  # Meta refuses: logged, the last reading stays
        clock.advance(platform.READ_EVERY + timedelta(seconds=1))
        worker.sync()
        assert gets(fake) == 3
        still = platform.latest(engine.store, "meta")
        assert still is not None and still[1].audience_upper == 1300
    finally:
        worker.close()
        engine.store.close()


def test_runs_json_and_metrics_show_the_audience_size(
    tmp_path: Path, meta: tuple[FakeMeta, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from starlette.testclient import TestClient

    from tactful.cli.main import main
    from tactful.web.app import create_app

    _, base_url = meta
    url = new_store_url(tmp_path)
    path = tmp_path / "tactful.toml"
    path.write_text(config(base_url) + f'\n[store]\nurl = "{url}"\n')
    settings = settings_from_toml(path.read_text(), environ={})
    engine = Engine(rules_from_settings(settings), open_store(url))
    engine.apply([user(1, emails=("ann@example.com",)), ticket(1, at(0), "open")])
    worker = DeliveryWorker(settings, engine.store)
    worker.sync()
    worker.close()

    capsys.readouterr()
    assert main(["--config", str(path), "deliveries", "runs", "meta", "--json"]) == 0
    out: Any = json.loads(capsys.readouterr().out)
    answer = out["runs"][0]["platform"]
    assert (answer["audience_lower"], answer["audience_upper"]) == (1, 1)

    app = create_app(settings, engine, tick_seconds=0, deliver_seconds=0)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        text = client.get("/metrics").text
    assert 'tactful_destination_audience_size{bound="lower",destination="meta"} 1.0' in text
    engine.store.close()


def test_google_customer_match_sizes_and_match_rate_reach_the_runs_and_metrics(
    tmp_path: Path,
) -> None:
    """Google Ads Customer Match: the user list's sizes (Search, Display) and match rate,
    read by the worker with the sync, kept with the run and exported."""
    from starlette.testclient import TestClient

    from tactful.testing.fakes.google import FakeGoogleAds
    from tactful.web.app import create_app

    fake = FakeGoogleAds(match_rate_percentage=64)
    root, stop = run_in_thread(fake.app)
    text = f"""
[[segments]]
name = "suppress"
when = "has_open_ticket"

[[destinations]]
name = "google"
type = "google_customer_match"
segment = "suppress"
customer_id = "1234567890"
user_list_id = "987654321"
developer_token = "dev-token"
client_id = "client-id"
client_secret = "client-secret"
refresh_token = "refresh-token"
base_url = "{root}"
"""
    settings = settings_from_toml(text, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    worker = DeliveryWorker(settings, engine.store)
    try:
        engine.apply(
            [e for i in range(1, 11) for e in (user(i, emails=(f"p{i}@example.com",)),
                                            ticket(i, at(0), "open", requester_id=i))]
        )  # fmt: skip
        worker.sync()
        assert len(fake.snapshot()[fake.user_list]) == 10
        [run] = RunStore(engine.store).page("google").runs
        assert run.counts.added == 10 and run.platform is not None
        # 10 members at 64%: 6 on Display, 4 on Search
        assert (run.platform.audience_size, run.platform.match_rate) == ("4–6", "64%")
        app = create_app(settings, engine, tick_seconds=0, deliver_seconds=0)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            metrics = client.get("/metrics").text
        assert 'tactful_destination_match_rate_percent{destination="google"} 64.0' in metrics
        assert (
            'tactful_destination_audience_size{bound="upper",destination="google"} 6.0' in metrics
        )
    finally:
        worker.close()
        engine.store.close()
        stop()
