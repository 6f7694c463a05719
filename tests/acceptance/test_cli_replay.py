"""``tactful replay`` through the CLI (issue 17, reproduced as a user would): import an
export, ``sync`` to a Standard Webhooks receiver on loopback, rename one reason, replay,
``sync`` again: the receiver gets one correction per person that changed, and a replay that
changes nothing sends nothing. ``--dry-run`` previews the same numbers and changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tactful.testing.fakes.webhook import FakeWebhookReceiver
from tactful.testing.sample import SampleFiles
from tactful.testing.sim.server import run_in_thread

from .conftest import Cli, write_config

HOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def hook() -> Iterator[tuple[FakeWebhookReceiver, str]]:
    receiver = FakeWebhookReceiver(HOOK_SECRET)
    url, stop = run_in_thread(receiver.app)
    yield receiver, url
    stop()


@pytest.fixture
def user(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    hook: tuple[FakeWebhookReceiver, str],
    exports: SampleFiles,
) -> Cli:
    receiver, url = hook
    extra = (
        f'\n[[destinations]]\nname = "hook"\ntype = "webhook"\n'
        f'url = "{url}{receiver.path}"\nsecret = "{HOOK_SECRET}"\n'
    )
    config = write_config(capsys, tmp_path / "tactful.toml", tmp_path / "t.db", extra=extra)
    cli = Cli(capsys, config)
    cli.ok("import", *map(str, exports.paths), "--json")
    cli.ok("sync", "--json")
    return cli


def received(receiver: FakeWebhookReceiver) -> int:
    with receiver.lock:
        return len(receiver.deliveries)


def test_a_replay_that_changes_nothing_sends_nothing(
    user: Cli, hook: tuple[FakeWebhookReceiver, str]
) -> None:
    receiver, _ = hook
    before = received(receiver)
    report = user.ok("replay", "--json").json()
    assert report["persons_changed"] == 0 and report["messages"] == 0
    user.ok("sync", "--json")
    assert received(receiver) == before


def test_renaming_one_reason_sends_one_correction_per_changed_person(
    user: Cli, hook: tuple[FakeWebhookReceiver, str]
) -> None:
    receiver, _ = hook
    assert user.config is not None
    text = user.config.read_text(encoding="utf-8")
    user.config.write_text(text.replace('name = "damaged"', 'name = "arrived_damaged"'))
    before_people = user.ok("people", "--json").out

    preview = user.ok("replay", "--dry-run", "--json").json()
    assert preview["dry_run"] is True
    changed = preview["persons_changed"]
    assert changed > 0
    assert preview["destinations"]["hook"]["event"] == changed  # no membership moves
    assert preview["segments"] == {}
    assert user.ok("people", "--json").out == before_people  # nothing changed

    before = received(receiver)
    report = user.ok("replay", "--json").json()
    assert report["persons_changed"] == changed and report["dry_run"] is False
    user.ok("sync", "--json")
    with receiver.lock:
        new = receiver.deliveries[before:]
    assert len(new) == changed
    for delivery in new:
        payload = delivery.payload
        assert payload["type"] == "support_state_changed", payload
        data = payload["data"]
        assert data["replayed"] is True
        assert set(data["changed"]) <= {"open_reasons", "ticket_reason"}


def test_replay_prints_a_summary(user: Cli) -> None:
    result = user.ok("replay", "--dry-run")
    assert "dry run" in result.text and "nothing was changed" in result.text


def test_a_dry_run_with_workers_is_refused_and_says_why(user: Cli) -> None:
    result = user("replay", "--dry-run", "--by-person", "--workers", "2")
    assert result.code == 2
    assert "a dry run folds in one process" in result.out + result.err
    assert user.ok("replay", "--dry-run", "--by-person", "--workers", "1", "--json").json()[
        "dry_run"
    ]


@pytest.mark.slow  # forks worker processes
def test_a_replay_by_person_with_workers_does_what_its_dry_run_previews(user: Cli) -> None:
    assert user.config is not None
    text = user.config.read_text(encoding="utf-8")
    user.config.write_text(text.replace('name = "damaged"', 'name = "arrived_damaged"'))
    preview = user.ok("replay", "--dry-run", "--by-person", "--json").json()
    report = user.ok("replay", "--by-person", "--workers", "2", "--json").json()
    assert preview["persons_changed"] > 0
    for key in ("events", "persons_changed", "messages", "segments", "destinations"):
        assert report[key] == preview[key], key
