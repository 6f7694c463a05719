"""The simulator's CSAT survey responses and brands, read back through Tactful's parser."""

from __future__ import annotations

from datetime import timedelta

from tactful.core.events import RatingGiven, TicketVersion
from tactful.core.state import csat_score
from tactful.zendesk.parse import parse_object

from .conftest import Served

SURVEYS = "/api/v2/guide/survey_responses"
TICKETS = "/api/v2/incremental/tickets/cursor.json"


def test_survey_responses_list_filters_and_parses(served: Served) -> None:
    sim = served.sim
    ann = sim.create_user("Ann Lee", "ann@example.com")
    bob = sim.create_user("Bob Roe", "bob@example.com")
    t1, t2 = sim.create_ticket(ann, "Where is my order?"), sim.create_ticket(bob, "Refund")
    sim.solve(t1)
    sim.solve(t2)
    sim.advance(timedelta(hours=1))
    first = sim.respond_survey(t1, 2, points=3)
    sim.advance(timedelta(minutes=5))
    assert sim.respond_survey(t1, 3, points=3) == first  # an edit of the same response
    sim.respond_survey(t2, 1)
    page = served.client.get(f"{SURVEYS}?filter[subject_zrns]=zen:ticket:{t1}").json()
    assert [r["id"] for r in page["survey_responses"]] == [first]
    assert len(first) == 26 and page["meta"]["has_more"] is False
    everything = served.client.get(f"{SURVEYS}.json?page[size]=1").json()
    assert len(everything["survey_responses"]) == 1 and everything["meta"]["has_more"] is True
    after = everything["meta"]["after_cursor"]
    rest = served.client.get(f"{SURVEYS}?page[size]=1&page[after]={after}").json()
    assert rest["meta"]["has_more"] is False
    parsed = parse_object(served.client.get(SURVEYS).json())
    assert parsed.shape == "survey_responses_page" and parsed.skipped == []
    ratings = {e.ticket_id: e for e in parsed.events if isinstance(e, RatingGiven)}
    assert ratings[t1].requester_id == ann and ratings[t1].scale == 3
    assert csat_score(ratings[t1], good=5, bad=1) == 5
    assert csat_score(ratings[t2], good=5, bad=1) == 1
    assert ratings[t1].at == sim.now()  # the edit's time: the latest answer wins


def test_tickets_keep_their_brand(served: Served) -> None:
    sim = served.sim
    ann = sim.create_user("Ann Lee", "ann@example.com")
    default = sim.create_ticket(ann, "Default brand")
    lumen = sim.create_ticket(ann, "Lumen question", brand_id=360_000_222_222)
    sim.advance(timedelta(minutes=10))
    page = served.client.get(f"{TICKETS}?start_time=0").json()
    versions = {e.ticket_id: e for e in parse_object(page).events if isinstance(e, TicketVersion)}
    assert versions[lumen].brand_id == 360_000_222_222
    assert versions[default].brand_id is not None and versions[default].brand_id != 360_000_222_222
