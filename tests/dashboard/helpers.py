"""Shared by the dashboard tests: an app on a real SQLite store with a little history and one
dead letter."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from starlette.applications import Starlette

from tactful.config import Settings, settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import FakeClock, at, new_store_url, ticket, user
from tactful.web.app import create_app

TOKEN = "api-token-123"
PASSWORD = "let-me-in-please"
EMAIL = "ann@example.com"


STATES = """
[[states]]
name = "open_issue"
when = "has_open_ticket"

[[states]]
name = "recently_resolved"
when = "last_resolved_at within 7d"
"""


SHOW_ALL = '["token", "password"]'  # the tests' logins see identifiers in full unless told


def config(
    *,
    token: str | None = TOKEN,
    password: str | None = PASSWORD,
    states: str = "",
    show: str | None = SHOW_ALL,
) -> str:
    api = "[api]\n"
    api += f'token = "{token}"\n' if token else ""
    api += f'dashboard_password = "{password}"\n' if password else ""
    api += f"show_identifiers_to = {show}\n" if show else ""
    return f"""
{api}
[zendesk]
subdomain = "glowlab"
{states}

[[segments]]
name = "open_issue"
when = "has_open_ticket"

[[segments]]
name = "held"
when = "has_open_ticket"
holdout = 0.999999

[[destinations]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/t"
secret = "whsec_dGFjdGZ1bC1mYXVsdC10ZXN0LXNlY3JldC0zMmJ5dGU="
"""


@dataclass
class World:
    settings: Settings
    engine: Engine
    app: Starlette

    def dead_count(self) -> int:
        with self.engine.store.reader() as reader:
            row = reader.conn.execute(  # type: ignore[attr-defined]
                "SELECT COUNT(*) FROM deliveries WHERE status = 'dead'"
            ).fetchone()
        return int(row[0])


def add_dead_letter(engine: Engine, person_id: str, destination: str = "hook") -> None:
    now = time.time_ns() // 1000
    p = engine.store.dialect.p
    with engine.store.transaction() as tx:
        tx.conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO deliveries (destination, person_id, kind, name, segment, key, at_us, "
            "payload, status, attempts, next_us, created_us, updated_us, last_error) VALUES "
            f"({p}, {p}, 'event', 'segment_entered', 'open_issue', 'k-dead-1', {p}, {p}, 'dead', "
            f"8, {p}, {p}, {p}, 'HTTP 500: upstream broke')",
            (destination, person_id, now, orjson.dumps({}), now, now, now),
        )


def person_of(engine: Engine, email: str = EMAIL) -> str:
    with engine.store.reader() as reader:
        return reader.find_persons("email", email)[0]


def world(
    tmp_path: Path,
    *,
    token: str | None = TOKEN,
    password: str | None = PASSWORD,
    states: str = "",
    show: str | None = SHOW_ALL,
) -> World:
    """Ann and Cy with an open ticket, Bob's solved; with ``states`` (``STATES``), Bob
    also has a second ticket solved later: a change of fields, not of support state."""
    text = config(token=token, password=password, states=states, show=show)
    settings = settings_from_toml(text, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    engine.apply(
        [
            user(1, emails=(EMAIL,)),
            user(2, emails=("bob@example.com",)),
            user(3, emails=("cy@example.com",)),
            ticket(1, at(1), "open", requester_id=1),
            ticket(2, at(2), "open", requester_id=2),
            ticket(3, at(3), "open", requester_id=3),
        ]
    )
    engine.apply([ticket(2, at(5), "solved", requester_id=2)])
    if states:
        engine.apply([ticket(4, at(5.5), "solved", requester_id=2)])
    engine.tick(at(6))
    add_dead_letter(engine, person_of(engine))
    app = create_app(settings, engine, tick_seconds=0, clock=FakeClock(at(6)), deliver_seconds=0)
    return World(settings, engine, app)
