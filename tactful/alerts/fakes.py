"""Fakes of the alert channels, for tests and demos (the signed webhook's is the webhook
destination's receiver, ``tactful.testing.fakes.webhook.FakeWebhookReceiver``).

``FakeSlack``: a Slack incoming webhook, as Slack documents it
(https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks/ and the error
list https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks):
``POST /services/T…/B…/<secret>`` with a JSON body holding ``text`` (or ``blocks``);
``200`` with the body ``ok``; ``400 invalid_payload`` (not JSON, or no ``text``/``blocks``),
``403 action_prohibited``, ``404 no_service`` (an unknown hook path), ``410
channel_is_archived``, and ``429`` with ``Retry-After`` past one message a second ("short
bursts >1 allowed": here a burst of ``burst``, 5; https://api.slack.com/docs/rate-limits).

``FakeSMTP``: an SMTP server on loopback (RFC 5321 with ``AUTH PLAIN``/``LOGIN``, RFC 4954):
``EHLO``/``HELO``, ``AUTH``, ``MAIL FROM``, ``RCPT TO``, ``DATA`` (dot-unstuffed),
``RSET``, ``NOOP``, ``QUIT``; ``530`` when a login is required and missing, ``535`` on
bad credentials, ``503`` out of sequence, ``550`` for a ``reject`` recipient. It offers
no ``STARTTLS`` (a client that requires it must refuse to go on).
"""

from __future__ import annotations

import base64
import socketserver
import threading
import time
from collections import deque
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route


class FakeSlack:
    def __init__(self, hook: str = "/services/T000/B000/XXXXSECRET") -> None:
        self.hook = hook
        self.lock = threading.Lock()
        self.messages: list[dict[str, Any]] = []
        self.archived = False
        self.prohibited = False
        self.per_second = 1.0  # the documented rate limit
        self.burst = 5.0
        self._faults: deque[int] = deque()
        self._tokens, self._at = self.burst, time.monotonic()
        self.app = Starlette(routes=[Route("/services/{rest:path}", self._post, methods=["POST"])])

    def fail_next(self, n: int, status: int) -> None:
        with self.lock:
            self._faults.extend([status] * n)

    async def _post(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        with self.lock:
            return self._handle(request.url.path, body)

    def _handle(self, path: str, body: bytes) -> PlainTextResponse:
        if path != self.hook:
            return PlainTextResponse("no_service", 404)
        if self._faults:
            status = self._faults.popleft()
            return PlainTextResponse({500: "rollup_error"}.get(status, "injected"), status)
        if self.prohibited:
            return PlainTextResponse("action_prohibited", 403)
        if self.archived:
            return PlainTextResponse("channel_is_archived", 410)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            return PlainTextResponse("invalid_payload", 400)
        if not isinstance(data, dict) or not (data.get("text") or data.get("blocks")):
            return PlainTextResponse("invalid_payload", 400)
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.per_second)
        self._at = now
        if self._tokens < 1:
            return PlainTextResponse("rate_limited", 429, headers={"Retry-After": "1"})
        self._tokens -= 1
        self.messages.append(data)
        return PlainTextResponse("ok", 200)


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    data: bytes
    login: str | None

    @property
    def message(self) -> Message:
        return message_from_bytes(self.data)


class FakeSMTP:
    def __init__(
        self, username: str | None = None, password: str | None = None, reject: str = ""
    ) -> None:
        self.username, self.password, self.reject = username, password, reject
        self.mails: list[Mail] = []
        self.down = False  # answer 421 to every connection
        fake = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                fake._session(self)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.host, self.port = "127.0.0.1", int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _session(self, h: socketserver.StreamRequestHandler) -> None:
        def say(line: str) -> None:
            h.wfile.write(line.encode() + b"\r\n")

        if self.down:
            say("421 4.3.2 service not available")
            return
        say("220 fake.smtp ESMTP ready")
        helo, login = False, None
        sender: str | None = None
        rcpts: list[str] = []
        while True:
            raw = h.rfile.readline()
            if not raw:
                return
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb == "EHLO":
                helo = True
                h.wfile.write(b"250-fake.smtp\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n")
            elif verb == "HELO":
                helo = True
                say("250 fake.smtp")
            elif verb == "AUTH":
                login = self._auth(h, arg, say)
            elif verb == "MAIL":
                if not helo:
                    say("503 5.5.1 EHLO first")
                elif self.username is not None and login is None:
                    say("530 5.7.0 authentication required")
                else:
                    sender, rcpts = _address(arg), []
                    say("250 2.1.0 ok")
            elif verb == "RCPT":
                if sender is None:
                    say("503 5.5.1 MAIL first")
                elif self.reject and _address(arg) == self.reject:
                    say("550 5.1.1 no such user")
                else:
                    rcpts.append(_address(arg))
                    say("250 2.1.5 ok")
            elif verb == "DATA":
                if sender is None or not rcpts:
                    say("503 5.5.1 RCPT first")
                    continue
                say("354 end data with <CR><LF>.<CR><LF>")
                data = _read_data(h)
                self.mails.append(Mail(sender, tuple(rcpts), data, login))
                sender, rcpts = None, []
                say("250 2.0.0 queued")
            elif verb == "RSET":
                sender, rcpts = None, []
                say("250 2.0.0 ok")
            elif verb == "NOOP":
                say("250 2.0.0 ok")
            elif verb == "QUIT":
                say("221 2.0.0 bye")
                return
            else:
                say("502 5.5.2 command not implemented")

    def _auth(self, h: socketserver.StreamRequestHandler, arg: str, say: Any) -> str | None:
        mechanism, _, initial = arg.partition(" ")
        if mechanism.upper() == "PLAIN":
            if not initial:
                say("334 ")
                initial = h.rfile.readline().decode().strip()
            parts = base64.b64decode(initial).split(b"\0")
            user, password = (parts[1], parts[2]) if len(parts) == 3 else (b"", b"")
        elif mechanism.upper() == "LOGIN":
            say("334 " + base64.b64encode(b"Username:").decode())
            user = base64.b64decode(h.rfile.readline().strip())
            say("334 " + base64.b64encode(b"Password:").decode())
            password = base64.b64decode(h.rfile.readline().strip())
        else:
            say("504 5.5.4 unrecognized authentication type")
            return None
        if user.decode() == self.username and password.decode() == self.password:
            say("235 2.7.0 authentication successful")
            return user.decode()
        say("535 5.7.8 authentication credentials invalid")
        return None


def _address(arg: str) -> str:
    inside = arg.partition(":")[2].strip()
    return inside.split(">", 1)[0].lstrip("<").strip()


def _read_data(h: socketserver.StreamRequestHandler) -> bytes:
    lines: list[bytes] = []
    while True:
        raw = h.rfile.readline()
        if not raw or raw in (b".\r\n", b".\n"):
            return b"".join(lines)
        lines.append(raw[1:] if raw.startswith(b"..") else raw)
