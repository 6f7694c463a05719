"""What the sidebar routes share: the web context, sessions, the token verifier, the ESP
client (the first destination whose type is a ``profile_reader``: Customer.io, Klaviyo,
Sailthru) and the Zendesk client."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import httpx

from tactful.config.models import DestinationSettings
from tactful.destinations import registry
from tactful.destinations.profiles import ProfileActions, ProfileError
from tactful.web.context import WebContext
from tactful.web.sidebar.auth import Verifier
from tactful.web.sidebar.session import Sessions
from tactful.zendesk.client import ZendeskClient

ESP_TIMEOUT_SECONDS = 3.0
T = TypeVar("T")


class EspUnavailable(Exception):
    """No ESP configured, or it did not answer in time."""


@dataclass
class SidebarState:
    ctx: WebContext
    clock: Callable[[], datetime]
    sessions: Sessions = field(default_factory=Sessions)
    transport: httpx.BaseTransport | None = None
    esp_timeout: float = ESP_TIMEOUT_SECONDS
    zendesk_factory: Callable[[], ZendeskClient | None] | None = None
    _esp: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def verifier(self) -> Verifier:
        return Verifier.from_settings(self.ctx.settings.zendesk)

    @property
    def esp_name(self) -> str | None:
        config = self._esp_config()
        return config.name if config is not None else None

    def _esp_config(self) -> DestinationSettings | None:
        readers = (d for d in self.ctx.settings.destinations if d.roles.profile_reader)
        return next(readers, None)

    def esp(self) -> ProfileActions:
        with self._lock:
            if self._esp is None:
                config = self._esp_config()
                if config is None:
                    raise EspUnavailable("no ESP destination (customerio, klaviyo, sailthru)")
                self._esp = registry.create(config, transport=self.transport)
            esp: ProfileActions = self._esp
            return esp

    async def call_esp(self, fn: Callable[[ProfileActions], T]) -> T:
        """Run one ESP call in a thread, giving up after ``esp_timeout`` seconds."""
        esp = self.esp()
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, esp), self.esp_timeout)
        except TimeoutError as exc:
            raise EspUnavailable(f"no answer within {self.esp_timeout:g} s") from exc
        except ProfileError:
            raise

    def zendesk(self) -> ZendeskClient | None:
        if self.zendesk_factory is not None:
            return self.zendesk_factory()
        z = self.ctx.settings.zendesk
        if z.api_url and z.api_token and z.email:
            return ZendeskClient.from_settings(z, max_attempts=2, timeout=10.0)
        return None

    def close(self) -> None:
        esp = self._esp
        if esp is not None and hasattr(esp, "close"):
            esp.close()
