"""Warehouse destination: an append-only change table plus a current-state table.

Consumes ``event``, ``profile`` and ``erase`` items, applied in order. Tables (the same
columns in every backend):

- ``events`` (append-only): ``key`` (unique: a resent item is stored once), ``person_id``,
  ``name``, ``segment``, ``occurred_at``, ``properties`` (JSON), ``identifiers`` (JSON, the
  consented ones), ``loaded_at``. SQL backends add the views ``state_changes``
  (``support_state_changed``) and ``segment_changes`` (``segment_membership_changed``).
- ``persons_current``: ``person_id`` (primary key), ``state`` (JSON: the profile item's
  properties), ``identifiers`` (JSON), ``updated_at`` (the item's time), ``key``,
  ``loaded_at``. An upsert never replaces a row with an older one, so replays and
  out-of-order retries cannot move a person back in time.
- ``erase`` is the one exception to append-only: the person's rows are deleted from both
  tables and a ``person_erased`` event (no properties, no identifiers) is appended.

URLs: ``duckdb:///relative.duckdb``, ``duckdb:////abs/path.duckdb`` (opened for each
``send`` and closed after it, so other processes can use the file between batches);
``parquet:///dir`` (``dir/events/part-*.parquet``, one file per batch holding only keys not
stored yet, and ``dir/persons_current.parquet``, a snapshot rewritten when it changes; files
are written to a temporary name and renamed; an erase rewrites the part files that hold the
person); ``postgresql://…`` (needs ``psycopg``, not a tactful dependency). The first two need
``duckdb``. ``snowflake://`` and ``bigquery://`` are handed to ``warehouse_snowflake`` and
``warehouse_bigquery`` (their loaders; same tables).
A batch is one transaction (one set of files): a database error retries the whole batch; an
item whose properties are not JSON is rejected alone.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator

from tactful.clock import system_now
from tactful.config.models import DestinationSettings
from tactful.core.messages import MembershipChanged, PersonErased, StateChanged
from tactful.destinations.base import Capabilities, Item, Outcome, Purpose
from tactful.destinations.http import dumps
from tactful.destinations.spec import DestinationConfig, DestinationSpec, Roles, Secret, Text
from tactful.destinations.webhook import identifiers_data

MAX_BATCH = 1000
LOCKED_RETRY_AFTER = 5.0
EVENT_COLUMNS = "key, person_id, name, segment, occurred_at, properties, identifiers, loaded_at"
PERSON_COLUMNS = "person_id, state, identifiers, updated_at, key, loaded_at"
Row = tuple[Any, ...]
Op = tuple[str, Row]  # ("event", event row) | ("person", person row) | ("erase", event row)


class UnsupportedWarehouse(ValueError):
    pass


@dataclass(frozen=True)
class Dialect:
    param: str  # DB-API placeholder
    json: str  # JSON column type
    begin: bool  # needs an explicit BEGIN (DuckDB autocommits)

    def ddl(self) -> list[str]:
        return [
            "CREATE TABLE IF NOT EXISTS events (key VARCHAR PRIMARY KEY, "
            "person_id VARCHAR NOT NULL, name VARCHAR NOT NULL, segment VARCHAR, "
            f"occurred_at TIMESTAMPTZ NOT NULL, properties {self.json}, "
            f"identifiers {self.json}, loaded_at TIMESTAMPTZ NOT NULL)",
            "CREATE TABLE IF NOT EXISTS persons_current (person_id VARCHAR PRIMARY KEY, "
            f"state {self.json}, identifiers {self.json}, updated_at TIMESTAMPTZ NOT NULL, "
            "key VARCHAR NOT NULL, loaded_at TIMESTAMPTZ NOT NULL)",
            "CREATE OR REPLACE VIEW state_changes AS "
            f"SELECT * FROM events WHERE name = '{StateChanged.TOPIC}'",
            "CREATE OR REPLACE VIEW segment_changes AS "
            f"SELECT * FROM events WHERE name = '{MembershipChanged.TOPIC}'",
        ]

    def insert_event(self) -> str:
        p, j = self.param, f"{self.param}::{self.json}"
        return (
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({p}, {p}, {p}, {p}, {p}, {j}, {j}, "
            f"{p}) ON CONFLICT DO NOTHING"
        )

    def upsert_person(self) -> str:
        p, j = self.param, f"{self.param}::{self.json}"
        return (
            f"INSERT INTO persons_current ({PERSON_COLUMNS}) VALUES ({p}, {j}, {j}, {p}, {p}, "
            f"{p}) ON CONFLICT (person_id) DO UPDATE SET state = excluded.state, "
            "identifiers = excluded.identifiers, updated_at = excluded.updated_at, "
            "key = excluded.key, loaded_at = excluded.loaded_at "
            "WHERE excluded.updated_at >= persons_current.updated_at"
        )

    def apply(self, conn: Any, ops: Sequence[Op]) -> None:
        """Run ``ops`` in order on ``conn`` (consecutive ones of a kind as one batch)."""
        for kind, group in itertools.groupby(ops, key=lambda op: op[0]):
            batch = [row for _, row in group]
            if kind == "erase":
                for row in batch:
                    for table in ("events", "persons_current"):
                        conn.execute(
                            f"DELETE FROM {table} WHERE person_id = {self.param}", [row[1]]
                        )
            sql = self.upsert_person() if kind == "person" else self.insert_event()
            if self is DUCKDB:
                conn.executemany(sql, batch)
            else:
                with conn.cursor() as cursor:
                    cursor.executemany(sql, batch)


DUCKDB = Dialect("?", "JSON", True)
POSTGRES = Dialect("%s", "JSONB", False)


def operations(items: Sequence[Item]) -> tuple[list[Outcome | None], list[Op]]:
    """Per-item early outcomes (rejects) and the operations, in item order."""
    now = system_now()
    outcomes: list[Outcome | None] = []
    ops: list[Op] = []
    for item in items:
        if item.kind not in ("event", "profile", "erase"):
            outcomes.append(Outcome("reject", f"a warehouse takes no {item.kind!r} items"))
            continue
        erase = item.kind == "erase"
        try:
            properties = "{}" if erase else dumps(dict(item.properties)).decode()
        except TypeError as e:
            outcomes.append(Outcome("reject", f"properties are not JSON: {e}"))
            continue
        identifiers = "{}" if erase else dumps(identifiers_data(item.identifiers)).decode()
        at = item.at if item.at.tzinfo is not None else item.at.replace(tzinfo=UTC)
        if item.kind == "profile":
            ops.append(("person", (item.person_id, properties, identifiers, at, item.key, now)))
        else:
            name = PersonErased.TOPIC if erase else item.name
            head = (item.key, item.person_id, name, None if erase else item.segment, at)
            ops.append((item.kind, (*head, properties, identifiers, now)))
        outcomes.append(None)
    return outcomes, ops


class _Base:
    type = "warehouse"

    def __init__(self, name: str, purpose: Purpose, segments: Sequence[str] | None) -> None:
        self.name = name
        self.purpose: Purpose = purpose
        self.segments = segments
        self.capabilities = Capabilities(
            max_batch=MAX_BATCH, kinds=frozenset({"event", "profile", "erase"})
        )

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        outcomes, ops = operations(items)
        failure = self._write(ops) if ops else None
        return [o or failure or Outcome.ok() for o in outcomes]

    def _write(self, ops: list[Op]) -> Outcome | None:
        raise NotImplementedError

    def close(self) -> None:
        return None


class SqlWarehouse(_Base):
    """DuckDB or PostgreSQL through a DB-API connection."""

    def __init__(
        self,
        name: str,
        connect: Callable[[], Any],
        dialect: Dialect,
        errors: tuple[type[BaseException], ...],
        *,
        keep_open: bool,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name, purpose, segments)
        self._connect, self._dialect, self._errors = connect, dialect, errors
        self._keep_open = keep_open
        self._conn: Any = None
        self._ready = False

    def _write(self, ops: list[Op]) -> Outcome | None:
        try:
            conn = self._conn if self._conn is not None else self._connect()
        except self._errors as e:
            return Outcome("retry", f"cannot open the warehouse: {e}", LOCKED_RETRY_AFTER)
        try:
            if not self._ready:
                for statement in self._dialect.ddl():
                    conn.execute(statement)
                conn.commit()
                self._ready = True
            if self._dialect.begin:
                conn.execute("BEGIN TRANSACTION")
            self._dialect.apply(conn, ops)
            conn.commit()
        except self._errors as e:
            with contextlib.suppress(Exception):
                conn.rollback()
            return Outcome("retry", f"warehouse write failed: {type(e).__name__}: {e}")
        finally:
            broken = getattr(conn, "broken", False) or getattr(conn, "closed", False)
            self._conn = conn if self._keep_open and not broken else None
            if self._conn is None:
                with contextlib.suppress(Exception):
                    conn.close()
        return None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def _quote(path: Path | str) -> str:
    return "'" + str(path).replace("'", "''") + "'"


class ParquetWarehouse(_Base):
    """Parquet files in a directory, written through an in-memory DuckDB."""

    def __init__(
        self,
        name: str,
        directory: Path,
        *,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
    ) -> None:
        super().__init__(name, purpose, segments)
        self._duckdb = _require("duckdb", "the parquet:// warehouse")
        self.events_dir = directory / "events"
        self.snapshot = directory / "persons_current.parquet"

    def _write(self, ops: list[Op]) -> Outcome | None:
        kinds = {kind for kind, _ in ops}
        erased = sorted({row[1] for kind, row in ops if kind == "erase"})
        conn = self._duckdb.connect()
        try:
            self.events_dir.mkdir(parents=True, exist_ok=True)
            for statement in DUCKDB.ddl()[:2]:
                conn.execute(statement)
            snapshot_changes = bool(kinds & {"person", "erase"})
            if snapshot_changes and self.snapshot.exists():
                conn.execute(
                    f"INSERT INTO persons_current SELECT {PERSON_COLUMNS} "
                    f"FROM read_parquet({_quote(self.snapshot)})"
                )
            DUCKDB.apply(conn, ops)
            if erased:
                self._purge(conn, erased)
            self._append_events(conn)
            if snapshot_changes:
                self._copy(conn, "SELECT * FROM persons_current ORDER BY person_id", self.snapshot)
        except (self._duckdb.Error, OSError) as e:
            return Outcome("retry", f"parquet write failed: {type(e).__name__}: {e}")
        finally:
            conn.close()
        return None

    def _parts(self) -> str | None:
        return (
            _quote(self.events_dir / "*.parquet")
            if any(self.events_dir.glob("*.parquet"))
            else None
        )

    def _purge(self, conn: Any, erased: list[str]) -> None:
        """Rewrite (or remove) the stored part files that hold an erased person."""
        parts = self._parts()
        if parts is None:
            return
        conn.execute("CREATE TEMP TABLE erased (person_id VARCHAR)")
        conn.executemany("INSERT INTO erased VALUES (?)", [[p] for p in erased])
        files = conn.execute(
            f"SELECT DISTINCT filename FROM read_parquet({parts}, filename = true) "
            "WHERE person_id IN (SELECT person_id FROM erased)"
        ).fetchall()
        for (name,) in files:
            keep = (
                f"SELECT * FROM read_parquet({_quote(name)}) "
                "WHERE person_id NOT IN (SELECT person_id FROM erased)"
            )
            if conn.execute(f"SELECT count(*) FROM ({keep})").fetchone()[0]:
                self._copy(conn, keep, Path(name))
            else:
                os.remove(name)

    def _append_events(self, conn: Any) -> None:
        parts = self._parts()
        if parts is not None:
            conn.execute(f"DELETE FROM events WHERE key IN (SELECT key FROM read_parquet({parts}))")
        if conn.execute("SELECT count(*) FROM events").fetchone()[0]:
            stamp = system_now().strftime("%Y%m%dT%H%M%S%fZ")
            target = self.events_dir / f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"
            self._copy(conn, "SELECT * FROM events ORDER BY occurred_at, key", target)

    def _copy(self, conn: Any, query: str, target: Path) -> None:
        tmp = target.with_name(f".{target.name}.tmp")
        conn.execute(f"COPY ({query}) TO {_quote(tmp)} (FORMAT PARQUET)")
        os.replace(tmp, target)


def _require(module: str, what: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise UnsupportedWarehouse(
            f"{what} needs the '{module}' package: pip install {module}"
        ) from e


def local_path(rest: str) -> str:
    """``duckdb:///relative`` → ``relative``; ``duckdb:////abs`` → ``/abs``."""
    if not rest.startswith("/") or len(rest) < 2:
        raise UnsupportedWarehouse(
            "local warehouse URLs look like duckdb:///relative.duckdb, duckdb:////abs.duckdb "
            "or parquet:///dir"
        )
    return rest[1:]


