"""What every vendor fake shares: a lock, the log of requests it answered, and faults a
test injects (``fail_next``) — the ``FakeVendor`` the conformance suite drives
(``tactful.testing.conformance``)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response


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

    def data_requests(self) -> list[RecordedRequest]:
        """The requests of the API itself: those to an OAuth token endpoint (``/token``)
        left out."""
        with self.lock:
            return [r for r in self.requests if r.path != "/token"]

    async def _serve(
        self, request: Request, answer: Callable[[Request, bytes], Response]
    ) -> Response:
        """``answer(request, body)`` holding the lock, and the request logged with it."""
        body = await request.body()
        with self.lock:
            response = answer(request, body)
            self._record(request, body, response.status_code)
        return response

    def _injected(self, answer: Callable[[int], Response]) -> Response | None:
        """The next injected fault as the vendor answers ``status`` (``answer``), with its
        ``Retry-After``; None when none is due (call holding the lock)."""
        if not self._faults:
            return None
        status, retry_after = self._faults.popleft()
        response = answer(status)
        if retry_after is not None:
            response.headers["retry-after"] = str(retry_after)
        return response

    def _record(self, request: Request, body: bytes, status: int) -> None:
        """Log a request and the status it was answered (call holding the lock)."""
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(
            RecordedRequest(request.method, request.url.path, headers, body, status)
        )
