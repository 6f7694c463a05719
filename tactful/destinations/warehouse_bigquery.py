"""BigQuery warehouse (``bigquery://project/dataset``): load jobs from staged NDJSON + MERGE.

The same tables and item semantics as ``tactful.destinations.warehouse`` (``events``: unique
``key``; ``persons_current``: upsert that never goes back in time; ``erase`` deletes the
person's rows and appends ``person_erased``). ``loaded_at`` is the MERGE's
``CURRENT_TIMESTAMP()``.

Per ``send`` the items are cut into runs of one kind, in order (``plan_runs``). A run:

1. ``POST /upload/bigquery/v2/projects/{p}/jobs?uploadType=multipart`` (``multipart/related``:
   the ``configuration.load`` JSON, then the NDJSON rows) into a staging table
   ``_tactful_stage_{digest}`` (``WRITE_TRUNCATE``, ``CREATE_IF_NEEDED``, explicit schema);
2. a ``MERGE`` query job from it: ``events`` on ``key`` (``WHEN NOT MATCHED THEN INSERT``),
   ``persons_current`` on ``person_id`` (update only ``WHEN MATCHED AND S.updated_at >=
   T.updated_at``); erase runs first run ``DELETE … WHERE person_id IN UNNEST(@persons)`` on
   both tables;
3. ``DELETE …/datasets/{d}/tables/{stage}``.

Each job is polled (``GET …/jobs/{id}?location=``) until ``DONE``; ``status.errorResult``
retries (backend/internal/rate-limit reasons) or rejects. Job ids are derived from the staged
rows (``digest``; ``loaded_at`` is not staged), so a resent run finds its jobs (409
``duplicate``): a finished one is not run again; a failed one is rerun under a new id. Rows are
deduplicated within a run (first event per key, latest profile per person) so MERGE sources are
unique. A failed run gets its outcome; later runs are not started and retry; earlier ones are
``ok``. Tables are created on first use (``CREATE TABLE IF NOT EXISTS``).

Auth: a service account (``credentials``: its JSON key file's path, or the JSON itself, e.g.
through ``env:``) signs an RS256 JWT (``iss`` = ``client_email``, ``scope`` = BigQuery,
``aud`` = ``token_uri``) exchanged at the token endpoint (JWT bearer grant); the access token is
cached until a minute before it expires; a 401 refreshes it once. ``base_url`` (tests) replaces
both hosts: the API under it and the token endpoint at ``{base_url}/token``.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt

from tactful.clock import epoch_seconds
from tactful.config.models import DestinationSettings
from tactful.destinations.base import (
    Capabilities,
    Item,
    Outcome,
    Purpose,
    classify_status,
    parse_retry_after,
)
from tactful.destinations.warehouse import (
    MAX_BATCH,
    Row,
    UnsupportedWarehouse,
    WarehouseConfig,
    operations,
)

API_URL = "https://bigquery.googleapis.com"
TOKEN_URL = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/bigquery"
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TIMEOUT = httpx.Timeout(60.0, connect=10.0)
RETRYABLE_REASONS = frozenset(
    {"backendError", "internalError", "rateLimitExceeded", "jobBackendError", "jobInternalError"}
)
EVENT_FIELDS = ["key", "person_id", "name", "segment", "occurred_at", "properties", "identifiers"]
PERSON_FIELDS = ["person_id", "state", "identifiers", "updated_at", "key"]
_TYPES = {"occurred_at": "TIMESTAMP", "updated_at": "TIMESTAMP", "properties": "JSON",
          "identifiers": "JSON", "state": "JSON"}  # fmt: skip
_REQUIRED = {"key", "person_id", "name", "occurred_at", "updated_at"}


class Abort(Exception):
    """A call failed: ``outcome`` applies to the run it was for."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome.error)
        self.outcome = outcome


@dataclass
class Run:
    kind: str  # "event" | "person" | "erase" (consecutive items of one kind)
    rows: list[Row] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)

    def unique(self) -> list[Row]:
        """Rows as the sequential local semantics leave them: the first event per key, the
        latest profile per person (the later one on equal times)."""
        kept: dict[str, Row] = {}
        for row in self.rows:
            if self.kind != "person":
                kept.setdefault(row[0], row)
            elif row[0] not in kept or row[3] >= kept[row[0]][3]:
                kept[row[0]] = row
        return list(kept.values())