WAREHOUSE_SCHEMES = ("duckdb", "parquet", "postgresql", "postgres", "snowflake", "bigquery")


class WarehouseConfig(DestinationConfig):
    url: Text = Field(
        description="`duckdb:///file`, `parquet:///dir`, `postgresql://…`, "
        "`bigquery://project/dataset` or `snowflake://account/database/schema`"
    )
    credentials: Secret | None = Field(
        default=None, description="BigQuery: service-account JSON or its path"
    )
    location: Text | None = Field(default=None, description="BigQuery: the dataset location")
    user: Text | None = Field(default=None, description="Snowflake: the user")
    private_key: Secret | None = Field(
        default=None, description="Snowflake: the key-pair private key (PEM or its path)"
    )
    warehouse: Text | None = Field(default=None, description="Snowflake: the warehouse")
    role: Text | None = Field(default=None, description="Snowflake: the role")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in WAREHOUSE_SCHEMES:
            names = ", ".join(f"{s}://" for s in WAREHOUSE_SCHEMES)
            shown = f" {scheme}://" if scheme.isalnum() else ""  # never the rest (credentials)
            raise ValueError(f"unsupported warehouse URL{shown}: use one of {names}")
        return value


SPEC = DestinationSpec(
    type=_Base.type,
    purpose="analytics",
    vendor="Warehouse",
    summary="append-only events and current person state in DuckDB, Parquet, PostgreSQL, "
    "BigQuery or Snowflake",
    config=WarehouseConfig,
    roles=Roles(profiles=True, events=True),
)


