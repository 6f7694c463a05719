"""The sidebar's proof: what the tools were told with the platforms' own confirmation, the
ESP's confirmation of each action, and the opt-in private note on the ticket."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tactful.destinations import registry
from tactful.store.pages import RunAnswer, SentChange
from tactful.testing.sim import ZendeskSimulator
from tactful.testing.sim.controls import RequestRecord
from tactful.web.present import text
from tactful.web.sidebar import proof
from tactful.zendesk.client import ZendeskClient
from tests.sidebar.helpers import EMAIL, TICKET, World, world
from tests.sidebar.test_routes import act, open_page, panel

pytestmark = pytest.mark.store

NOW = datetime(2025, 12, 5, 12, 0, tzinfo=UTC)
TYPES = {"meta": "meta_audience", "cio": "customerio"}


def told(html: str, destination: str) -> str:
    found = re.search(rf'<li data-destination="{destination}"[^>]*>(.*?)</li>', html, re.S)
    assert found, html
    return re.sub(r"<[^>]+>", "", found.group(1))


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    out = world(tmp_path, with_meta=True)
    yield out
    out.stop()


def test_the_sidebar_shows_what_meta_said_it_received(w: World) -> None:
    assert w.meta is not None and any(w.meta.snapshot().values())  # world() delivered once
    with TestClient(w.app) as client:
        html = panel(client, open_page(client))
    line = told(html, "meta")
    assert line.startswith("Added to Meta (meta) audience Open issue"), line
    assert "Meta received 1 row" in line, line
    # Customer.io's batch answer counts the rows it took in that upload (issue 21 §3).
    assert re.search(r"Customer\.io received (\d+) of \1 rows in that upload", told(html, "cio"))


def change(answer: RunAnswer | None, status: str = "done") -> SentChange:
    at = int(NOW.timestamp() * 1_000_000)
    return SentChange("meta", "audience_add", "", "x", status, at, "", None, at, answer)


def test_confirmation_in_words() -> None:
    assert text(proof.confirmation(change(RunAnswer(1, 0, 1)), TYPES), NOW) == (
        "Meta received 1 row at Dec 5, 12:00 UTC"
    )
    big = change(RunAnswer(1204, 6, 1210))
    assert text(proof.confirmation(big, TYPES), NOW) == (
        "Meta received 1,204 of 1,210 rows in that upload, 6 invalid at Dec 5, 12:00 UTC"
    )
    assert proof.confirmation(change(None), TYPES) == ()  # the platform said nothing
    assert proof.confirmation(change(RunAnswer(1, 0, 1), "pending"), TYPES) == ()


class _Unchanged:
    """An ESP that answers 2xx but does not apply the opt-out (read back shows it)."""

    def __init__(self, esp: object) -> None:
        self.esp = esp

    def set_optout(self, email: str, opted_out: bool) -> None:
        return None

    def __getattr__(self, name: str) -> object:
        return getattr(self.esp, name)


def test_every_destination_type_is_told_by_its_vendors_name() -> None:
    """The vendor's name is part of what each destination module declares (its ``SPEC``):
    a second table of type names missed ``google_data_manager``, whose changes showed the
    destination's own name."""
    change = SentChange("dest", "profile", "x", "", "done", 0, "", 200)
    names = {t: proof.vendor(change, {"dest": t}) for t in registry.MODULES}
    assert [t for t, name in names.items() if name == "dest"] == []
    assert names["google_data_manager"] == names["google_customer_match"] == "Google"
    assert proof.vendor(change, {"dest": "no_such_type"}) == "dest"


def test_esp_actions_are_confirmed_by_reading_the_profile_back(w: World) -> None:
    w.cio.add_topic(1, "Promotions")
    with TestClient(w.app) as client:
        session = open_page(client)
        assert 'data-list="topic_1"' in panel(client, session)
        removed = act(client, session, "remove-list", idem="idem-0003", list_id="topic_1")
        assert "cio confirms: the profile is no longer on that list." in removed.text
        done = act(client, session, "optout", opted_out="true")
        assert "cio confirms: the profile reads opted out." in done.text
        state = w.app.state.sidebar
        state._esp = _Unchanged(state.esp())
        again = act(client, session, "optout", idem="idem-0002", opted_out="false")
    assert again.status_code == 200
    assert "cio accepted it, but does not show yet that the profile reads subscribed." in again.text


@pytest.fixture
def zendesk(w: World) -> Iterator[tuple[World, ZendeskSimulator]]:
    sim = ZendeskSimulator()
    ann = sim.create_user("Ann Lee", EMAIL)
    sim._next["ticket"] = TICKET - 1  # the ticket the sidebar is opened on
    assert sim.create_ticket(ann, "Refund please") == TICKET
    base_url, stop = sim.serve()
    state = w.app.state.sidebar
    state.ctx.settings.zendesk.private_notes = True
    state.zendesk_factory = lambda: ZendeskClient(
        base_url, sim.email, sim.api_token, sleep=lambda s: None
    )
    try:
        yield w, sim
    finally:
        stop()