def plan_runs(items: Sequence[Item]) -> tuple[list[Outcome | None], list[Run]]:
    """Per-item early outcomes (rejects) and the runs, in item order."""
    outcomes, ops = operations(items)
    positions = [i for i, outcome in enumerate(outcomes) if outcome is None]
    runs: list[Run] = []
    for index, (kind, row) in zip(positions, ops, strict=True):
        if not runs or runs[-1].kind != kind:
            runs.append(Run(kind))
        runs[-1].rows.append(row)
        runs[-1].indexes.append(index)
    return outcomes, runs


def send_runs(items: Sequence[Item], apply: Callable[[Run], None]) -> list[Outcome]:
    """Apply runs in order; a failed run gets its outcome and later runs retry unstarted."""
    outcomes, runs = plan_runs(items)
    failure: Outcome | None = None
    for run in runs:
        if failure is None:
            try:
                apply(run)
                outcome = Outcome.ok()
            except Abort as abort:
                failure = outcome = abort.outcome
        else:
            delay = failure.retry_after if failure.kind == "retry" else None
            outcome = Outcome(
                "retry", f"not started: an earlier load failed ({failure.error})", delay
            )
        for index in run.indexes:
            outcomes[index] = outcome
    return [o or Outcome.ok() for o in outcomes]


def http_failure(what: str, response: httpx.Response, message: str) -> Abort:
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    error = f"{what}: HTTP {response.status_code}" + (f" {message}" if message else "")
    return Abort(classify_status(response.status_code, retry_after, error))


def text_or_file(value: str) -> str:
    """A secret given inline (JSON, PEM) or as a path to the file holding it."""
    stripped = value.strip()
    if stripped.startswith(("{", "-----BEGIN")):
        return stripped
    return Path(stripped).expanduser().read_text()


def _line(kind: str, row: Row) -> dict[str, Any]:
    names = PERSON_FIELDS if kind == "person" else EVENT_FIELDS
    values = dict(zip(names, row, strict=False))
    for name, value in values.items():
        if _TYPES.get(name) == "JSON":
            values[name] = json.loads(value)
        elif _TYPES.get(name) == "TIMESTAMP":
            values[name] = value.isoformat()
    return values


def _schema(names: list[str]) -> list[dict[str, str]]:
    return [{"name": n, "type": _TYPES.get(n, "STRING"),
             "mode": "REQUIRED" if n in _REQUIRED else "NULLABLE"} for n in names]  # fmt: skip


