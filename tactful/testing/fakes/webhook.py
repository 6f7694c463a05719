"""A fake webhook receiver (Starlette) that verifies Standard Webhooks signatures.

``POST {path}``: a request whose signature does not verify (or whose timestamp is outside
the tolerance) is answered 401 and stored nowhere. A verified one is answered 204 and kept
in ``deliveries`` (every attempt) and in the store keyed by ``webhook-id`` (first delivery
wins, as the spec tells receivers to deduplicate): ``snapshot()``. ``fail_next`` injects
statuses (with ``Retry-After``); ``gone = True`` answers 410 from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tactful.destinations import standard_webhooks
from tactful.testing.fakes.base import FakeBase


@dataclass(frozen=True)
class Delivery:
    webhook_id: str
    timestamp: int
    signature: str
    payload: dict[str, Any]


class FakeWebhookReceiver(FakeBase):
    def __init__(self, secret: str, path: str = "/hooks") -> None:
        super().__init__()
        self.secret = secret
        self.path = path
        self.deliveries: list[Delivery] = []
        self.received: dict[str, dict[str, Any]] = {}
        self.unverified = 0
        self.gone = False
        self.app = Starlette(routes=[Route(path, self._endpoint, methods=["POST"])])

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self.lock:
            return dict(self.received)

    def max_items_per_request(self) -> int:
        return 1

    async def _endpoint(self, request: Request) -> Response:
        return await self._serve(request, lambda r, body: self._handle(dict(r.headers), body))

    def _handle(self, headers: dict[str, str], body: bytes) -> Response:
        if self.gone:
            return Response("gone", 410)
        try:
            msg_id = standard_webhooks.verify(self.secret, body, headers)
        except standard_webhooks.VerificationError as e:
            self.unverified += 1
            return Response(f"invalid signature: {e}", 401)
        if fault := self._injected(lambda status: Response("injected fault", status)):
            return fault
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return Response("invalid JSON", 400)
        self.deliveries.append(
            Delivery(
                msg_id,
                int(headers[standard_webhooks.TIMESTAMP_HEADER]),
                headers[standard_webhooks.SIGNATURE_HEADER],
                payload,
            )
        )
        self.received.setdefault(msg_id, payload)
        return Response(status_code=204)
