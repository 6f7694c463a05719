"""Versioned schema migrations, shared by every store adapter.

Each migration is a list of statements; ``{text}``, ``{blob}``, ``{bigint}``, ``{serial}``
and ``{without_rowid}`` are filled in per dialect; a ``(dialect, statement)`` pair runs on
that dialect only. Migrations only ever append: never edit one that has shipped; add the next.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tactful.store.dialect import POSTGRESQL, SQLITE

DIALECT_TYPES = {
    "sqlite": {
        "text": SQLITE.text,
        "blob": "BLOB",
        "bigint": "INTEGER",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "without_rowid": "WITHOUT ROWID",
    },
    "postgresql": {
        "text": POSTGRESQL.text,  # compared bytewise, as on SQLite
        "blob": "BYTEA",
        "bigint": "BIGINT",
        "serial": "BIGSERIAL PRIMARY KEY",
        "without_rowid": "",
    },
}

Statement = str | tuple[str, str]  # SQL, or (dialect, SQL) for one dialect only

MIGRATIONS: list[tuple[int, str, list[Statement]]] = [
    (
        1,
        "initial schema",
        [
            "CREATE TABLE meta (key {text} PRIMARY KEY, value {text} NOT NULL)",
            """CREATE TABLE documents (
                id {serial},
                sha256 {text} NOT NULL UNIQUE,
                source {text} NOT NULL,
                received_us {bigint} NOT NULL,
                encoding {text} NOT NULL,
                body {blob} NOT NULL)""",
            """CREATE TABLE events (
                seq {serial},
                key {text} NOT NULL UNIQUE,
                kind {text} NOT NULL,
                at_us {bigint} NOT NULL,
                source {text} NOT NULL,
                received_us {bigint} NOT NULL,
                document_id {bigint},
                canonical {blob} NOT NULL)""",
            """CREATE TABLE persons (
                person_id {text} PRIMARY KEY,
                facts {blob},
                state {blob},
                support_state {text} NOT NULL DEFAULT 'clear',
                created_us {bigint} NOT NULL)""",
            "CREATE INDEX persons_support_state ON persons (support_state)",
            """CREATE TABLE person_aliases (
                old_id {text} PRIMARY KEY, person_id {text} NOT NULL)""",
            """CREATE TABLE identifiers (
                kind {text} NOT NULL, value {text} NOT NULL, person_id {text} NOT NULL,
                PRIMARY KEY (kind, value, person_id))""",
            "CREATE INDEX identifiers_person ON identifiers (person_id)",
            """CREATE TABLE tickets (
                ticket_id {bigint} PRIMARY KEY, person_id {text} NOT NULL,
                record {blob} NOT NULL)""",
            "CREATE INDEX tickets_person ON tickets (person_id)",
            """CREATE TABLE memberships (
                segment {text} NOT NULL, person_id {text} NOT NULL,
                since_us {bigint} NOT NULL, false_since_us {bigint}, holdout INTEGER NOT NULL,
                PRIMARY KEY (segment, person_id))""",
            "CREATE INDEX memberships_person ON memberships (person_id)",
            """CREATE TABLE membership_history (
                id {serial}, person_id {text} NOT NULL, segment {text} NOT NULL,
                change {text} NOT NULL, at_us {bigint} NOT NULL, rule {text} NOT NULL,
                holdout INTEGER NOT NULL, detail {text} NOT NULL)""",
            "CREATE INDEX membership_history_person ON membership_history (person_id, at_us)",
            "CREATE INDEX membership_history_segment ON membership_history (segment, at_us)",
            """CREATE TABLE state_changes (
                id {serial}, person_id {text} NOT NULL, at_us {bigint} NOT NULL,
                old_state {text}, new_state {text} NOT NULL, changed {text} NOT NULL)""",
            "CREATE INDEX state_changes_at ON state_changes (at_us)",
            "CREATE INDEX state_changes_person ON state_changes (person_id, at_us)",
            """CREATE TABLE timers (
                person_id {text} PRIMARY KEY, due_us {bigint} NOT NULL)""",
            "CREATE INDEX timers_due ON timers (due_us)",
            """CREATE TABLE outbox (
                id {serial}, person_id {text} NOT NULL, topic {text} NOT NULL,
                at_us {bigint} NOT NULL, payload {blob} NOT NULL,
                created_us {bigint} NOT NULL)""",
            "CREATE INDEX outbox_person ON outbox (person_id, id)",
        ],
    ),
]

MIGRATIONS.append(
    (
        2,
        "deliveries, attempts and the audience ledger",
        [
            """CREATE TABLE deliveries (
                id {serial}, destination {text} NOT NULL, person_id {text} NOT NULL,
                kind {text} NOT NULL, name {text} NOT NULL, segment {text},
                key {text} NOT NULL, at_us {bigint} NOT NULL, payload {blob} NOT NULL,
                status {text} NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
                next_us {bigint} NOT NULL, created_us {bigint} NOT NULL,
                updated_us {bigint} NOT NULL, last_error {text} NOT NULL DEFAULT '')""",
            "CREATE UNIQUE INDEX deliveries_key ON deliveries (destination, key)",
            "CREATE INDEX deliveries_due ON deliveries (destination, status, id)",
            "CREATE INDEX deliveries_person ON deliveries (destination, person_id, id)",
            """CREATE TABLE delivery_attempts (
                id {serial}, delivery_id {bigint} NOT NULL, at_us {bigint} NOT NULL,
                outcome {text} NOT NULL, status INTEGER, error {text} NOT NULL)""",
            "CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id)",
            """CREATE TABLE audience_ledger (
                destination {text} NOT NULL, person_id {text} NOT NULL, added_us {bigint} NOT NULL,
                PRIMARY KEY (destination, person_id))""",
        ],
    )
)

MIGRATIONS.append(
    (
        3,
        "erasure proofs",
        [
            """CREATE TABLE erasures (
                id {serial}, person_id {text} NOT NULL, at_us {bigint} NOT NULL,
                erased_us {bigint} NOT NULL, identifiers_sha256 {text} NOT NULL,
                requested_by {text} NOT NULL, events_deleted INTEGER NOT NULL,
                documents_deleted INTEGER NOT NULL, documents_redacted INTEGER NOT NULL)""",
        ],
    )
)

MIGRATIONS.append(
    (
        4,
        "outcomes (orders, unsubscribes, complaints, re-contacts)",
        [
            """CREATE TABLE outcomes (
                key {text} PRIMARY KEY, person_id {text} NOT NULL, at_us {bigint} NOT NULL,
                outcome {text} NOT NULL, amount DOUBLE PRECISION, currency {text},
                properties {blob} NOT NULL)""",
            "CREATE INDEX outcomes_person ON outcomes (person_id, at_us)",
            "CREATE INDEX outcomes_kind ON outcomes (outcome, at_us)",
        ],
    )
)

MIGRATIONS.append(
    (
        5,
        "agent actions from the Zendesk sidebar",
        [
            """CREATE TABLE agent_actions (
                id {serial}, idempotency_key {text} NOT NULL UNIQUE, at_us {bigint} NOT NULL,
                agent {text} NOT NULL, account {text} NOT NULL, person_id {text},
                email {text} NOT NULL, action {text} NOT NULL, params {text} NOT NULL,
                status {text} NOT NULL, result {text} NOT NULL DEFAULT '',
                updated_us {bigint} NOT NULL)""",
            "CREATE INDEX agent_actions_person ON agent_actions (person_id, at_us)",
        ],
    )
)

MIGRATIONS.append(
    (
        6,
        "outbox rows marked when routed (several processes commit out of id order)",
        [
            "ALTER TABLE outbox ADD COLUMN routed INTEGER NOT NULL DEFAULT 0",
            "UPDATE outbox SET routed = 1 WHERE id <= COALESCE((SELECT CAST(value AS {bigint}) "
            "FROM meta WHERE key = 'outbox_routed_until'), 0)",
            "CREATE INDEX outbox_unrouted ON outbox (id) WHERE routed = 0",
        ],
    )
)

MIGRATIONS.append(
    (
        7,
        "full reconcile reads: memberships clustered by (segment, person), consents table",
        [
            # SQLite: the membership rows live in their primary key's B-tree, so paging a
            # segment's members (with their holdout) reads one index, not index + table.
            (
                "sqlite",
                """CREATE TABLE memberships_v7 (
                segment {text} NOT NULL, person_id {text} NOT NULL,
                since_us INTEGER NOT NULL, false_since_us INTEGER, holdout INTEGER NOT NULL,
                PRIMARY KEY (segment, person_id)) WITHOUT ROWID""",
            ),
            (
                "sqlite",
                "INSERT INTO memberships_v7 (segment, person_id, since_us, false_since_us, "
                "holdout) SELECT segment, person_id, since_us, false_since_us, holdout "
                "FROM memberships",
            ),
            ("sqlite", "DROP TABLE memberships"),
            ("sqlite", "ALTER TABLE memberships_v7 RENAME TO memberships"),
            ("sqlite", "CREATE INDEX memberships_person ON memberships (person_id)"),
            # Each person's latest stated consent per purpose, kept with the person's facts
            # (the facts stay the source of truth): a reconcile joins members to it.
            """CREATE TABLE consents (
                person_id {text} NOT NULL, purpose {text} NOT NULL, granted INTEGER NOT NULL,
                PRIMARY KEY (person_id, purpose)) {without_rowid}""",
            (
                "sqlite",
                "INSERT INTO consents (person_id, purpose, granted) "
                "SELECT p.person_id, c.key, CASE WHEN json_extract(c.value, '$[2]') "
                "THEN 1 ELSE 0 END FROM persons p, json_each(CAST(p.facts AS TEXT), "
                "'$.consent') c WHERE c.type = 'array'",
            ),
            (
                "postgresql",
                "INSERT INTO consents (person_id, purpose, granted) "
                "SELECT p.person_id, c.key, CASE WHEN (c.value ->> 2)::boolean "
                "THEN 1 ELSE 0 END FROM persons p, "
                "jsonb_each(convert_from(p.facts, 'UTF8')::jsonb -> 'consent') c "
                "WHERE jsonb_typeof(c.value) = 'array'",
            ),
        ],
    )
)

MIGRATIONS.append(
    (
        8,
        "each person's timer is a column of the person (no timers table)",
        [
            # A tick loads and saves each due person: with the timer in the person's own row
            # it reads and rewrites one row instead of two (plus the timers table's key index).
            "ALTER TABLE persons ADD COLUMN wake_us {bigint}",
            (
                "sqlite",
                "UPDATE persons SET wake_us = (SELECT t.due_us FROM timers t "
                "WHERE t.person_id = persons.person_id)",
            ),
            (
                "postgresql",
                "UPDATE persons p SET wake_us = t.due_us FROM timers t "
                "WHERE t.person_id = p.person_id",
            ),
            "CREATE INDEX persons_wake ON persons (wake_us) WHERE wake_us IS NOT NULL",
            "DROP TABLE timers",
        ],
    )
)

MIGRATIONS.append(
    (
        9,
        "SQLite: persons per support state kept in state_counts (no support_state index)",
        [
            # The index on persons (support_state) served only the dashboard's counts, yet
            # every change of state rewrote two of its pages, at random places among all the
            # persons: a tick among 1M persons wrote as many pages to it as to the persons
            # table. On SQLite (one writer at a time) the counts are kept instead: the store
            # adds each batch's changes (``SqlTx.save_persons``), and a trigger takes out the
            # persons deleted (merged, erased, replayed), which are rare. On PostgreSQL the
            # index stays: one counter row per state, written by every process's
            # transactions, would make them wait for each other.
            ("sqlite", "DROP INDEX persons_support_state"),
            (
                "sqlite",
                """CREATE TABLE state_counts (
                support_state {text} PRIMARY KEY, persons INTEGER NOT NULL) WITHOUT ROWID""",
            ),
            (
                "sqlite",
                "INSERT INTO state_counts (support_state, persons) "
                "SELECT support_state, COUNT(*) FROM persons GROUP BY support_state",
            ),
            (
                "sqlite",
                """CREATE TRIGGER persons_uncounted AFTER DELETE ON persons BEGIN
                UPDATE state_counts SET persons = persons - 1
                WHERE support_state = OLD.support_state;
                END""",
            ),
        ],
    )
)


def _json_field(dialect: str, path: str) -> str:
    """SQL for the text or number at ``path`` (dotted) in an event's canonical JSON."""
    if dialect == "sqlite":
        return f"json_extract(CAST(e.canonical AS TEXT), '$.{path}')"
    *parents, last = path.split(".")
    steps = "".join(f" -> '{p}'" for p in parents)
    return f"(convert_from(e.canonical, 'UTF8')::jsonb{steps} ->> '{last}')"


