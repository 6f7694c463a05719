"""Webhook delivery from the simulator, the way Zendesk sends and retries.

``WebhookSender(target_url, secret, sim=…, mode="events"|"trigger"|"both")`` turns the
simulator's activities into deliveries — envelopes for each ticket/user event, trigger bodies
for each ticket create/update the trigger conditions match — and ``deliver_pending()`` POSTs
them synchronously (httpx) with Zendesk's headers: ``X-Zendesk-Webhook-Signature``
(base64 HMAC-SHA256 of timestamp + body), ``X-Zendesk-Webhook-Signature-Timestamp`` (ISO
8601 of the real send time: the only wall-clock read of the simulator),
``X-Zendesk-Webhook-Invocation-Id``, ``X-Zendesk-Webhook-Id``, ``X-Zendesk-Account-Id``,
``Content-Type: application/json; charset=utf-8``, ``User-Agent: Zendesk Webhook``.

Retries follow Zendesk's documented policy: 409 up to 3 more times; 429 and 503 only when
``Retry-After`` is under 60 seconds (waiting that long); timeouts (12 s) up to 5 more
times; anything else fails. Retries keep the invocation id and body (re-signed per attempt).
``senders_from_api(sim)`` builds one sender per webhook registered through the API.
Fault injection: ``drop_next``, ``duplicate_next``, ``reorder_pending``.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import httpx

from tactful.clock import system_now
from tactful.testing.sim.admin import TRIGGER_EVENTS
from tactful.testing.sim.model import Activity, Json
from tactful.testing.sim.payloads import conditions_match, envelope, envelope_bytes, render
from tactful.testing.sim.state import ZendeskSimulator
from tactful.zendesk.signing import INVOCATION_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign

Mode = Literal["events", "trigger", "both"]
TIMEOUT_SECONDS = 12.0


@dataclass
class Attempt:
    status: int | None  # None: no answer (timeout or connection error)
    error: str | None
    sent_at: datetime


@dataclass
class Delivery:
    invocation_id: str
    body: bytes
    source: str  # event type, or "trigger:<id>"
    activity_seq: int
    state: Literal["pending", "delivered", "failed", "dropped"] = "pending"
    attempts: list[Attempt] = field(default_factory=list)


class WebhookSender:
    def __init__(
        self,
        target_url: str,
        secret: str,
        *,
        sim: ZendeskSimulator | None = None,
        mode: Mode = "events",
        event_types: Collection[str] | None = None,
        trigger_body: str | None = None,
        trigger_conditions: Json | None = None,
        webhook_id: str = "01SIMWEBHOOK00000000000000",
        client: httpx.Client | None = None,
        timeout: float = TIMEOUT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        backoff_seconds: float = 0.5,
    ) -> None:
        from tactful.testing.sim.payloads import RECOMMENDED_TRIGGER_BODY

        self.target_url = target_url
        self.secret = secret
        self.sim = sim
        self.mode = mode
        self.event_types = None if event_types is None else {e.split(":")[-1] for e in event_types}
        self.trigger_body = trigger_body or RECOMMENDED_TRIGGER_BODY
        self.trigger_conditions = trigger_conditions
        self.webhook_id = webhook_id
        self.client = client or httpx.Client(timeout=timeout)
        self.sleep = sleep
        self.backoff_seconds = backoff_seconds
        self.pending: list[Delivery] = []
        self.deliveries: list[Delivery] = []
        self._seen = 0
        self._drop = 0
        self._duplicate = 0
        self._ids = random.Random(webhook_id)

    # -- building deliveries

    def _new_id(self) -> str:
        alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
        return "01" + "".join(self._ids.choice(alphabet) for _ in range(24))

    def enqueue(self, body: bytes, source: str = "manual", activity_seq: int = 0) -> Delivery:
        delivery = Delivery(self._new_id(), body, source, activity_seq)
        self.pending.append(delivery)
        self.deliveries.append(delivery)
        return delivery

    def _registered(self) -> Json | None:
        return self.sim.webhooks.get(self.webhook_id) if self.sim else None

    def _templates(self, seq: int) -> list[tuple[str, Json | None, str]]:
        """(source, conditions, body template) of the triggers that notify this webhook."""
        hook = self._registered()
        if self.sim is None or hook is None:
            return [("trigger:sim", self.trigger_conditions, self.trigger_body)]
        found = []
        for trig in sorted(self.sim.triggers.values(), key=lambda t: (t["position"], t["id"])):
            if not trig["active"] or self.sim.since.get(str(trig["id"]), 0) >= seq:
                continue
            for action in trig["actions"]:
                value = action.get("value") if isinstance(action, dict) else None
                if isinstance(value, list) and str(value[0]) == self.webhook_id:
                    found.append((f"trigger:{trig['id']}", trig["conditions"], str(value[1])))
        return found

    def _from_activity(self, activity: Activity) -> None:
        assert self.sim is not None
        if self.mode in ("events", "both"):
            for event_type, event in activity.events:
                if self.event_types is None or event_type in self.event_types:
                    uid = self.sim.new_uuid()
                    doc = envelope(activity, event_type, event, self.sim.account_id, uid)
                    self.enqueue(envelope_bytes(doc), event_type, activity.seq)
        if self.mode in ("trigger", "both"):
            for source, conditions, template in self._templates(activity.seq):
                if conditions_match(conditions, activity):
                    body = render(template, activity, self.sim.subdomain).encode()
                    self.enqueue(body, source, activity.seq)

    def collect(self) -> int:
        """Queue deliveries for the simulator's activities not seen yet; returns how many."""
        if self.sim is None:
            return 0
        before = len(self.pending)
        hook = self._registered()
        with self.sim.lock:
            new = self.sim.activities[self._seen :]
            self._seen = len(self.sim.activities)
            if hook is None or hook["status"] == "active":
                for activity in new:
                    self._from_activity(activity)
        return len(self.pending) - before

    def skip_to(self, seen: int) -> None:
        """Report only activities after the first ``seen`` ones."""
        self._seen = seen

    # -- fault injection

    def drop_next(self, n: int = 1) -> None:
        """The next ``n`` deliveries are lost (never sent)."""
        self._drop += n

    def duplicate_next(self, n: int = 1) -> None:
        """The next ``n`` deliveries are sent twice (same invocation id and body)."""
        self._duplicate += n

    def reorder_pending(
        self, how: Literal["reverse", "shuffle"] = "reverse", seed: int = 0
    ) -> None:
        self.collect()
        if how == "reverse":
            self.pending.reverse()
        else:
            random.Random(seed).shuffle(self.pending)

    # -- sending

    def _target(self) -> tuple[str, str]:
        hook = self._registered()
        if hook is None or self.sim is None:
            return self.target_url, self.secret
        return hook["endpoint"], self.sim.signing_secrets.get(self.webhook_id, self.secret)

    def _attempt(self, delivery: Delivery) -> httpx.Response | None:
        url, secret = self._target()
        sent_at = system_now()
        stamp = sent_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        headers = {
            SIGNATURE_HEADER: sign(secret, stamp, delivery.body),
            TIMESTAMP_HEADER: stamp,
            INVOCATION_HEADER: delivery.invocation_id,
            "X-Zendesk-Webhook-Id": self.webhook_id,
            "X-Zendesk-Account-Id": str(self.sim.account_id if self.sim else 0),
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "Zendesk Webhook",
        }
        try:
            response = self.client.post(url, content=delivery.body, headers=headers)
        except httpx.TimeoutException as e:
            delivery.attempts.append(Attempt(None, f"timeout: {e}", sent_at))
            return None
        except httpx.TransportError as e:
            delivery.attempts.append(Attempt(None, f"connection: {e}", sent_at))
            return None
        delivery.attempts.append(Attempt(response.status_code, None, sent_at))
        return response

    def _send(self, delivery: Delivery) -> None:
        conflicts = throttles = timeouts = 0
        while True:
            response = self._attempt(delivery)
            if response is not None and 200 <= response.status_code < 300:
                delivery.state = "delivered"
                return
            if response is None:
                timeouts += 1
                if timeouts > 5:
                    break
                self.sleep(self.backoff_seconds * 2 ** (timeouts - 1))
            elif response.status_code == 409:
                conflicts += 1
                if conflicts > 3:
                    break
                self.sleep(self.backoff_seconds * 2 ** (conflicts - 1))
            elif response.status_code in (429, 503):
                wait = response.headers.get("retry-after", "")
                throttles += 1
                if not wait.isdigit() or int(wait) >= 60 or throttles > 3:
                    break
                self.sleep(float(wait))
            else:
                break
        delivery.state = "failed"

    def deliver_pending(self) -> list[Delivery]:
        """Send every queued delivery in order; returns them (see ``state`` and ``attempts``)."""
        self.collect()
        batch, self.pending = self.pending, []
        for delivery in batch:
            if self._drop > 0:
                self._drop -= 1
                delivery.state = "dropped"
                continue
            self._send(delivery)
            if self._duplicate > 0:
                self._duplicate -= 1
                self._send(delivery)
        return batch

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> WebhookSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def senders_from_api(
    sim: ZendeskSimulator,
    *,
    client: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    backoff_seconds: float = 0.5,
) -> list[WebhookSender]:
    """One sender per webhook created through the simulator's Webhooks API; each reports
    the activity after its webhook was created (trigger-connected ones: after the trigger)."""
    senders = []
    with sim.lock:
        for hook_id, hook in sim.webhooks.items():
            triggers = hook["subscriptions"] == [TRIGGER_EVENTS]
            sender = WebhookSender(
                hook["endpoint"], sim.signing_secrets[hook_id], sim=sim, webhook_id=hook_id,
                mode="trigger" if triggers else "events",
                event_types=None if triggers else hook["subscriptions"], client=client,
                sleep=sleep, backoff_seconds=backoff_seconds,
            )  # fmt: skip
            sender.skip_to(sim.since.get(hook_id, 0))
            senders.append(sender)
    return senders
