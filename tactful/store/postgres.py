"""PostgreSQL store: the shared SQL (``tactful.store.sql``, written with the ``POSTGRESQL``
dialect), for several processes.

``[store] url = "postgresql://user:pass@host:5432/db?pool_size=10"`` (psycopg 3 with a
connection pool; ``pool_size`` and ``max_key_locks`` are ours and are removed before
connecting).

Several ``serve`` / ``import`` processes may share one database:

- A batch first locks the identifiers and tickets its events name, then the persons they
  resolve to (``pg_advisory_xact_lock``, in one sorted order), so two processes never fold
  the same person at once: events are applied once (the event key is unique) and in
  per-person order. Locks end with the transaction; a crashed process holds none.
- A batch naming more than ``max_key_locks`` keys (URL parameter, default 1000: a bulk import
  batch) locks the whole store instead, exclusively, for its transaction; every other batch
  and tick holds that whole-store lock shared before its own keys. PostgreSQL's lock table is
  small (``max_locks_per_transaction`` × connections, 6,400 slots by default): one lock per
  key of a 20,000-event batch would exhaust it ("out of shared memory").
- An import folding on several worker processes (``hold``) holds the whole store for the
  import, exclusively, on a session lock of the importing process: its workers' batches share
  no person, identifier or ticket (``tactful.engine.components``), so they fold at once and
  take no lock of their own; every other writer waits until the import ends. A worker first
  checks that the importing process still holds the store (``pg_locks``), and refuses to
  fold otherwise (the importing process died: its session, and the lock, are gone).
- Due timers are claimed, not waited for: ``FOR UPDATE SKIP LOCKED`` on rows whose person
  this transaction could lock without waiting (``pg_try_advisory_xact_lock``).
- Background work that must run in one place at a time (routing the outbox, sending to one
  destination, fetching unparsed tickets) is claimed with a session advisory lock on a
  dedicated connection (``claim``): whoever holds it works, the others skip; a killed process
  loses its claims at once, so another takes over on its next round. No leader, no
  coordination service.
- Deadlocks (rare: identity changed between lookup and lock) and serialization failures
  raise ``StoreConflict``; the engine retries the whole batch.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tactful.clock import now_us
from tactful.store import records
from tactful.store.base import REPLAY_KEY, EventRow, StoreConflict, StoreError
from tactful.store.dialect import POSTGRESQL
from tactful.store.inbox import PgInbox
from tactful.store.migrations import LATEST_VERSION, MIGRATION_LOCK, migrate, newer_schema
from tactful.store.postgres_rows import ArrayRows
from tactful.store.sql import (
    PERSON_COLUMNS,
    PERSON_UPSERT,
    SqlQueries,
    SqlTx,
    chunks,
    first_new,
)

try:
    import psycopg
    from psycopg import errors as pg_errors
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError:  # pragma: no cover - depends on the install
    psycopg = None  # type: ignore[assignment]


class _NoRows:
    rowcount = 0

    def fetchone(self) -> None:
        return None

    def fetchall(self) -> list[Any]:
        return []

    def __iter__(self) -> Iterator[Any]:
        return iter(())


class PgConn:
    """A psycopg connection with the sqlite3 connection's ``execute`` and ``executemany``
    (each on a new cursor). Statements come written for PostgreSQL (``POSTGRESQL``
    dialect) and go to psycopg as they are."""

    def __init__(self, conn: Any) -> None:
        self.raw = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self.raw.cursor()
        cur.execute(sql, params or None)
        return cur

    def executemany(self, sql: str, params: Iterable[Sequence[Any]]) -> Any:
        rows = list(params)
        if not rows:
            return _NoRows()
        cur = self.raw.cursor()
        cur.executemany(sql, rows)
        return cur


def _explain(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if psycopg is not None:
        if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
            return f"{text} (the database is read-only — a standby? nothing was written)"
        if isinstance(exc, pg_errors.DiskFull):
            return f"{text} (the database server's disk is full: nothing was written)"
    return text


def _conflict(exc: BaseException) -> bool:
    return psycopg is not None and isinstance(
        exc, pg_errors.DeadlockDetected | pg_errors.SerializationFailure
    )


REPLAY_LOCK = 0x7AC7F19  # session advisory lock: exclusive while a replay runs
WHOLE_STORE_LOCK = 0x7AC7F18  # advisory lock key: shared by batches, exclusive for bulk ones
MAX_KEY_LOCKS = 1000


# Backend pid of the session that holds the store for an import (``PostgresStore.hold``),
# by connection string: set in the importing process, and so in the workers it forks.
_holders: dict[str, int] = {}

HELD_SQL = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND pid = %s AND "
    "granted AND mode = 'ExclusiveLock' AND classid = 0 AND objid = %s AND objsubid = 1 "
    "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
)


class PgTx(ArrayRows, SqlTx):
    dialect = POSTGRESQL
    locking = True

    def __init__(
        self, conn: PgConn, max_key_locks: int = MAX_KEY_LOCKS, holder: int | None = None
    ) -> None:
        super().__init__(conn)
        self.max_key_locks = max_key_locks
        self.holder = holder  # backend pid holding the store for this process's import
        self.whole: str | None = None  # how this transaction holds the whole-store lock

    def _hold_whole(self, exclusive: bool) -> None:
        if self.whole is None and self.holder is not None:
            self.check_held()
            self.whole = "held"
        if self.whole is None:
            fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
            self.conn.execute(f"SELECT {fn}(%s)", (WHOLE_STORE_LOCK,))
            self.whole = "exclusive" if exclusive else "shared"

    def check_held(self) -> None:
        """An import's batch: its process (or the process that forked it) holds the store
        (``PostgresStore.hold``); ``StoreError`` if it no longer does (it died). A bigint
        advisory key shows in ``pg_locks`` as classid (high 32 bits), objid (low 32 bits)
        and objsubid 1 (https://www.postgresql.org/docs/current/view-pg-locks.html)."""
        held = self.conn.execute(HELD_SQL, (self.holder, WHOLE_STORE_LOCK)).fetchone()
        if not held[0]:
            raise StoreError("the importing process no longer holds the store: this worker stops")

    def hold_store(self) -> None:
        self._hold_whole(exclusive=True)

    def lock(self, keys: Iterable[str]) -> None:
        ordered = sorted(set(keys))
        # decided at the first call (a batch's identifiers and tickets): never upgraded
        self._hold_whole(exclusive=len(ordered) > self.max_key_locks)
        if ordered and self.whole == "shared":  # "held", "exclusive": nobody else writes
            self.conn.execute(
                "SELECT count(pg_advisory_xact_lock(hashtextextended(k, 0))) FROM "
                "unnest(%s::text[]) WITH ORDINALITY AS u(k, n)",
                (ordered,),
            )

    def lock_row(self, key: str) -> None:
        self._hold_whole(exclusive=False)
        if self.whole != "exclusive":  # "held": the workers of one process, one at a time
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def insert_events(self, rows: Sequence[EventRow]) -> list[bool]:
        """As ``SqlTx.insert_events``, with the rows as one array per column: one short
        statement per 2,000 rows (multi-row VALUES lists are parsed by psycopg in Python on
        every call)."""
        received = now_us()
        new_keys: set[str] = set()
        for chunk in chunks(list(rows), 2000):
            new_keys.update(
                str(r[0])
                for r in self.conn.execute(
                    "INSERT INTO events (key, kind, at_us, source, received_us, document_id, "
                    "canonical) SELECT k, kd, a, s, %s, d, c FROM unnest(%s::text[], %s::text[], "
                    "%s::bigint[], %s::text[], %s::bigint[], %s::bytea[]) WITH ORDINALITY "
                    "AS u(k, kd, a, s, d, c, n) ORDER BY n ON CONFLICT (key) DO NOTHING "
                    "RETURNING key",
                    (
                        received,
                        [r.key for r in chunk],
                        [r.kind for r in chunk],
                        [r.at_us for r in chunk],
                        [r.source for r in chunk],
                        [r.document_id for r in chunk],
                        [r.canonical for r in chunk],
                    ),
                ).fetchall()
            )
        return first_new(rows, new_keys)

    def index_events(
        self, persons: Iterable[tuple[str, str]], tickets: Iterable[tuple[int, str]]
    ) -> None:
        """As ``SqlTx.index_events``, as one statement per 2,000 rows (columns as arrays): an
        import batch indexes 20,000 events."""
        for table, column, kind, rows in (
            ("event_persons", "person_id", "text", sorted(persons)),
            ("event_tickets", "ticket_id", "bigint", sorted(tickets)),
        ):
            for chunk in chunks(rows, 2000):
                self.conn.execute(
                    f"INSERT INTO {table} ({column}, event_key) SELECT o, k FROM "
                    f"unnest(%s::{kind}[], %s::text[]) AS u(o, k) ON CONFLICT DO NOTHING",
                    ([r[0] for r in chunk], [r[1] for r in chunk]),
                )

    def _upsert_persons(self, values: list[tuple[Any, ...]]) -> None:
        """As ``SqlTx._upsert_persons``, as one statement per 2,000 persons (columns as
        arrays). Row by row (``executemany``), 1,000 persons of a tick took either about
        20 ms or about 225 ms, varying from one tick to the next; as one statement, 35–45 ms.
        A person saved twice keeps its last row (one statement may change a row once)."""
        last = list({v[0]: v for v in values}.values())
        for chunk in chunks(last, 2000):
            self.conn.execute(
                f"INSERT INTO persons ({PERSON_COLUMNS}) SELECT p, f, s, ss, c, w FROM "
                "unnest(%s::text[], %s::bytea[], %s::bytea[], %s::text[], %s::bigint[], "
                "%s::bigint[]) "
                f"WITH ORDINALITY AS u(p, f, s, ss, c, w, n) ORDER BY n {PERSON_UPSERT}",
                tuple(list(column) for column in zip(*chunk, strict=True)),
            )

    def due_timers(self, until: datetime) -> list[tuple[datetime, str]]:
        """Claim due timers: skip persons another transaction is working on right now."""
        self._hold_whole(exclusive=False)
        rows = self.conn.execute(
            "SELECT wake_us, person_id FROM persons WHERE wake_us <= %s AND "
            "pg_try_advisory_xact_lock(hashtextextended('p:' || person_id, 0)) "
            "ORDER BY wake_us, person_id FOR UPDATE SKIP LOCKED",
            (records.to_us(until),),
        ).fetchall()
        return [(records.from_us(due), pid) for due, pid in rows]


class PgReader(SqlQueries):
    dialect = POSTGRESQL

    def __init__(self, conn: PgConn) -> None:
        self.conn = conn


def _split_url(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    ours: dict[str, str] = {k: query.pop(k) for k in ("pool_size", "max_key_locks") if k in query}
    scheme = "postgresql" if parts.scheme == "postgres" else parts.scheme
    return urlunsplit(parts._replace(scheme=scheme, query=urlencode(query))), ours


def _safe(url: str) -> str:
    """The URL without user, password or parameters (for messages)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{host}{port}", query=""))


def schema_version(url: str) -> int:
    """The database's schema version, read without migrating (0: no Tactful schema yet)."""
    if psycopg is None:
        raise StoreError("the PostgreSQL store needs psycopg: pip install 'tactful[postgresql]'")
    conninfo, _ = _split_url(url)
    try:
        with psycopg.connect(conninfo, autocommit=True, connect_timeout=15) as conn:
            return PostgresStore._schema_version(conn)
    except psycopg.Error as exc:
        raise StoreError(f"cannot read {_safe(url)}: {_explain(exc)}") from exc


_open: weakref.WeakSet[PostgresStore] = weakref.WeakSet()


def close_all() -> None:
    """Close every PostgreSQL store still open in this process (test teardown)."""
    for store in list(_open):
        store.close()


class PostgresStore:
    dialect = POSTGRESQL

    def __init__(self, url: str) -> None:
        if psycopg is None:
            raise StoreError(
                "the PostgreSQL store needs psycopg: pip install 'tactful[postgresql]'"
            )
        self.url = url
        conninfo, ours = _split_url(url)
        size = int(ours.get("pool_size", "10"))
        self.max_key_locks = int(ours.get("max_key_locks", str(MAX_KEY_LOCKS)))
        self._conninfo = conninfo
        self.pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=max(2, size),
            kwargs={"autocommit": True},
            open=False,
            name="tactful",
            timeout=30,
        )
        try:
            self.pool.open(wait=True, timeout=15)
        except PoolTimeout as exc:
            self.pool.close()
            raise StoreError(f"cannot connect to {self.safe_url}: {exc}") from exc
        self._claims_lock = threading.Lock()
        self._claims_conn: Any = None
        self._held: set[str] = set()
        _open.add(self)
        try:
            self._migrate()
        except StoreError:
            self.pool.close()
            raise
        except psycopg.Error as exc:
            self.pool.close()
            raise StoreError(f"cannot migrate {self.safe_url}: {_explain(exc)}") from exc

    @property
    def safe_url(self) -> str:
        return _safe(self.url)

    def _migrate(self) -> None:
        """Apply pending migrations in one transaction; concurrent starters wait their turn."""
        with self.pool.connection() as conn:
            current = self._schema_version(conn)
            if current > LATEST_VERSION:
                raise StoreError(newer_schema(current))
            if current == LATEST_VERSION:
                return  # nothing to do (and a read-only standby can still be read)
            conn.execute("BEGIN")
            try:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                    "description TEXT NOT NULL, applied_us BIGINT NOT NULL)"
                )
                current = self._schema_version(conn)
                pg = PgConn(conn)
                migrate(
                    "postgresql",
                    current,
                    pg.execute,
                    lambda version, description: pg.execute(
                        "INSERT INTO schema_migrations VALUES (%s, %s, %s)",
                        (version, description, now_us()),
                    ),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _schema_version(conn: Any) -> int:
        if conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None:
            return 0
        return int(
            conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0]
        )

    @contextmanager
    def _connection(self) -> Iterator[Any]:
        try:
            with self.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreError(f"no database connection to {self.safe_url}: {exc}") from exc
        except psycopg.OperationalError as exc:
            raise StoreError(f"database {self.safe_url} unreachable: {_explain(exc)}") from exc

    @contextmanager
    def transaction(self, *, durable: bool = True, bulk: bool = False) -> Iterator[PgTx]:
        """One write transaction (READ COMMITTED + advisory locks). ``durable=False`` turns
        off the commit's WAL flush wait for this transaction only (bulk import). ``bulk``
        changes nothing here (the server's ``shared_buffers`` are the cache)."""
        with self._connection() as conn:
            try:
                conn.execute("BEGIN")
                if not durable:  # an import's or a tick's: lost in a crash, redone by a re-run
                    # (https://www.postgresql.org/docs/current/wal-async-commit.html: only the
                    # latest commits may be lost, never half of one; nothing was acknowledged)
                    conn.execute("SET LOCAL synchronous_commit = off")
            except psycopg.Error as exc:
                raise StoreError(f"cannot write to {self.safe_url}: {_explain(exc)}") from exc
            try:
                tx = PgTx(PgConn(conn), self.max_key_locks, _holders.get(self._conninfo))
                yield tx
                if tx.whole == "held":  # still held: what it wrote was folded alone
                    tx.check_held()
                conn.execute("COMMIT")
            except psycopg.Error as exc:
                _rollback(conn)
                if _conflict(exc):
                    raise StoreConflict(f"{type(exc).__name__}: {_explain(exc)}") from exc
                raise StoreError(f"cannot write to {self.safe_url}: {_explain(exc)}") from exc
            except BaseException:
                _rollback(conn)
                raise

    @contextmanager
    def reader(self) -> Iterator[PgReader]:
        """A consistent snapshot (REPEATABLE READ, read only)."""
        with self._connection() as conn:
            conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            try:
                yield PgReader(PgConn(conn))
            except psycopg.Error as exc:
                raise StoreError(f"cannot read {self.safe_url}: {_explain(exc)}") from exc
            finally:
                _rollback(conn)

    @contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the whole store for this process and the worker processes it forks, until
        the block ends: an import by person folding on several processes, whose batches
        share nothing, so they need no lock against each other. Waits for the batches
        running elsewhere; every other writer (batches, ticks, a replay's commits) waits
        until the block ends. A session advisory lock on a connection of its own: released
        when the block ends or the process dies."""
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (WHOLE_STORE_LOCK,))
            _holders[self._conninfo] = int(conn.info.backend_pid)
            try:
                yield
            finally:
                _holders.pop(self._conninfo, None)
                with contextlib.suppress(Exception):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (WHOLE_STORE_LOCK,))

    @contextmanager
    def claim(self, name: str) -> Iterator[bool]:
        """Work that runs in one process at a time: True when this process holds ``name``
        until the block ends; False when another process (or thread) holds it."""
        with self._claims_lock:
            if name in self._held:
                got = False
            else:
                got = self._try_claim(name)
                if got:
                    self._held.add(name)
        try:
            yield got
        finally:
            if got:
                with self._claims_lock:
                    self._held.discard(name)
                    self._release(name)

    def _try_claim(self, name: str) -> bool:
        try:
            if self._claims_conn is None or self._claims_conn.closed:
                self._claims_conn = psycopg.connect(self._conninfo, autocommit=True)
            row = self._claims_conn.execute(
                "SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", ("claim:" + name,)
            ).fetchone()
            return bool(row[0])
        except psycopg.Error:
            self._claims_conn = None  # reconnect next time; hold nothing meanwhile
            return False

    def _release(self, name: str) -> None:
        try:
            if self._claims_conn is not None:
                self._claims_conn.execute(
                    "SELECT pg_advisory_unlock(hashtextextended(%s, 0))", ("claim:" + name,)
                )
        except psycopg.Error:
            self._claims_conn = None

    # -- replays and the inbox (``base.Store``) -------------------------------------------
    # A session advisory lock (``REPLAY_LOCK``) on a connection of its own: exclusive for a
    # replay, shared and never waited for by other writers; PostgreSQL releases it when the
    # connection (the process) goes.
    @contextmanager
    def replay_lock(self) -> Iterator[None]:
        with self._connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (REPLAY_LOCK,))
            try:
                yield
            finally:
                with contextlib.suppress(Exception):
                    conn.execute("SELECT pg_advisory_unlock(%s)", (REPLAY_LOCK,))

    @contextmanager
    def unless_replaying(self) -> Iterator[bool]:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT pg_try_advisory_lock_shared(%s), "
                "EXISTS (SELECT 1 FROM meta WHERE key = %s)",
                (REPLAY_LOCK, REPLAY_KEY),
            ).fetchone()
            got, unfinished = bool(row[0]), bool(row[1])
            try:
                yield got and not unfinished
            finally:
                if got:
                    with contextlib.suppress(Exception):
                        conn.execute("SELECT pg_advisory_unlock_shared(%s)", (REPLAY_LOCK,))

    def inbox(self) -> PgInbox:
        return PgInbox(self._connection)

    def close(self) -> None:
        _open.discard(self)
        if self._claims_conn is not None:
            self._claims_conn.close()
            self._claims_conn = None
        self.pool.close()


def _rollback(conn: Any) -> None:
    with contextlib.suppress(Exception):  # the connection is gone; the pool discards it
        conn.execute("ROLLBACK")