class BigQueryWarehouse:
    type = "warehouse"

    def __init__(
        self,
        *,
        name: str,
        project: str,
        dataset: str,
        credentials: dict[str, Any],
        location: str | None = None,
        base_url: str | None = None,
        purpose: Purpose = "analytics",
        segments: Sequence[str] | None = None,
        transport: httpx.BaseTransport | None = None,
        poll_timeout: float = 300.0,
        poll_interval: float = 1.0,
        max_poll_interval: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.purpose, self.segments = name, purpose, segments
        self.capabilities = Capabilities(
            max_batch=MAX_BATCH, kinds=frozenset({"event", "profile", "erase"})
        )
        self.project, self.dataset, self.location = project, dataset, location
        self._email = str(credentials["client_email"])
        self._key = str(credentials["private_key"])
        self._key_id = credentials.get("private_key_id")
        self._audience = str(credentials.get("token_uri") or TOKEN_URL)
        self._api = (base_url or API_URL).rstrip("/")
        self._token_url = f"{base_url.rstrip('/')}/token" if base_url else self._audience
        self._poll = (poll_timeout, poll_interval, max_poll_interval)
        self._sleep, self._clock = sleep, clock
        self._token: tuple[str, float] | None = None
        self._ready = False
        self._client = httpx.Client(transport=transport, timeout=TIMEOUT)

    def table(self, name: str) -> str:
        return f"`{self.project}.{self.dataset}.{name}`"

    def send(self, items: Sequence[Item]) -> list[Outcome]:
        return send_runs(items, self._apply)

    def _apply(self, run: Run) -> None:
        if not self._ready:
            for table, ddl in (("events", EVENT_DDL), ("persons_current", PERSON_DDL)):
                self.query(f"CREATE TABLE IF NOT EXISTS {self.table(table)} ({ddl})")
            self._ready = True
        kind = "person" if run.kind == "person" else "event"
        lines = [json.dumps(_line(kind, row), sort_keys=True) for row in run.unique()]
        ndjson = ("\n".join(lines) + "\n").encode()
        digest = hashlib.sha256(run.kind.encode() + b"\0" + ndjson).hexdigest()[:32]
        stage = f"_tactful_stage_{digest}"
        if run.kind == "erase":
            persons = sorted({row[1] for row in run.rows})
            param = {"name": "persons", "parameterType": {"type": "ARRAY",
                     "arrayType": {"type": "STRING"}}, "parameterValue": {"arrayValues":
                     [{"value": p} for p in persons]}}  # fmt: skip
            for table in ("events", "persons_current"):
                sql = f"DELETE FROM {self.table(table)} WHERE person_id IN UNNEST(@persons)"
                self.query(sql, f"tactful_erase_{table}_{digest}", [param])
        names = PERSON_FIELDS if kind == "person" else EVENT_FIELDS
        destination = {"projectId": self.project, "datasetId": self.dataset, "tableId": stage}
        load = {"sourceFormat": "NEWLINE_DELIMITED_JSON", "destinationTable": destination,
                "schema": {"fields": _schema(names)}, "writeDisposition": "WRITE_TRUNCATE",
                "createDisposition": "CREATE_IF_NEEDED"}  # fmt: skip
        self.job(f"tactful_load_{digest}", {"load": load}, ndjson)
        self.query(self.merge(kind, stage), f"tactful_merge_{digest}")
        url = f"{self._api}/bigquery/v2/projects/{self.project}/datasets/{self.dataset}"
        self.call("DELETE", f"{url}/tables/{stage}", allow=(404,))

    def merge(self, kind: str, stage: str) -> str:
        names = PERSON_FIELDS if kind == "person" else EVENT_FIELDS
        columns = ", ".join([*names, "loaded_at"])
        values = ", ".join([*(f"S.{n}" for n in names), "CURRENT_TIMESTAMP()"])
        insert = f"WHEN NOT MATCHED THEN INSERT ({columns}) VALUES ({values})"
        if kind != "person":
            target, source = self.table("events"), self.table(stage)
            return f"MERGE {target} T USING {source} S ON T.key = S.key {insert}"
        sets = ", ".join(f"{n} = S.{n}" for n in names[1:])
        return (
            f"MERGE {self.table('persons_current')} T USING {self.table(stage)} S "
            "ON T.person_id = S.person_id WHEN MATCHED AND S.updated_at >= T.updated_at "
            f"THEN UPDATE SET {sets}, loaded_at = CURRENT_TIMESTAMP() {insert}"
        )

    def query(self, sql: str, job_id: str | None = None, params: Any = None) -> None:
        query: dict[str, Any] = {"query": sql, "useLegacySql": False}
        if params:
            query |= {"parameterMode": "NAMED", "queryParameters": params}
        self.job(job_id or f"tactful_{uuid.uuid4().hex}", {"query": query})

    def job(self, job_id: str, configuration: dict[str, Any], data: bytes | None = None) -> None:
        """Insert the job (or find it already inserted) and wait until it is DONE."""
        for attempt in (1, 2):
            reference: dict[str, Any] = {"projectId": self.project, "jobId": job_id}
            if self.location:
                reference["location"] = self.location
            body = {"jobReference": reference, "configuration": configuration}
            if data is None:
                url = f"{self._api}/bigquery/v2/projects/{self.project}/jobs"
                response = self.call("POST", url, allow=(409,), json=body)
            else:
                url = f"{self._api}/upload/bigquery/v2/projects/{self.project}/jobs"
                boundary = f"tactful-{uuid.uuid4().hex}"
                content = (
                    (
                        f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
                        f"{json.dumps(body)}\r\n--{boundary}\r\n"
                        "Content-Type: application/octet-stream\r\n\r\n"
                    ).encode()
                    + data
                    + f"\r\n--{boundary}--\r\n".encode()
                )
                headers = {"content-type": f"multipart/related; boundary={boundary}"}
                params = {"uploadType": "multipart"}
                response = self.call(
                    "POST", url, allow=(409,), content=content, headers=headers, params=params
                )
            resource = self.wait(job_id)
            error = resource.get("status", {}).get("errorResult")
            if not error:
                return
            if response.status_code == 409 and attempt == 1:
                job_id = f"{job_id}_{uuid.uuid4().hex[:8]}"  # an earlier attempt failed: rerun
                continue
            reason, message = error.get("reason", ""), error.get("message", "")
            error_text = f"BigQuery job {job_id} failed: {reason}: {message}"
            retry = reason in RETRYABLE_REASONS
            raise Abort(Outcome("retry" if retry else "reject", error_text))

    def wait(self, job_id: str) -> dict[str, Any]:
        timeout, delay, longest = self._poll
        deadline = self._clock() + timeout
        url = f"{self._api}/bigquery/v2/projects/{self.project}/jobs/{job_id}"
        params = {"location": self.location} if self.location else {}
        while True:
            resource: dict[str, Any] = self.call("GET", url, params=params).json()
            state = resource.get("status", {}).get("state")
            if state == "DONE":
                return resource
            if self._clock() + delay > deadline:
                raise Abort(
                    Outcome("retry", f"BigQuery job {job_id} still {state} after {timeout:g}s")
                )
            self._sleep(delay)
            delay = min(delay * 2, longest)

    def call(self, method: str, url: str, allow: tuple[int, ...] = (), **kw: Any) -> httpx.Response:
        for attempt in (1, 2):
            headers = {**kw.pop("headers", {}), "authorization": f"Bearer {self._access_token()}"}
            try:
                response = self._client.request(method, url, headers=headers, **kw)
            except httpx.TransportError as e:
                raise Abort(Outcome("retry", f"{method} {url}: {type(e).__name__}: {e}")) from e
            kw["headers"] = {k: v for k, v in headers.items() if k != "authorization"}
            if response.status_code == 401 and attempt == 1:
                self._token = None
                continue
            if response.is_success or response.status_code in allow:
                return response
            try:
                message = str(response.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                message = response.text[:200]
            raise http_failure(f"BigQuery {method} {url.split('/v2/', 1)[-1]}", response, message)
        raise AssertionError("unreachable")

    def _access_token(self) -> str:
        now = epoch_seconds()  # wall time: JWT iat/exp
        if self._token is not None and now < self._token[1] - 60:
            return self._token[0]
        claims = {"iss": self._email, "scope": SCOPE, "aud": self._audience,
                  "iat": int(now), "exp": int(now) + 3600}  # fmt: skip
        headers = {"kid": self._key_id} if self._key_id else None
        assertion = jwt.encode(claims, self._key, algorithm="RS256", headers=headers)
        try:
            response = self._client.post(
                self._token_url, data={"grant_type": JWT_GRANT, "assertion": assertion}
            )
            data = response.json()
        except httpx.TransportError as e:
            raise Abort(Outcome("retry", f"OAuth token: {type(e).__name__}: {e}")) from e
        except ValueError:
            data = {}
        if response.is_success and isinstance(data.get("access_token"), str):
            self._token = (data["access_token"], now + float(data.get("expires_in", 3600)))
            return self._token[0]
        detail = f"{data.get('error', '')}: {data.get('error_description', '')}"
        if data.get("error") in ("invalid_grant", "invalid_client", "unauthorized_client"):
            error = f"service account {self._email} rejected ({detail})"
            raise Abort(Outcome("reject", error, None, response.status_code))
        raise http_failure("OAuth token", response, detail)

    def close(self) -> None:
        self._client.close()


EVENT_DDL = ("key STRING NOT NULL, person_id STRING NOT NULL, name STRING NOT NULL, "
             "segment STRING, occurred_at TIMESTAMP NOT NULL, properties JSON, identifiers "
             "JSON, loaded_at TIMESTAMP NOT NULL")  # fmt: skip
PERSON_DDL = ("person_id STRING NOT NULL, state JSON, identifiers JSON, updated_at TIMESTAMP "
              "NOT NULL, key STRING NOT NULL, loaded_at TIMESTAMP NOT NULL")  # fmt: skip


def create(
    config: DestinationSettings,
    keys: WarehouseConfig,
    *,
    transport: httpx.BaseTransport | None = None,
) -> BigQueryWarehouse:
    url = keys.url
    project, _, dataset = url.partition("://")[2].strip("/").partition("/")
    if not project or not dataset or "/" in dataset:
        raise UnsupportedWarehouse(f"BigQuery URLs look like bigquery://project/dataset: {url!r}")
    secret = keys.credentials
    if not secret:
        raise UnsupportedWarehouse(
            f"destination {config.name!r}: bigquery:// needs 'credentials' (a service-account "
            "JSON key file's path, or the JSON)"
        )
    try:
        credentials = json.loads(text_or_file(secret))
        credentials["client_email"], credentials["private_key"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UnsupportedWarehouse(f"unreadable BigQuery credentials: {e}") from e
    return BigQueryWarehouse(
        name=config.name,
        project=project,
        dataset=dataset,
        credentials=credentials,
        location=keys.location,
        base_url=config.base_url,
        purpose=config.purpose,
        segments=config.segment_names,
        transport=transport,
    )
