"""A server with a destination and an alert configured, as the monitoring tests need it:
what it exports at ``/metrics`` (``test_deploy_monitoring``) and how its supervisor runs
its background work (``test_runtime_serve``)."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette

from tactful.config import settings_from_toml
from tactful.engine.engine import Engine, rules_from_settings
from tactful.store.sqlite import open_store
from tactful.testing import new_store_url
from tactful.web.app import create_app

CONFIG = """
[zendesk]
webhook_secret = "dGhpcyBpcyBhIHRlc3Qgc2VjcmV0"

[[segments]]
name = "suppress"
when = "has_open_ticket"

[[destinations]]
name = "hook"
type = "webhook"
url = "https://hooks.example.com/t"
secret = "whsec_dGFjdGZ1bC1hbGVydC10ZXN0LXNlY3JldC0zMmJ5dGU="

[[alert_channels]]
name = "ops"
type = "slack"
url = "https://hooks.slack.com/services/T000/B000/XXXX"

[[alerts]]
name = "dead_letters"
when = "dead_letters"
notify = ["ops"]
"""


def monitored_app(
    tmp: Path, *, tick_seconds: float, deliver_seconds: float
) -> tuple[Engine, Starlette]:
    """The engine (on a new store under ``tmp``; close its store) and the web app of
    ``CONFIG``, its background loops running every ``tick_seconds``/``deliver_seconds``."""
    settings = settings_from_toml(CONFIG, environ={})
    engine = Engine(rules_from_settings(settings), open_store(new_store_url(tmp)))
    app = create_app(settings, engine, tick_seconds=tick_seconds, deliver_seconds=deliver_seconds)
    return engine, app
