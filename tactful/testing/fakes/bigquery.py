"""A fake BigQuery (jobs, tables.delete) and Google OAuth token endpoint, one ASGI app.

- ``POST /token``: JWT bearer grant; the assertion must verify (RS256) with the service
  account's public key, ``iss`` = its email, ``aud`` = ``https://oauth2.googleapis.com/token``,
  the BigQuery scope, at most one hour → ``access_token`` (else 400 ``invalid_grant``).
- ``POST /upload/bigquery/v2/projects/{p}/jobs?uploadType=multipart`` (load jobs: a
  ``multipart/related`` body, JSON metadata then NDJSON) and ``POST /bigquery/v2/projects/{p}/
  jobs`` (query jobs). A job id already used is 409 ``duplicate``. The job's effect is applied
  when it is inserted; ``GET …/jobs/{id}`` answers ``RUNNING`` ``polls_to_finish`` times, then
  ``DONE`` (with ``errorResult`` when the job failed: bad rows, unknown SQL, missing table).
- ``DELETE /bigquery/v2/projects/{p}/datasets/{d}/tables/{t}``: 204, or 404.

Understood SQL (the shapes the destination emits): ``CREATE TABLE IF NOT EXISTS``, ``MERGE``
into ``events`` on ``key`` (insert when not matched) and into ``persons_current`` on
``person_id`` (update when matched, guarded by ``S.updated_at >= T.updated_at`` if the
statement says so), ``DELETE … WHERE person_id IN UNNEST(@persons)``.
"""

from __future__ import annotations

import json
import re
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qs

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.testing.fakes.warehouse import FakeWarehouse

AUDIENCE = "https://oauth2.googleapis.com/token"
SCOPE = "https://www.googleapis.com/auth/bigquery"
_T = r"`(?P<project>[\w-]+)\.(?P<dataset>\w+)\.(?P<table>\w+)`"
_CREATE = re.compile(rf"CREATE TABLE IF NOT EXISTS {_T} \((?P<columns>.+)\)", re.S)
_MERGE = re.compile(
    rf"MERGE {_T} T USING `[\w-]+\.\w+\.(?P<stage>\w+)` S ON T\.(?P<on>\w+) = S\.(?P=on) "
    r"(?P<rest>.+)", re.S
)  # fmt: skip
_DELETE = re.compile(rf"DELETE FROM {_T} WHERE person_id IN UNNEST\(@persons\)")
_GUARD = "WHEN MATCHED AND S.updated_at >= T.updated_at THEN UPDATE"


def _error(status: int, reason: str, message: str) -> JSONResponse:
    errors = [{"domain": "global", "reason": reason, "message": message}]
    body = {"code": status, "message": message, "errors": errors}
    return JSONResponse({"error": body}, status)


def _fault(status: int) -> JSONResponse:
    reason = (
        "rateLimitExceeded" if status == 429 else "backendError" if status >= 500 else "invalid"
    )
    return _error(status, reason, f"Injected {status}.")