def _backfill_events(dialect: str) -> list[Statement]:
    """Index the events already stored by the exact keys they carry: a ticket id, a Zendesk
    user id (joined to the ``identifiers`` rows), or a person identifier in the form the
    store keeps it (``tactful replay`` indexes every event, whatever its form)."""

    def j(path: str) -> str:
        return _json_field(dialect, path)

    user_id = f"COALESCE({j('requester_id')}, {j('zendesk_user_id')}, {j('target_user_id')})"
    kind, value = j("person.kind"), j("person.value")
    person_value = f"CASE WHEN {kind} = 'email' THEN lower(trim({value})) ELSE trim({value}) END"
    insert = "INSERT INTO event_persons (person_id, event_key) SELECT DISTINCT"
    return [
        (
            dialect,
            f"INSERT INTO event_tickets (ticket_id, event_key) SELECT DISTINCT "
            f"CAST({j('ticket_id')} AS {{bigint}}), e.key FROM events e WHERE e.kind IN "
            f"('ticket_version', 'ticket_status_changed', 'rating_given') "
            f"AND {j('ticket_id')} IS NOT NULL",
        ),
        (
            dialect,
            f"{insert} i.person_id, e.key FROM events e JOIN identifiers i "
            f"ON i.kind = 'zendesk_user_id' AND i.value = CAST({user_id} AS TEXT) "
            "WHERE true ON CONFLICT DO NOTHING",
        ),
        (
            dialect,
            f"{insert} i.person_id, e.key FROM events e JOIN identifiers i ON i.kind = {kind} "
            f"AND i.value = {person_value} WHERE true ON CONFLICT DO NOTHING",
        ),
        (
            dialect,
            f"{insert} p.person_id, e.key FROM events e JOIN persons p ON {kind} = 'person_id' "
            f"AND p.person_id = {value} WHERE true ON CONFLICT DO NOTHING",
        ),
    ]


