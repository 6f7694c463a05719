"""The dashboard's pages (issue 23): recent changes without no-op rows and both clocks
labelled, the people list with search and filters, segment pages, persons named by an
identifier, templates without inline script or style."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tactful.web.dashboard import people as people_data
from tactful.web.dashboard import segments as segment_data
from tests.dashboard.helpers import EMAIL, PASSWORD, STATES, World, person_of, world

pytestmark = pytest.mark.store

PAGES = (
    "/",
    "/people",
    "/segments",
    "/segments/open_issue",
    "/destinations/hook",
    "/config",
    "/report",
)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    out = world(tmp_path, states=STATES)
    yield out
    out.engine.store.close()


@pytest.fixture
def client(w: World) -> Iterator[TestClient]:
    with TestClient(w.app) as c:
        r = c.post("/login", data={"password": PASSWORD, "next": "/"}, follow_redirects=False)
        assert r.status_code == 303
        yield c


def cells(html: str, table: str) -> list[list[str]]:
    body = re.search(rf'<table class="{table}">.*?<tbody>(.*?)</tbody>', html, re.S)
    assert body is not None, table
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", body.group(1), re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)]
        for r in rows
    ]


def test_recent_changes_leave_out_rows_where_the_state_did_not_change(
    w: World, client: TestClient
) -> None:
    with w.engine.store.reader() as reader:
        noop = reader.conn.execute(  # type: ignore[attr-defined]
            "SELECT COUNT(*) FROM state_changes WHERE old_state = new_state"
        ).fetchone()[0]
    assert noop >= 1  # Bob's second solved ticket: recently_resolved -> recently_resolved
    rows = cells(client.get("/").text, "changes")
    pairs = [(r[2], r[3]) for r in rows]
    assert ("open_issue", "recently_resolved") in pairs
    assert all(old != new for old, new in pairs), pairs


def test_both_clocks_are_shown_side_by_side_and_labelled(client: TestClient) -> None:
    html = client.get("/").text
    assert "Engine clock (segments and rules run on it)" in html
    assert "Wall clock (this server, now)" in html
    engine = re.search(r'class="engine-clock"><time datetime="([^"]+)"', html)
    wall = re.search(r'class="wall-clock"><time datetime="([^"]+)"', html)
    assert engine is not None and engine.group(1) == "2026-01-01T06:00:00Z"
    assert wall is not None and wall.group(1) != engine.group(1)
    assert "engine clock" in html and "behind the wall" in html  # the difference, in words
    assert "At (engine clock)" in html
    assert ".000001" not in html and "+00:00" not in html


def test_people_are_named_by_an_identifier_not_only_their_id(w: World, client: TestClient) -> None:
    html = client.get("/").text
    changes = cells(html, "changes")
    assert {r[1] for r in changes} <= {EMAIL, "bob@example.com", "cy@example.com"}
    pid = person_of(w.engine)
    listed = client.get("/people").text
    assert f'<a class="person-name" href="/people/{pid}">{EMAIL}</a>' in listed


def test_people_list_search_and_filters(w: World, client: TestClient) -> None:
    everyone = client.get("/people")
    assert everyone.status_code == 200
    assert len(cells(everyone.text, "people")) == 3 and "3 people" in everyone.text

    def names(**params: str) -> set[str]:
        html = client.get("/people", params=params).text
        return set(re.findall(r'class="person-name" href="/people/[^"]+">([^<]+)<', html))

    assert names(q="bob") == {"bob@example.com"}  # part of an email
    assert names(q="BOB@Example.com") == {"bob@example.com"}  # normalized
    assert names(state="recently_resolved") == {"bob@example.com"}
    assert names(segment="open_issue") == {EMAIL, "cy@example.com"}
    assert names(segment="open_issue", q="cy") == {"cy@example.com"}
    assert names(q="100%_") == set()
    one = client.get("/people", params={"q": EMAIL}).text
    assert 'class="person"' in one  # one match: the person right away
    assert client.get("/people", params={"q": "nobody@example.com"}).status_code == 404
    selected = client.get("/people", params={"state": "open_issue"}).text
    assert '<option value="open_issue" selected>' in selected


def test_people_list_pages(w: World, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(people_data, "PAGE_SIZE", 2)
    first = client.get("/people").text
    assert "Page 1 of 2" in first and 'href="/people?page=2"' in first
    second = client.get("/people", params={"page": "2"}).text
    assert len(cells(second, "people")) == 1 and 'rel="prev"' in second


def test_a_person_page(w: World, client: TestClient) -> None:
    pid = person_of(w.engine)
    html = client.get(f"/people/{pid}").text
    assert f'<h2 id="person-h">{EMAIL} — ' in html
    assert 'href="/segments/open_issue"' in html
    assert client.get("/people/p_nobody").status_code == 404


def test_segment_page(w: World, client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    r = client.get("/segments/open_issue")
    assert r.status_code == 200
    html = r.text
    assert re.search(r'class="members">2<', html)
    assert re.search(r'class="delivered">hook<', html)
    members = {row[0] for row in cells(html, "members")}
    assert members == {EMAIL, "cy@example.com"}
    flow = cells(html, "flow")
    assert sum(int(row[1]) for row in flow) == 3 and sum(int(row[2]) for row in flow) == 1
    assert 'aria-label="open_issue: size over time"' in html
    assert {row[2] for row in cells(html, "history")} == {"entered", "exited"}
    held = client.get("/segments/held").text
    assert re.search(r'class="holdout">2 <span class="muted">\(target 100.0%\)', held)
    assert client.get("/segments/nope").status_code == 404
    monkeypatch.setattr(segment_data, "PAGE_SIZE", 1)
    first = client.get("/segments/open_issue").text
    nxt = re.search(r'href="(/segments/open_issue\?after=[^"]+)" rel="next"', first)
    assert nxt is not None
    second = client.get(nxt.group(1).replace("&amp;", "&")).text
    assert cells(first, "members")[0][0] != cells(second, "members")[0][0]
    segments = client.get("/segments").text
    assert 'href="/segments/held"' in segments


def test_pages_carry_no_inline_script_or_style(client: TestClient) -> None:
    for path in PAGES:
        html = client.get(path).text
        assert "<script" not in html and "<style" not in html, path
        assert not re.search(r"\sstyle=", html), path
        assert '<link rel="stylesheet" href="/static/dashboard.css">' in html
    css = client.get("/static/dashboard.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert client.get("/static/garden.css").status_code == 200


def test_a_changed_rule_is_previewed_on_the_segment_page(client: TestClient) -> None:
    def tried(rule: str) -> tuple[int, str]:
        r = client.get("/segments/open_issue", params={"rule": rule})
        return r.status_code, r.text

    status, html = tried("not has_open_ticket")
    assert status == 200
    outcome = re.sub(r"<[^>]+>", "", re.search(r'<p class="outcome".*?</p>', html, re.S).group(0))
    assert outcome == (
        "1 would match not has_open_ticket (the segment has 2 now): 1 would enter, "
        "2 would exit (exits before any cooldown)."
    )
    entering = re.search(r'<ul class="entering">(.*?)</ul>', html, re.S).group(1)
    exiting = re.search(r'<ul class="exiting">(.*?)</ul>', html, re.S).group(1)
    assert "bob@example.com" in entering and "bob@example.com" not in exiting
    assert EMAIL in exiting and "cy@example.com" in exiting
    status, html = tried("has_open_tiket")
    assert status == 400 and "has_open_tiket" in html and 'class="flash error"' in html
    assert 'value="has_open_tiket"' in html  # the rule stays in the box to fix


def test_templates_and_static_files_are_package_data() -> None:
    """An installed Tactful has every template and static file (pyproject package-data)."""
    import tomllib
    from fnmatch import fnmatch

    import tactful

    root = Path(tactful.__file__).parent
    pyproject = root.parent / "pyproject.toml"
    globs = tomllib.loads(pyproject.read_text())["tool"]["setuptools"]["package-data"]["tactful"]
    files = [
        p.relative_to(root).as_posix()
        for folder in ("web/templates", "web/static")
        for p in (root / folder).rglob("*")
        if p.is_file()
    ]
    assert "web/static/garden.css" in files and "web/templates/sidebar/panel.html" in files
    missing = [
        f for f in files if not any(fnmatch(f, g) and g.count("/") == f.count("/") for g in globs)
    ]
    assert missing == []


def test_the_report_page_leads_with_one_answer_per_segment(client: TestClient) -> None:
    html = client.get("/report").text
    assert html.index('id="answers"') < html.index('<section class="report">')
    answers = html[html.index('id="answers"') : html.index('<section class="report">')]
    held = re.search(r'data-segment="held">\s*<p class="headline[^"]*">([^<]+)</p>', answers)
    assert held is not None
    assert held.group(1).startswith("Held: ")  # its name in words, then the answer