def create(config: DestinationSettings, *, transport: Any = None) -> _Base:
    keys = WarehouseConfig.of(config)
    url = keys.url
    scheme, _, rest = url.partition("://")
    common: dict[str, Any] = {"purpose": config.purpose, "segments": config.segment_names}
    if scheme == "duckdb":
        duckdb, path = _require("duckdb", "the duckdb:// warehouse"), local_path(rest)
        connect = lambda: duckdb.connect(path)  # noqa: E731
        memory = path == ":memory:"
        return SqlWarehouse(
            config.name, connect, DUCKDB, (duckdb.Error,), keep_open=memory, **common
        )
    if scheme == "parquet":
        return ParquetWarehouse(config.name, Path(local_path(rest)), **common)
    if scheme in ("postgresql", "postgres"):
        psycopg = _require("psycopg", "the postgresql:// warehouse")
        connect = lambda: psycopg.connect(url)  # noqa: E731
        return SqlWarehouse(
            config.name, connect, POSTGRES, (psycopg.Error,), keep_open=True, **common
        )
    # snowflake:// or bigquery:// (the config model accepts no other scheme)
    module = importlib.import_module(f"tactful.destinations.warehouse_{scheme}")
    cloud: _Base = module.create(config, keys, transport=transport)
    return cloud