MIGRATIONS.append(
    (
        10,
        "events indexed by person and ticket (erasure by exact keys); keyed erasure proofs",
        [
            # Which events are about which person and which ticket, written as the batch
            # resolves them: erasure deletes a person's events by these keys, never by
            # matching text in the log.
            """CREATE TABLE event_persons (
                person_id {text} NOT NULL, event_key {text} NOT NULL,
                PRIMARY KEY (person_id, event_key)) {without_rowid}""",
            """CREATE TABLE event_tickets (
                ticket_id {bigint} NOT NULL, event_key {text} NOT NULL,
                PRIMARY KEY (ticket_id, event_key)) {without_rowid}""",
            *_backfill_events("sqlite"),
            *_backfill_events("postgresql"),
            # SQLite: a scratch table an erasure fills with zeros to overwrite the free pages.
            ("sqlite", "CREATE TABLE free_pages (b BLOB)"),
            # Proofs are HMACs keyed by the store's own secret (meta ``erasure_key``); the
            # earlier bare SHA-256 digests stay, marked as such.
            "ALTER TABLE erasures RENAME COLUMN identifiers_sha256 TO identifiers_proof",
            "UPDATE erasures SET identifiers_proof = 'sha256:' || identifiers_proof",
        ],
    )
)

MIGRATIONS.append(
    (
        11,
        "sync runs: every delivery round of each destination, and its attempts",
        [
            # One row per delivery round of a destination (``tactful.store.runs``): counts
            # by what happened, and the platform's own answer (JSON). Kept ``runs_keep``.
            """CREATE TABLE delivery_runs (
                id {serial},
                destination {text} NOT NULL,
                started_us {bigint} NOT NULL,
                duration_us {bigint} NOT NULL,
                added {bigint} NOT NULL DEFAULT 0,
                removed {bigint} NOT NULL DEFAULT 0,
                updated {bigint} NOT NULL DEFAULT 0,
                events {bigint} NOT NULL DEFAULT 0,
                rejected {bigint} NOT NULL DEFAULT 0,
                retried {bigint} NOT NULL DEFAULT 0,
                dead {bigint} NOT NULL DEFAULT 0,
                skipped_no_identifier {bigint} NOT NULL DEFAULT 0,
                skipped_no_consent {bigint} NOT NULL DEFAULT 0,
                skipped_holdout {bigint} NOT NULL DEFAULT 0,
                skipped_other {bigint} NOT NULL DEFAULT 0,
                error {text} NOT NULL DEFAULT '',
                platform {blob})""",
            "CREATE INDEX delivery_runs_destination ON delivery_runs (destination, id)",
            "CREATE INDEX delivery_runs_started ON delivery_runs (started_us)",
            # The attempts a run made: its row-level errors are its failed attempts.
            "ALTER TABLE delivery_attempts ADD COLUMN run_id {bigint}",
            "CREATE INDEX delivery_attempts_run ON delivery_attempts (run_id) "
            "WHERE run_id IS NOT NULL",
        ],
    )
)

