"""Shared by the sidebar tests: RSA keys, Zendesk-style tokens, and an app on a real SQLite
store with the Customer.io fake."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette

from tactful.config import Settings, settings_from_toml
from tactful.delivery.worker import DeliveryWorker
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import FakeClock, at, new_store_url, ticket, user
from tactful.testing.fakes.customerio import FakeCustomerIO
from tactful.testing.fakes.meta import FakeMeta
from tactful.testing.sim.server import run_in_thread
from tactful.web.app import create_app

ISSUER = "glowlab.zendesk.com"
PUBLIC_URL = "https://tactful.example.com"
AUD = PUBLIC_URL + "/app/sidebar"  # the aud tokens carry by default: the app's URL
EMAIL = "ann@example.com"
TICKET = 1  # ann's ticket: the sidebar is opened on it


def rsa_pair() -> tuple[Any, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, pem.decode()


PRIVATE, PUBLIC_PEM = rsa_pair()
OTHER_PRIVATE, _ = rsa_pair()


def token(
    *,
    key: Any = None,
    sub: str = "agent-42",
    iss: str = ISSUER,
    aud: str | None = AUD,
    exp_in: float = 300,
    **extra: Any,
) -> str:
    """A Zendesk-style signed-URL token; a fresh ``jti`` each time unless given (None: none)."""
    claims: dict[str, Any] = {
        "sub": sub,
        "iss": iss,
        "exp": int(time.time() + exp_in),
        "jti": uuid.uuid4().hex,
        **extra,
    }
    if claims["jti"] is None:
        del claims["jti"]
    if aud is not None:
        claims["aud"] = aud
    return jwt.encode(claims, key or PRIVATE, algorithm="RS256")


def config(
    esp_url: str, *, audience: str | None = None, base_url: str | None = None, extra: str = ""
) -> str:
    aud = f'app_audience = "{audience}"\n' if audience else ""
    base = f'base_url = "{base_url}"\n' if base_url else ""
    return f"""
[zendesk]
subdomain = "glowlab"
public_url = "{PUBLIC_URL}"
app_public_key = '''{PUBLIC_PEM}'''
{aud}{base}
[[segments]]
name = "open_issue"
when = "has_open_ticket"

[[segments]]
name = "unhappy"
when = 'health == "unsatisfied"'

[[segments]]
name = "overridden"
when = "promo_override_until within 0m"

[[destinations]]
name = "cio"
type = "customerio"
site_id = "site-1"
api_key = "track-key"
app_api_key = "app-key"
base_url = "{esp_url}"
{extra}
"""


@dataclass
class World:
    settings: Settings
    engine: Engine
    clock: FakeClock
    app: Starlette
    cio: FakeCustomerIO
    worker: DeliveryWorker
    stop_server: Callable[[], None]
    meta: FakeMeta | None = None
    stop_meta: Callable[[], None] | None = None

    def deliver(self) -> None:
        self.worker.sync()

    def stop(self) -> None:
        self.worker.close()
        self.stop_server()
        if self.stop_meta is not None:
            self.stop_meta()
        self.engine.store.close()


def world(
    tmp_path: Path,
    *,
    esp_url: str | None = None,
    audience: str | None = None,
    base_url: str | None = None,
    tick_seconds: float = 0,
    with_meta: bool = False,
    extra: str = "",
) -> World:
    cio = FakeCustomerIO()
    url, stop = run_in_thread(cio.app)
    meta, stop_meta = None, None
    if with_meta:  # a Meta audience of the people with an open ticket
        meta = FakeMeta()
        meta_url, stop_meta = run_in_thread(meta.app)
        extra += f'''
[[destinations]]
name = "meta"
type = "meta_audience"
segment = "open_issue"
audience_id = "23850000000000000"
access_token = "{meta.access_token}"
base_url = "{FakeMeta.base_url(meta_url)}"
'''
    text = config(esp_url or url, audience=audience, base_url=base_url, extra=extra)
    settings = settings_from_toml(text, environ={})
    clock = FakeClock(at(1))
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp_path)))
    engine.apply([user(1, emails=(EMAIL,)), ticket(1, at(0), "open")])
    worker = DeliveryWorker(settings, engine.store)
    worker.sync()  # the person now exists at the Customer.io fake
    app = create_app(settings, engine, tick_seconds=tick_seconds, clock=clock, deliver_seconds=0)
    app.state.sidebar.esp_timeout = 2.0
    return World(settings, engine, clock, app, cio, worker, stop, meta, stop_meta)


def days(n: float) -> timedelta:
    return timedelta(days=n)
