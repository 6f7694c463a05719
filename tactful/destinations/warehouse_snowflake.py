"""Snowflake warehouse (``snowflake://account/database/schema``) over the SQL API.

The same tables and item semantics as ``tactful.destinations.warehouse``; ``loaded_at`` is
``CURRENT_TIMESTAMP()``. Loading: the SQL API cannot run ``PUT`` (documented limitation), so
staged files + ``COPY INTO`` would need an external stage (cloud bucket credentials tactful
does not have). Rows are instead bound into a ``MERGE`` whose source is ``SELECT … FROM VALUES
(?, …), …`` (at most ``ROWS_PER_STATEMENT`` rows, every value a ``TEXT`` binding, JSON through
``PARSE_JSON``, times through ``TO_TIMESTAMP_TZ``, a missing segment as ``''`` → ``NULLIF``).
``events`` merges on ``key`` (``WHEN NOT MATCHED THEN INSERT``: a resent item is stored once);
``persons_current`` on ``person_id`` (update only when ``s.updated_at >= t.updated_at``);
erase runs first ``DELETE … WHERE person_id IN (?, …)`` on both tables. Runs, dedup within a
run and per-run outcomes are those of ``warehouse_bigquery`` (``send_runs``).

Statements: ``POST /api/v2/statements?requestId=<uuid>`` with ``statement``, ``timeout``,
``database``, ``schema``, ``warehouse``, ``role`` and ``bindings``; 200 is done; 202 (still
running) is polled at ``GET /api/v2/statements/{handle}`` until 200, 422 (failed: reject,
or retry for SQL states of class 40/57/58) or ``poll_timeout`` (retry: the MERGE is safe to run
again). 429 and 5xx retry (``Retry-After``), other 4xx reject.

Auth: key-pair JWT (RS256, ``iss`` = ``ACCOUNT.USER.SHA256:<base64 SHA-256 of the public key
DER>``, ``sub`` = ``ACCOUNT.USER``, one hour), sent as ``Authorization: Bearer`` with
``X-Snowflake-Authorization-Token-Type: KEYPAIR_JWT``, renewed five minutes before expiry.
``private_key``: an unencrypted PKCS#8 PEM, inline or its path.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from tactful.clock import epoch_seconds
from tactful.config.models import DestinationSettings
from tactful.destinations.base import Capabilities, Item, Outcome, Purpose
from tactful.destinations.warehouse import MAX_BATCH, Row, UnsupportedWarehouse, WarehouseConfig
from tactful.destinations.warehouse_bigquery import (
    EVENT_FIELDS,
    PERSON_FIELDS,
    Abort,
    Run,
    http_failure,
    send_runs,
    text_or_file,
)

ROWS_PER_STATEMENT = 200
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
STATEMENT_TIMEOUT = 300
EVENT_DDL = ("key VARCHAR NOT NULL PRIMARY KEY, person_id VARCHAR NOT NULL, name VARCHAR NOT "
             "NULL, segment VARCHAR, occurred_at TIMESTAMP_TZ NOT NULL, properties VARIANT, "
             "identifiers VARIANT, loaded_at TIMESTAMP_TZ NOT NULL")  # fmt: skip
PERSON_DDL = ("person_id VARCHAR NOT NULL PRIMARY KEY, state VARIANT, identifiers VARIANT, "
              "updated_at TIMESTAMP_TZ NOT NULL, key VARCHAR NOT NULL, "
              "loaded_at TIMESTAMP_TZ NOT NULL")  # fmt: skip
_CAST = {"properties": "PARSE_JSON({})", "identifiers": "PARSE_JSON({})",
         "state": "PARSE_JSON({})", "occurred_at": "TO_TIMESTAMP_TZ({})",
         "updated_at": "TO_TIMESTAMP_TZ({})", "segment": "NULLIF({}, '')"}  # fmt: skip


def fingerprint(key: RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()


def merge_statement(kind: str, rows: int) -> str:
    """``MERGE`` of ``rows`` bound rows into ``events`` (kind ``event``) or ``persons_current``."""
    names = PERSON_FIELDS if kind == "person" else EVENT_FIELDS
    source = ", ".join(f"column{i} AS {n}" for i, n in enumerate(names, 1))
    row = "(" + ", ".join("?" * len(names)) + ")"
    values = ", ".join([row] * rows)
    inserted = ", ".join(
        [*(_CAST.get(n, "{}").format(f"s.{n}") for n in names), "CURRENT_TIMESTAMP()"]
    )
    insert = (
        f"WHEN NOT MATCHED THEN INSERT ({', '.join([*names, 'loaded_at'])}) VALUES ({inserted})"
    )
    head = f"USING (SELECT {source} FROM VALUES {values}) AS s"
    if kind != "person":
        return f"MERGE INTO events AS t {head} ON t.key = s.key {insert}"
    sets = ", ".join(f"{n} = {_CAST.get(n, '{}').format(f's.{n}')}" for n in names[1:])
    return (
        f"MERGE INTO persons_current AS t {head} ON t.person_id = s.person_id "
        f"WHEN MATCHED AND TO_TIMESTAMP_TZ(s.updated_at) >= t.updated_at THEN UPDATE SET {sets}, "
        f"loaded_at = CURRENT_TIMESTAMP() {insert}"
    )


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


class SnowflakeWarehouse:
    type = "warehouse"

    def __init__(
        self,
        *,
        name: str,
        account: str,
        database: str,
        schema: str,
        user: str,
        private_key: str,
        warehouse: str | None = None,
        role: str | None = None,
        base_url: str | None = None,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        poll_timeout: float = 300.0,
        poll_interval: float = 0.5,
        max_poll_interval: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.purpose, self.segments = name, purpose, segments
        self.capabilities = Capabilities(
            max_batch=MAX_BATCH, kinds=frozenset({"event", "profile", "erase"})
        )
        key = serialization.load_pem_private_key(private_key.encode(), password=None)
        if not isinstance(key, RSAPrivateKey):
            raise UnsupportedWarehouse("Snowflake key-pair auth needs an RSA private key")
        self._key = key
        qualified = f"{account.split('.')[0].upper()}.{user.upper()}"
        self.issuer, self.subject = f"{qualified}.{fingerprint(key)}", qualified
        self._api = (base_url or f"https://{account}.snowflakecomputing.com").rstrip("/")
        self._context = {"database": database, "schema": schema}
        self._context |= {k: v for k, v in (("warehouse", warehouse), ("role", role)) if v}
        self._poll = (poll_timeout, poll_interval, max_poll_interval)
        self._sleep, self._clock = sleep, clock
        self._token: tuple[str, float] | None = None
        self._ready = False
        self._client = httpx.Client(transport=transport, timeout=TIMEOUT)

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        return send_runs(items, self._apply)

    def _apply(self, run: Run) -> None:
        if not self._ready:
            self.execute(f"CREATE TABLE IF NOT EXISTS events ({EVENT_DDL})")
            self.execute(f"CREATE TABLE IF NOT EXISTS persons_current ({PERSON_DDL})")
            self._ready = True
        if run.kind == "erase":
            persons = sorted({row[1] for row in run.rows})
            marks = ", ".join("?" * len(persons))
            for table in ("events", "persons_current"):
                self.execute(f"DELETE FROM {table} WHERE person_id IN ({marks})", persons)
        kind = "person" if run.kind == "person" else "event"
        rows = run.unique()
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk: list[Row] = rows[start : start + ROWS_PER_STATEMENT]
            values = [_text(value) for row in chunk for value in row[:-1]]
            self.execute(merge_statement(kind, len(chunk)), values)

    def execute(self, statement: str, values: Sequence[str] = ()) -> dict[str, Any]:
        """Run one statement to completion; its result, or ``Abort``."""
        body: dict[str, Any] = {"statement": statement, "timeout": STATEMENT_TIMEOUT}
        body |= self._context
        if values:
            body["bindings"] = {
                str(i): {"type": "TEXT", "value": v} for i, v in enumerate(values, 1)
            }
        params = {"requestId": str(uuid.uuid4())}
        response = self._call("POST", "/api/v2/statements", json=body, params=params)
        timeout, delay, longest = self._poll
        deadline = self._clock() + timeout
        while response.status_code == 202:
            handle = response.json().get("statementHandle")
            if self._clock() + delay > deadline:
                error = f"Snowflake statement {handle} still running after {timeout:g}s"
                raise Abort(Outcome("retry", error))
            self._sleep(delay)
            delay = min(delay * 2, longest)
            response = self._call("GET", f"/api/v2/statements/{handle}")
        result: dict[str, Any] = response.json()
        return result

    def _call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {
            "authorization": f"Bearer {self._jwt()}",
            "x-snowflake-authorization-token-type": "KEYPAIR_JWT",
            "accept": "application/json",
            "user-agent": "tactful/0.1",
        }
        try:
            response = self._client.request(method, self._api + path, headers=headers, **kw)
        except httpx.TransportError as e:
            raise Abort(Outcome("retry", f"Snowflake {path}: {type(e).__name__}: {e}")) from e
        if response.status_code in (200, 202):
            return response
        try:
            data = response.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        message = f"{data.get('code', '')} {data.get('message', '')}".strip()
        state = str(data.get("sqlState", ""))
        if response.status_code == 422 and state[:2] in ("40", "57", "58"):
            error = f"Snowflake statement failed (SQL state {state}): {message}"
            raise Abort(Outcome("retry", error, None, 422))
        if response.status_code == 401:
            self._token = None
        raise http_failure(f"Snowflake {method} {path}", response, message)

    def _jwt(self) -> str:
        now = epoch_seconds()  # wall time: JWT iat/exp
        if self._token is not None and now < self._token[1] - 300:
            return self._token[0]
        claims = {"iss": self.issuer, "sub": self.subject, "iat": int(now), "exp": int(now) + 3600}
        self._token = (jwt.encode(claims, self._key, algorithm="RS256"), now + 3600)
        return self._token[0]

    def close(self) -> None:
        self._client.close()


def create(
    config: DestinationSettings,
    keys: WarehouseConfig,
    *,
    transport: httpx.BaseTransport | None = None,
) -> SnowflakeWarehouse:
    url = keys.url
    parts = url.partition("://")[2].strip("/").split("/")
    if len(parts) != 3 or not all(parts):
        raise UnsupportedWarehouse(
            f"Snowflake URLs look like snowflake://account/database/schema: {url!r}"
        )
    user, key = keys.user, keys.private_key
    if not user or not key:
        raise UnsupportedWarehouse(
            f"destination {config.name!r}: snowflake:// needs 'user' and 'private_key' "
            "(a PEM, or its path)"
        )
    try:
        pem = text_or_file(key)
        return SnowflakeWarehouse(
            name=config.name,
            account=parts[0],
            database=parts[1],
            schema=parts[2],
            user=user,
            private_key=pem,
            warehouse=keys.warehouse,
            role=keys.role,
            base_url=config.base_url,
            purpose=config.purpose,
            segments=config.segment_names,
            transport=transport,
        )
    except (OSError, ValueError, TypeError) as e:
        raise UnsupportedWarehouse(f"unreadable Snowflake private key: {e}") from e