MIGRATIONS.append(
    (
        12,
        "Zendesk user names, for finding people by name on the dashboard",
        [
            # The latest name of each Zendesk user (``UserSeen.name``); ``folded`` is the
            # name case-folded with its spaces collapsed, what a search compares. Persons are
            # reached through their ``zendesk_user_id`` identifiers (so merges need nothing);
            # an erasure deletes the rows of the person's Zendesk users.
            """CREATE TABLE user_names (
                zendesk_user_id {bigint} PRIMARY KEY,
                name {text} NOT NULL,
                folded {text} NOT NULL,
                at_us {bigint} NOT NULL)""",
        ],
    )
)

MIGRATIONS.append(
    (
        13,
        "inbox: webhooks acknowledged while a replay holds the store",
        [
            # PostgreSQL only: a replay never touches this table, so its inserts never wait
            # for the replay. SQLite keeps its inbox in a file beside the store
            # (``tactful.store.inbox``), outside the store's write lock.
            (
                "postgresql",
                """CREATE TABLE inbox (
                seq {serial},
                received_us {bigint} NOT NULL,
                payload {blob} NOT NULL,
                failed {text})""",
            ),
        ],
    )
)

MIGRATIONS.append(
    (
        14,
        "a replay's snapshot kept across its commits; erased keys the inbox honours",
        [
            # ``tactful replay`` commits a chunk at a time; the persons as they were before it
            # (what destinations were told) stay here until its last commit, so a replay
            # stopped half way resumes from its marker (meta ``replay``).
            """CREATE TABLE replay_before_persons (
                person_id {text} PRIMARY KEY,
                facts {blob},
                state {blob},
                created_us {bigint} NOT NULL,
                wake_us {bigint})""",
            """CREATE TABLE replay_before_memberships (
                person_id {text} NOT NULL, segment {text} NOT NULL,
                since_us {bigint} NOT NULL, false_since_us {bigint}, holdout INTEGER NOT NULL,
                PRIMARY KEY (person_id, segment))""",
            # Each identifier (and ticket) of an erased person, keyed with the store's
            # erasure secret, while requests that arrived before the erasure may still wait
            # in the inbox: applying them must not bring the person back (``Engine``).
            """CREATE TABLE erased_keys (
                digest {text} PRIMARY KEY, erased_us {bigint} NOT NULL)""",
        ],
    )
)