def notes_put(sim: ZendeskSimulator) -> list[RequestRecord]:
    return [r for r in sim.requests if r.method == "PUT" and "/tickets/" in r.path]


def test_the_proof_goes_on_the_ticket_as_a_private_note_once(
    zendesk: tuple[World, ZendeskSimulator],
) -> None:
    w, sim = zendesk
    with TestClient(w.app) as client:
        session = open_page(client)
        done = act(client, session, "health", health="unsatisfied")
        assert done.status_code == 200
        w.deliver()  # the tools are told
        html = panel(client, session)
        offer = re.search(r'<div class="proof" data-action-id="(\d+)" data-note="offer"', html)
        assert offer, html
        action_id = offer.group(1)
        noted = act(client, session, "note", idem="idem-n-0001", of=action_id)
        assert noted.status_code == 200, noted.text
        assert f"Private note added to ticket #{TICKET}." in noted.text
        assert 'data-note="noted"' in noted.text
        # Never twice for one action: another click, another agent's idem, all the same.
        twice = act(client, session, "note", idem="idem-n-0002", of=action_id)
        assert "Already on the ticket" in twice.text
    assert len(notes_put(sim)) == 1
    audit = sim.audits[-1]
    comment = [c for c in audit.children if c.get("event_type") == "Comment"]
    assert comment and comment[0]["comment_public"] is False  # internal, never public
    body = sim.activities[-1].events[-1][1]["comment"]["body"]
    assert "Result: Health set to unsatisfied." in body
    assert "Customer.io (cio) profile updated" in body
    with w.engine.store.reader() as reader:
        person = reader.find_persons("email", EMAIL)[0]
    assert person not in body  # no identifier the agent does not see
    assert EMAIL not in body  # the action said nothing with it; nor does the note


def test_a_refused_note_can_be_asked_again_an_unanswered_one_is_not_resent(
    zendesk: tuple[World, ZendeskSimulator],
) -> None:
    w, sim = zendesk
    with TestClient(w.app) as client:
        session = open_page(client)
        act(client, session, "health", health="neutral")
        act(client, session, "override", idem="idem-0002", days="2")
        html = panel(client, session)
        ids = re.findall(r'name="of" value="(\d+)"', html)
        first, second = sorted(set(ids), key=int)
        sim.rate_limit_next(1, path_prefix="/api/v2/tickets/")
        refused = act(client, session, "note", idem="idem-n-0001", of=first)
        assert refused.status_code == 502 and "Zendesk refused the note" in refused.text
        again = act(client, session, "note", idem="idem-n-0002", of=first)
        assert again.status_code == 200 and "Private note added" in again.text
        sim.fail_next(1, 503, path_prefix="/api/v2/tickets/")
        lost = act(client, session, "note", idem="idem-n-0003", of=second)
        assert "did not confirm" in lost.text and "will not send it again" in lost.text
        retried = act(client, session, "note", idem="idem-n-0004", of=second)
        assert "Already asked" in retried.text
    # 429 (nothing added), the retry, the 503; nothing after it.
    assert [r.status for r in notes_put(sim)] == [429, 200, 503]


def test_no_note_offered_or_taken_when_private_notes_are_off(w: World) -> None:
    with TestClient(w.app) as client:
        session = open_page(client)
        act(client, session, "health", health="neutral")
        html = panel(client, session)
        assert 'data-action="note"' not in html
        refused = act(client, session, "note", idem="idem-n-0001", of="1")
    assert refused.status_code == 422 and "private notes are off" in refused.text


def test_private_notes_need_the_zendesk_api() -> None:
    from tactful.config import ConfigError, settings_from_toml

    with pytest.raises(ConfigError, match="private_notes needs the Zendesk API"):
        settings_from_toml('[zendesk]\nsubdomain = "glowlab"\nprivate_notes = true\n', environ={})


def test_the_last_action_shows_what_the_tools_were_told_since(w: World) -> None:
    with TestClient(w.app) as client:
        session = open_page(client)
        act(client, session, "health", health="unsatisfied")
        before = panel(client, session)
        assert "Last action" in before and "The tools have not been told anything since." in before
        w.deliver()
        after = panel(client, session)
    block = re.search(r'<div class="proof".*?</div>', after, re.S)
    assert block, after
    text = re.sub(r"<[^>]+>", "", block.group(0))
    assert "Health set to unsatisfied." in text
    assert "Customer.io (cio) profile updated (delivered: Customer.io accepted it)" in text
    assert 'data-note=""' in block.group(0) and 'data-action="note"' not in block.group(0)
