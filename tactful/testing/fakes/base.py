"""What every vendor fake shares: a lock, the log of requests it answered, and faults a
test injects (``fail_next``) — the ``FakeVendor`` the conformance suite drives
(``tactful.testing.conformance``)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

from starlette.requests import Request


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes
    status: int  # what the fake answered


class FakeBase:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self._faults: deque[tuple[int, int | None]] = deque()

    def fail_next(self, n: int, status: int, retry_after: int | None = None) -> None:
        """The next ``n`` data requests answer ``status`` (with ``Retry-After``)."""
        with self.lock:
            self._faults.extend([(status, retry_after)] * n)

    def _record(self, request: Request, body: bytes, status: int) -> None:
        """Log a request and the status it was answered (call holding the lock)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(
            RecordedRequest(request.method, request.url.path, headers, body, status)
        )