LATEST_VERSION = MIGRATIONS[-1][0]

# Tables whose rows belong to one person (a ``person_id`` column), derived from the event log:
# what an erasure deletes and a replay rebuilds. ``PERSON_STATE_TABLES``: the person's current
# state, which goes when the person is merged into another (history and tickets move).
PERSON_STATE_TABLES = ("persons", "memberships", "consents")
PERSON_TABLES = (
    *PERSON_STATE_TABLES,
    "identifiers",
    "event_persons",
    "tickets",
    "membership_history",
    "state_changes",
    "outbox",
    "outcomes",
)
# A replay's snapshot of persons (migration 14): personal data too, erased with the person.
REPLAY_SNAPSHOT_TABLES = ("replay_before_persons", "replay_before_memberships")


def newer_schema(version: int) -> str:
    """Why a store whose schema is newer than this code's is not opened."""
    return (
        f"the store is at schema version {version}, newer than this Tactful knows "
        f"({LATEST_VERSION}): a newer Tactful migrated it; upgrade this installation too"
    )


MIGRATION_LOCK = 0x7AC7F17  # advisory lock key: one migrator at a time (PostgreSQL)


def statements(dialect: str, migration: list[Statement]) -> list[str]:
    """The migration's SQL for one dialect."""
    types = DIALECT_TYPES[dialect]
    return [
        (item if isinstance(item, str) else item[1]).format(**types)
        for item in migration
        if isinstance(item, str) or item[0] == dialect
    ]


def migrate(
    dialect: str,
    current_version: int,
    execute: Callable[[str], Any],
    record: Callable[[int, str], Any],
) -> list[int]:
    """Apply every migration newer than ``current_version``; return the versions applied.

    The caller runs this inside one transaction per migration (``execute`` + ``record``).
    """
    applied: list[int] = []
    for version, description, migration in MIGRATIONS:
        if version <= current_version:
            continue
        for sql in statements(dialect, migration):
            execute(sql)
        record(version, description)
        applied.append(version)
    return applied
