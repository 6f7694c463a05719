"""uvicorn settings for ``tactful serve``: limits that keep slow or idle clients from holding
connections (a few hundred trickling requests used to stay open 40 s and more).

uvicorn bounds idle keep-alive connections (``timeout_keep_alive``) and the number of
connections (``limit_concurrency``: more get 503), but it waits for a request's headers
forever. ``GuardedH11Protocol`` closes a connection whose request line and headers are not
complete ``HEADER_SECONDS`` after they started (or after the connection opened). Bodies have
their own deadline in the app (``tactful.web.app.BODY_SECONDS``: 408).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

HEADER_SECONDS = 10.0
KEEP_ALIVE_SECONDS = 5
MAX_CONNECTIONS = 512  # per process; more get 503 at once
MAX_HEADER_BYTES = 32 * 1024  # request line + headers (h11's limit; more: 400)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline on the request line and headers."""

    header_seconds = HEADER_SECONDS
    _header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)  # TCP (and TLS) transports are
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # (part of) the next request's headers: they have a deadline
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _too_slow(self) -> None:
        self._header_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()


def limits() -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config``."""
    return {
        "http": GuardedH11Protocol,
        "timeout_keep_alive": KEEP_ALIVE_SECONDS,
        "limit_concurrency": MAX_CONNECTIONS,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,
    }
