"""Realistic generated Zendesk exports for a skincare DTC brand (demo and benchmark data).

``generate_exports(out_dir, persons=N)`` writes what a Zendesk account would return from its
export endpoints, page by page, in Zendesk's own JSON shapes (field sets copied from real
recorded API responses: incremental ticket and user cursor pages, ticket audits):

- ``users-0001.json`` …: ``/api/v2/incremental/users/cursor.json`` pages (≤1000 users).
- ``tickets-0001.json`` …: ``/api/v2/incremental/tickets/cursor.json`` pages (≤1000 tickets,
  ordered by ``updated_at``), each ticket once.
- ``tickets-updates-0001.json`` …: a later export run that repeats some tickets at a later
  ``updated_at`` with a new status (reopened, solved, closed): ticket versions.
- ``ticket-events-0001.json`` …: ``/api/v2/incremental/ticket_events.json`` pages: one
  ``Audit`` per status change with ``Create`` / ``Change`` / ``Comment`` child events.
- ``satisfaction-ratings-0001.json`` …: ``/api/v2/satisfaction_ratings`` pages (≤100).

The story: customers write about refunds and chargebacks, irritation and allergic reactions,
wrong or damaged items, shipping delays, subscriptions and billing, and how to use products.
Tickets go new → open → (pending/hold) → solved → closed (by automation four days later);
some are reopened, a few are merged into an earlier ticket (closed, tag ``closed_by_merge``)
or deleted. Reasons drift the way they do in real accounts: a ticket may carry a reason tag,
a contact-reason custom field value, a keyword in its subject, all of them or none.

Users: most have an email; some only a phone (national or E.164 format); some an external
id; a few are deleted (``active: false``, identifiers scrubbed); a few persons have a second
user id with the same email (other capitalisation). ``user_fields`` carries marketing
consent for some users.

Generation is deterministic in ``seed`` and runs per chunk of persons, so memory stays flat
in ``persons``: records of a chunk are sorted and spilled to run files, and the pages are
written by merging the runs (an external merge sort).
"""

from __future__ import annotations

from tactful.testing.sample.cli import main
from tactful.testing.sample.constants import (
    BASE_URL,
    DEFAULT_START,
    ORDER_FIELD_ID,
    PAGE_SIZE,
    RATING_STEM,
    RATINGS_PAGE_SIZE,
    REASON_FIELD_ID,
    SUBDOMAIN,
    TICKET_EVENT_STEM,
    TICKET_STEM,
    TICKET_UPDATE_STEM,
    USER_STEM,
)
from tactful.testing.sample.exports import CHUNK_PERSONS, MAX_OPEN_RUNS, generate_exports
from tactful.testing.sample.model import SampleFiles

__all__ = [
    "BASE_URL",
    "CHUNK_PERSONS",
    "DEFAULT_START",
    "MAX_OPEN_RUNS",
    "ORDER_FIELD_ID",
    "PAGE_SIZE",
    "RATINGS_PAGE_SIZE",
    "RATING_STEM",
    "REASON_FIELD_ID",
    "SUBDOMAIN",
    "TICKET_EVENT_STEM",
    "TICKET_STEM",
    "TICKET_UPDATE_STEM",
    "USER_STEM",
    "SampleFiles",
    "generate_exports",
    "main",
]
