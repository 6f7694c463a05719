"""Zendesk user names (issue 23): kept from the users export, the API and the
``user.name_changed`` webhook, the latest per user; people are found by them; merges follow
and an erasure takes them (raw documents too)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from tactful.core.events import Identifier, PersonErased, UserSeen
from tactful.engine.engine import Engine
from tactful.testing import at, harness, ticket, user_merge
from tactful.zendesk.parse import parse_object
from tactful.zendesk.records import user_seen

pytestmark = pytest.mark.store


def named(user_id: int, name: str, hours: float, email: str = "") -> UserSeen:
    return UserSeen(
        f"zendesk:user:{user_id}:{hours}",
        at(hours),
        user_id,
        emails=(email,) if email else (),
        name=name,
    )


def persons(engine: Engine, text: str) -> list[str]:
    with engine.store.reader() as reader:
        return reader.persons_named(text)


def names(engine: Engine, person_id: str) -> list[str]:
    with engine.store.reader() as reader:
        return reader.names_of([person_id])[person_id]


def person(engine: Engine, email: str) -> str:
    with engine.store.reader() as reader:
        return reader.find_persons("email", email)[0]


def test_the_export_api_and_webhooks_give_the_name() -> None:
    seen = user_seen({"id": 7, "name": "  Ann Lee ", "updated_at": "2026-01-01T00:00:00Z"})
    assert seen.name == "Ann Lee"
    assert user_seen({"id": 8, "updated_at": "2026-01-01T00:00:00Z"}).name is None
    envelope = {
        "id": "e1",
        "type": "zen:event-type:user.name_changed",
        "time": "2026-11-22T10:00:00Z",
        "account_id": 1,
        "zendesk_event_version": "2022-11-06",
        "subject": "zen:user:55",
        "detail": {"id": "55", "email": "ann@example.com", "external_id": ""},
        "event": {"current": "Ann Lee-Smith", "previous": "Ann Lee"},
    }
    (changed,) = parse_object(envelope).events
    assert isinstance(changed, UserSeen) and changed.name == "Ann Lee-Smith"
    assert changed.emails == ("ann@example.com",)


def test_people_are_found_by_a_part_of_their_name_the_latest_wins() -> None:
    engine = harness("").engine
    engine.apply([named(1, "Ann Lee", 1, "ann@example.com"), named(2, "Bob Stone", 1, "b@x.com")])
    ann = person(engine, "ann@example.com")
    assert persons(engine, "ann") == [ann]
    assert persons(engine, "  LEE ") == [ann]  # case and spaces do not matter
    assert persons(engine, "Ann  Lee") == [ann]
    assert persons(engine, "o") == sorted([person(engine, "b@x.com")])
    assert persons(engine, "%") == [] and persons(engine, "_") == []  # no wildcards
    engine.apply([named(1, "Ann Lee-Smith", 3)])
    engine.apply([named(1, "Ann Old", 2)])  # an older version, applied later: not kept
    assert names(engine, ann) == ["Ann Lee-Smith"]
    assert persons(engine, "old") == []
    engine.apply([named(3, "Zoë Ärger", 1, "z@x.com")])
    assert persons(engine, "zoë ärger") == [person(engine, "z@x.com")]  # beyond ASCII


def test_a_merge_keeps_both_names_an_erasure_takes_them() -> None:
    engine = harness("").engine
    engine.apply([named(1, "Ann Lee", 1, "ann@example.com"), ticket(1, at(1), requester_id=1)])
    engine.apply([named(2, "Annie L", 1, "annie@example.com")])
    engine.apply([user_merge(2, 1, at(2))])
    ann = person(engine, "ann@example.com")
    assert persons(engine, "annie") == [ann]
    assert sorted(names(engine, ann)) == ["Ann Lee", "Annie L"]
    # A page of the users export that also holds someone else: kept, with Ann taken out.
    page = {
        "users": [
            {
                "id": 1,
                "name": "Ann Lee",
                "email": "ann@example.com",
                "updated_at": "2026-01-01T02:00:00Z",
            },
            {
                "id": 3,
                "name": "Cy Doe",
                "email": "cy@example.com",
                "updated_at": "2026-01-01T02:00:00Z",
            },
        ],
        "end_of_stream": True,
    }
    parsed = parse_object(page)
    engine.apply(parsed.events, document=orjson.dumps(page), source="import:users.json")
    engine.apply([PersonErased("erase-1", at(5), Identifier("email", "ann@example.com"))])
    assert persons(engine, "ann") == [] and persons(engine, "annie") == []
    with engine.store.reader() as reader:
        conn: Any = reader.conn  # type: ignore[attr-defined]
        left = [r[0] for r in conn.execute("SELECT name FROM user_names ORDER BY name")]
        bodies = [bytes(r[0]) for r in conn.execute("SELECT body FROM documents")]
    assert left == ["Cy Doe"]
    assert persons(engine, "cy") == [person(engine, "cy@example.com")]
    import zlib

    text = b"".join(zlib.decompress(b) if b[:1] == b"x" else b for b in bodies)
    assert b"Ann Lee" not in text and b"Cy Doe" in text
