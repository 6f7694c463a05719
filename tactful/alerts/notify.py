"""The alert channels' clients: a Slack incoming webhook, SMTP email, a signed webhook.

- ``slack``: ``POST`` the webhook URL with ``{"text": …}`` (``mrkdwn``; ``&``, ``<``, ``>``
  escaped as Slack asks). Slack answers ``200 ok``; its errors are ``400 invalid_payload``,
  ``403 action_prohibited``, ``404 channel_not_found``, ``410 channel_is_archived``, ``429``
  (rate limit, about one message a second per webhook), each a failure here
  (https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks/,
  https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks).
- ``email``: one message to every ``to`` address over SMTP (RFC 5321), ``starttls`` (RFC
  3207) or implicit ``tls`` verified against the system's certificates, ``AUTH`` (RFC 4954)
  when ``username`` is set (never over an unencrypted connection, unless ``security =
  "none"`` says the relay is trusted).
- ``webhook``: ``POST {"type": "alert.firing" | "alert.repeat" | "alert.resolved",
  "timestamp", "data"}`` signed like the ``webhook`` destination (Standard Webhooks
  ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature``); any 2xx is delivered.

Every request ends within ``DEADLINE`` (5) seconds and goes through the environment's proxy,
like the destinations' (``tactful.delivery.deadline``).
"""

from __future__ import annotations

import hashlib
import logging
import smtplib
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any, Protocol

import httpx
import orjson

from tactful.alerts.policy import Notice
from tactful.clock import epoch_seconds, system_now
from tactful.config.alerts import (
    AlertChannelSettings,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
)
from tactful.delivery.deadline import DeadlineTransport
from tactful.destinations import standard_webhooks

log = logging.getLogger(__name__)

DEADLINE = 5.0  # per request: a hanging channel never holds a shutdown for long
_HEAD = {"firing": "FIRING", "repeat": "STILL FIRING", "resolved": "RESOLVED"}


class NotifyError(Exception):
    """The channel did not take the notice (it stays owed: tried again at the next check)."""


class Notifier(Protocol):
    def send(self, notice: Notice) -> None: ...

    def close(self) -> None: ...


def iso(us: int) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def title(notice: Notice) -> str:
    return f"[Tactful] {_HEAD[notice.kind]} {notice.rule} ({notice.severity}): {notice.destination}"


def text(notice: Notice) -> str:
    since = f"since {iso(notice.since_us)}" if notice.kind != "resolved" else "now resolved"
    return f"{title(notice)}\n{notice.summary} ({since})"


def slack_escape(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def message_id(notice: Notice) -> str:
    return "msg_" + hashlib.sha256(notice.key.encode()).hexdigest()[:32]


class _Http:
    def __init__(self, transport: Any) -> None:
        self.client = httpx.Client(transport=transport or DeadlineTransport(DEADLINE))

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> httpx.Response:
        try:
            return self.client.post(url, content=body, headers=dict(headers), timeout=DEADLINE)
        except (httpx.HTTPError, RuntimeError) as exc:  # RuntimeError: closed while stopping
            raise NotifyError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self.client.close()


class SlackNotifier(_Http):
    def __init__(self, config: SlackChannel, transport: Any = None) -> None:
        super().__init__(transport)
        self.url = config.url

    def send(self, notice: Notice) -> None:
        icon = ":white_check_mark:" if notice.kind == "resolved" else ":rotating_light:"
        body = orjson.dumps({"text": f"{icon} {slack_escape(text(notice))}"})
        response = self.post(self.url, body, {"content-type": "application/json"})
        if response.status_code != 200:
            answer = response.text.strip()[:200] or response.reason_phrase
            raise NotifyError(f"Slack answered HTTP {response.status_code}: {answer}")


class WebhookNotifier(_Http):
    def __init__(self, config: WebhookChannel, transport: Any = None) -> None:
        super().__init__(transport)
        self.url, self.secret = config.url, config.secret

    def send(self, notice: Notice) -> None:
        now = epoch_seconds()
        body = orjson.dumps(
            {
                "type": f"alert.{notice.kind}",
                "timestamp": iso(int(now * 1e6)),
                "data": {
                    "alert": notice.rule,
                    "destination": notice.destination,
                    "severity": notice.severity,
                    "since": iso(notice.since_us),
                    "summary": notice.summary,
                    "value": notice.value,
                },
            }
        )
        msg_id = message_id(notice)
        headers = standard_webhooks.headers(self.secret, msg_id, int(now), body)
        response = self.post(self.url, body, {"content-type": "application/json", **headers})
        if not 200 <= response.status_code < 300:
            answer = response.text.strip()[:200] or response.reason_phrase
            raise NotifyError(f"the webhook answered HTTP {response.status_code}: {answer}")


class EmailNotifier:
    def __init__(self, config: EmailChannel, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.context = ssl_context or ssl.create_default_context()

    def message(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = title(notice)
        msg["From"] = self.config.sender
        msg["To"] = ", ".join(self.config.to)
        msg["Date"] = format_datetime(system_now())
        msg["Message-ID"] = make_msgid(domain=self.config.sender.rpartition("@")[2])
        msg.set_content(text(notice) + "\n")
        return msg

    def send(self, notice: Notice) -> None:
        c = self.config
        try:
            smtp: smtplib.SMTP
            if c.security == "tls":
                smtp = smtplib.SMTP_SSL(c.host, c.smtp_port, timeout=DEADLINE, context=self.context)
            else:
                smtp = smtplib.SMTP(c.host, c.smtp_port, timeout=DEADLINE)
            with smtp:
                smtp.ehlo()
                if c.security == "starttls":
                    smtp.starttls(context=self.context)  # raises when it is not offered
                    smtp.ehlo()
                if c.username:
                    smtp.login(c.username, c.password or "")
                refused = smtp.send_message(self.message(notice))
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"SMTP {c.host}:{c.smtp_port}: {type(exc).__name__}: {exc}") from exc
        if refused:  # the others have it: sending again would repeat it to them
            log.warning("SMTP %s refused %s", c.host, ", ".join(sorted(refused)))

    def close(self) -> None:
        pass


def notifier(channel: AlertChannelSettings, transport: Any = None) -> Notifier:
    config = channel.config
    if isinstance(config, SlackChannel):
        return SlackNotifier(config, transport)
    if isinstance(config, WebhookChannel):
        return WebhookNotifier(config, transport)
    if isinstance(config, EmailChannel):
        return EmailNotifier(config)
    raise AssertionError(f"unknown channel type {channel.type}")