class FakeBigQuery(FakeWarehouse):
    def __init__(
        self,
        *,
        public_key: Any,
        client_email: str = "loader@proj.iam.gserviceaccount.com",
        project: str = "proj",
        dataset: str = "analytics",
        polls_to_finish: int = 1,
        max_rows_per_load: int = 10_000,
    ) -> None:
        super().__init__(max_rows=max_rows_per_load)
        self.public_key, self.client_email = public_key, client_email
        self.project, self.dataset = project, dataset
        self.polls_to_finish = polls_to_finish
        self.jobs: dict[str, dict[str, Any]] = {}
        self.assertions: list[dict[str, Any]] = []  # verified JWT claims
        self._tokens: set[str] = set()
        self._polls: dict[str, int] = {}
        methods = ["GET", "POST", "DELETE"]
        self.app = Starlette(
            routes=[
                Route("/token", self._token, methods=["POST"]),
                Route("/{path:path}", self._api, methods=methods),
            ]
        )

    # --- controls -------------------------------------------------------------------------

    # --- HTTP -----------------------------------------------------------------------------

    async def _token(self, request: Request) -> Response:
        body = await request.body()
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        with self.lock:
            try:
                if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
                    raise ValueError("unsupported grant_type")
                claims = jwt.decode(form.get("assertion", ""), self.public_key,
                                    algorithms=["RS256"], audience=AUDIENCE,
                                    issuer=self.client_email,
                                    options={"require": ["iss", "aud", "iat", "exp"]})  # fmt: skip
                if SCOPE not in str(claims.get("scope", "")).split():
                    raise ValueError("missing the BigQuery scope")
                if claims["exp"] - claims["iat"] > 3600:
                    raise ValueError("assertion lives longer than an hour")
            except (jwt.PyJWTError, ValueError) as e:
                answer = {"error": "invalid_grant", "error_description": str(e)}
                response = JSONResponse(answer, 400)
            else:
                self.assertions.append(claims)
                token = f"ya29.fake-{len(self.assertions)}"
                self._tokens.add(token)
                response = JSONResponse(
                    {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
                )
            self._record(request, body, response.status_code)
        return response

    async def _api(self, request: Request) -> Response:
        return await self._serve(request, lambda r, body: self._gate(r) or self._dispatch(r, body))

    def _gate(self, request: Request) -> Response | None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self._tokens:
            return _error(401, "authError", "Request had invalid authentication credentials.")
        return self._injected(_fault)

    def _dispatch(self, request: Request, body: bytes) -> Response:
        path, method = request.url.path, request.method
        jobs = f"/bigquery/v2/projects/{self.project}/jobs"
        if method == "POST" and path == "/upload" + jobs:
            if request.query_params.get("uploadType") != "multipart":
                return _error(400, "invalid", "uploadType=multipart expected")
            return self._upload(request.headers.get("content-type", ""), body)
        if method == "POST" and path == jobs:
            try:
                job = json.loads(body)
            except ValueError:
                return _error(400, "parseError", "Invalid JSON payload received.")
            return self._insert(job, None)
        if method == "GET" and path.startswith(jobs + "/"):
            return self._get(path.rsplit("/", 1)[1])
        prefix = f"/bigquery/v2/projects/{self.project}/datasets/{self.dataset}/tables/"
        if method == "DELETE" and path.startswith(prefix):
            if self.tables.pop(path[len(prefix) :], None) is None:
                return _error(404, "notFound", f"Not found: Table {path[len(prefix) :]}")
            return Response(status_code=204)
        return _error(404, "notFound", f"Not found: {method} {path}")

    def _upload(self, content_type: str, body: bytes) -> Response:
        header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(header + body)
        parts = list(message.iter_parts()) if message.is_multipart() else []
        if message.get_content_type() != "multipart/related" or len(parts) != 2:
            return _error(400, "invalid", "a multipart/related body with 2 parts expected")
        if parts[0].get_content_type() != "application/json":
            return _error(400, "invalid", "the first part must be the JSON job")
        try:
            job = json.loads(bytes(parts[0].get_payload(decode=True)))
        except ValueError:
            return _error(400, "parseError", "Invalid JSON payload received.")
        return self._insert(job, bytes(parts[1].get_payload(decode=True) or b""))

    def _insert(self, job: Any, data: bytes | None) -> Response:
        reference = job.get("jobReference", {}) if isinstance(job, dict) else {}
        job_id, config = reference.get("jobId"), job.get("configuration", {})
        if not isinstance(job_id, str) or not re.fullmatch(r"[\w-]{1,1024}", job_id):
            return _error(400, "invalid", "Invalid job ID")
        if job_id in self.jobs:
            return _error(409, "duplicate", f"Already Exists: Job {self.project}:{job_id}")
        if (data is None) == ("load" in config):
            return _error(400, "invalid", "load jobs (only) go through the upload URI")
        error = self._load(config["load"], data or b"") if data is not None else None
        if data is None:
            error = self._query(config.get("query", {}))
        status: dict[str, Any] = {"state": "RUNNING"}
        if error is not None:
            status["errorResult"] = {"reason": error[0], "message": error[1]}
            status["errors"] = [status["errorResult"]]
        resource = {"jobReference": reference, "configuration": config, "status": status}
        self.jobs[job_id] = resource
        self._polls[job_id] = self.polls_to_finish
        return JSONResponse(resource)

    def _get(self, job_id: str) -> Response:
        job = self.jobs.get(job_id)
        if job is None:
            return _error(404, "notFound", f"Not found: Job {self.project}:{job_id}")
        if self._polls[job_id] > 0:
            self._polls[job_id] -= 1
        else:
            job["status"]["state"] = "DONE"
        return JSONResponse(job)

    # --- the service ----------------------------------------------------------------------

    def _load(self, load: dict[str, Any], data: bytes) -> tuple[str, str] | None:
        table = load.get("destinationTable", {})
        if load.get("sourceFormat") != "NEWLINE_DELIMITED_JSON":
            return "invalid", "sourceFormat NEWLINE_DELIMITED_JSON expected"
        if (table.get("projectId"), table.get("datasetId")) != (self.project, self.dataset):
            return "notFound", f"Not found: Dataset {table.get('datasetId')}"
        fields = {f["name"]: f for f in load.get("schema", {}).get("fields", [])}
        rows = [json.loads(line) for line in data.decode().splitlines() if line.strip()]
        if len(rows) > self.max_rows:
            return "invalid", "too many rows in one load"
        for row in rows:
            unknown = set(row) - set(fields)
            missing = {n for n, f in fields.items() if f.get("mode") == "REQUIRED"} - set(row)
            if unknown or missing:
                return "invalid", f"Error while reading data: {unknown or missing}"
        name = table.get("tableId", "")
        if name not in self.tables and load.get("createDisposition") != "CREATE_IF_NEEDED":
            return "notFound", f"Not found: Table {name}"
        if load.get("writeDisposition") == "WRITE_TRUNCATE" or name not in self.tables:
            self.tables[name] = []
        self.tables[name].extend(rows)
        return None

    def _query(self, query: dict[str, Any]) -> tuple[str, str] | None:
        sql = str(query.get("query", ""))
        if query.get("useLegacySql") is not False:
            return "invalidQuery", "legacy SQL is not what the destination should send"
        if (match := _CREATE.fullmatch(sql)) is not None:
            self.tables.setdefault(match["table"], [])
            return None
        match = _MERGE.fullmatch(sql) or _DELETE.fullmatch(sql)
        if match is None:
            return "invalidQuery", f"Syntax error: unexpected statement {sql[:60]!r}"
        if match["table"] not in self.tables:
            return "notFound", f"Not found: Table {self.project}:{self.dataset}.{match['table']}"
        if sql.startswith("DELETE"):
            params = {p["name"]: p for p in query.get("queryParameters", [])}
            values = params.get("persons", {}).get("parameterValue", {}).get("arrayValues", [])
            self._delete(match["table"], (v["value"] for v in values))
            return None
        if match["stage"] not in self.tables:
            return "notFound", f"Not found: Table {match['stage']}"
        stage = self.tables[match["stage"]]
        self._merge(match["table"], stage, on=match["on"], rest=match["rest"], guard=_GUARD)
        return None
