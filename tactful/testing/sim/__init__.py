"""A faithful fake Zendesk for tests and ``make demo``.

- ``ZendeskSimulator``: in-memory account on a simulated clock, with story operations
  (``create_user``, ``create_ticket``, ``update_ticket``, ``solve``, ``reopen``,
  ``merge_tickets``, ``delete_ticket``, ``rate``, ``merge_users``, ``delete_user``,
  ``advance``) and ``sim.app``: the Zendesk API paths Tactful uses (exports, users, tickets,
  tags, webhooks, triggers) with auth, rate limits and injected faults.
- ``WebhookSender`` / ``senders_from_api``: what Zendesk POSTs for each change (signed,
  retried like Zendesk).
- ``run_in_thread(app)``: serve any ASGI app on 127.0.0.1 in a thread.
"""

from tactful.testing.sim.model import Activity, SimClock
from tactful.testing.sim.payloads import RECOMMENDED_CONDITIONS, RECOMMENDED_TRIGGER_BODY
from tactful.testing.sim.server import run_in_thread
from tactful.testing.sim.state import ZendeskSimulator
from tactful.testing.sim.webhooks import Delivery, WebhookSender, senders_from_api

__all__ = [
    "RECOMMENDED_CONDITIONS",
    "RECOMMENDED_TRIGGER_BODY",
    "Activity",
    "Delivery",
    "SimClock",
    "WebhookSender",
    "ZendeskSimulator",
    "run_in_thread",
    "senders_from_api",
]
