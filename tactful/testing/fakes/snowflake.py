"""A fake Snowflake SQL API (``/api/v2/statements``), one ASGI app.

Every request needs ``Authorization: Bearer <JWT>`` with ``X-Snowflake-Authorization-Token-
Type: KEYPAIR_JWT``; the JWT must verify (RS256) with the user's public key, ``iss`` =
``ACCOUNT.USER.SHA256:<fingerprint>``, ``sub`` = ``ACCOUNT.USER``, at most one hour (else 401
``390144``). ``POST /api/v2/statements`` checks ``database``/``schema`` (and ``warehouse``/
``role`` when configured), that ``bindings`` number the ``?`` placeholders (``TEXT``), and
runs the statement when submitted; it answers 202 (``333334``, a ``statementHandle``)
``polls_to_finish`` times on ``GET /api/v2/statements/{handle}`` before 200 (``090001``), or
422 with ``sqlState`` for an unknown statement or a missing table. ``fail_next`` injects
statuses (429 with ``Retry-After``).

Understood SQL (the shapes the destination emits): ``CREATE TABLE IF NOT EXISTS``, ``MERGE
INTO events`` on ``key`` / ``persons_current`` on ``person_id`` from ``SELECT columnN AS …
FROM VALUES (?, …), …`` (update guarded by ``updated_at`` if the statement says so), ``DELETE
FROM … WHERE person_id IN (?, …)``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tactful.testing.fakes.warehouse import FakeWarehouse

_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) \((.+)\)", re.S)
_MERGE = re.compile(
    r"MERGE INTO (?P<table>\w+) AS t USING \(SELECT (?P<columns>.+?) FROM VALUES (?P<rows>.+?)\) "
    r"AS s ON t\.(?P<on>\w+) = s\.(?P=on) (?P<rest>.+)", re.S
)  # fmt: skip
_DELETE = re.compile(r"DELETE FROM (?P<table>\w+) WHERE person_id IN \((?P<marks>[?, ]+)\)")
_GUARD = "WHEN MATCHED AND TO_TIMESTAMP_TZ(s.updated_at) >= t.updated_at THEN UPDATE"
_JSON = {"properties", "identifiers", "state"}


def _error(status: int, code: str, message: str, state: str = "") -> JSONResponse:
    body = {"code": code, "message": message} | ({"sqlState": state} if state else {})
    return JSONResponse(body, status)


class FakeSnowflake(FakeWarehouse):
    def __init__(
        self,
        *,
        public_key: Any,
        account: str = "XY12345",
        user: str = "LOADER",
        database: str = "ANALYTICS",
        schema: str = "TACTFUL",
        warehouse: str | None = None,
        role: str | None = None,
        polls_to_finish: int = 1,
        max_rows_per_statement: int = 200,
    ) -> None:
        super().__init__(max_rows=max_rows_per_statement)
        der = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        fp = "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()
        self.public_key = public_key
        self.subject = f"{account.upper()}.{user.upper()}"
        self.issuer = f"{self.subject}.{fp}"
        self.context = {"database": database, "schema": schema}
        self.context |= {k: v for k, v in (("warehouse", warehouse), ("role", role)) if v}
        self.polls_to_finish = polls_to_finish
        self.statements: list[dict[str, Any]] = []  # accepted request bodies
        self.claims: list[dict[str, Any]] = []
        self._running: dict[str, int] = {}
        self.app = Starlette(
            routes=[
                Route("/api/v2/statements", self._submit, methods=["POST"]),
                Route("/api/v2/statements/{handle}", self._status, methods=["GET"]),
            ]
        )

    # --- HTTP -----------------------------------------------------------------------------

    async def _submit(self, request: Request) -> Response:
        return await self._serve(request, lambda r, body: self._gate(r) or self._execute(body))

    async def _status(self, request: Request) -> Response:
        with self.lock:
            handle = request.path_params["handle"]
            response = self._gate(request) or self._poll(handle)
            self._record(request, b"", response.status_code)
        return response

    def _gate(self, request: Request) -> Response | None:
        headers = request.headers
        scheme, _, token = headers.get("authorization", "").partition(" ")
        try:
            if scheme != "Bearer" or headers.get("x-snowflake-authorization-token-type") != (
                "KEYPAIR_JWT"
            ):
                raise jwt.InvalidTokenError("Bearer KEYPAIR_JWT expected")
            claims = jwt.decode(token, self.public_key, algorithms=["RS256"],
                                issuer=self.issuer, options={"require": ["iss", "sub", "iat",
                                "exp"]})  # fmt: skip
            if claims["sub"] != self.subject or claims["exp"] - claims["iat"] > 3600:
                raise jwt.InvalidTokenError("bad sub or lifetime")
        except jwt.PyJWTError as e:
            return _error(401, "390144", f"JWT token is invalid. ({e})")
        self.claims.append(claims)
        return self._injected(lambda status: _error(status, "390000", f"Injected {status}."))

    def _poll(self, handle: str) -> Response:
        if handle not in self._running:
            return _error(404, "333333", f"Statement {handle} not found")
        if self._running[handle] > 0:
            self._running[handle] -= 1
            return self._pending(handle)
        return self._done(handle)

    def _pending(self, handle: str) -> Response:
        body = {"code": "333334", "message": "Asynchronous execution in progress.",
                "statementHandle": handle,
                "statementStatusUrl": f"/api/v2/statements/{handle}"}  # fmt: skip
        return JSONResponse(body, 202)

    def _done(self, handle: str) -> Response:
        body = {"code": "090001", "sqlState": "00000", "statementHandle": handle,
                "message": "Statement executed successfully.", "data": [["0"]],
                "statementStatusUrl": f"/api/v2/statements/{handle}"}  # fmt: skip
        return JSONResponse(body)

    # --- the service ----------------------------------------------------------------------

    def _execute(self, raw: bytes) -> Response:
        try:
            body = json.loads(raw)
            sql = str(body["statement"])
        except (ValueError, KeyError, TypeError):
            return _error(400, "390142", "Incoming request does not contain a valid payload.")
        for key, value in self.context.items():
            if body.get(key) != value:
                return _error(422, "002043", f"{key} {body.get(key)!r} does not exist", "02000")
        bindings = body.get("bindings") or {}
        if sorted(bindings, key=int) != [str(i) for i in range(1, sql.count("?") + 1)]:
            return _error(422, "002049", "Bind variables do not match the placeholders", "07001")
        if any(b.get("type") != "TEXT" for b in bindings.values()):
            return _error(422, "002050", "Unsupported bind type", "22000")
        values = [bindings[str(i)]["value"] for i in range(1, len(bindings) + 1)]
        error = self._run(sql, values)
        if error is not None:
            return _error(422, "002003", error[1], error[0])
        self.statements.append(body)
        handle = str(uuid.uuid4())
        self._running[handle] = self.polls_to_finish
        return self._pending(handle) if self.polls_to_finish else self._done(handle)

    def _run(self, sql: str, values: list[Any]) -> tuple[str, str] | None:
        if (create := _CREATE.fullmatch(sql)) is not None:
            self.tables.setdefault(create[1], [])
            return None
        match = _MERGE.fullmatch(sql) or _DELETE.fullmatch(sql)
        if match is None:
            return "42000", f"SQL compilation error: unexpected statement {sql[:60]!r}"
        if match["table"] not in self.tables:
            return "42S02", f"Object '{match['table'].upper()}' does not exist or not authorized."
        if sql.startswith("DELETE"):
            self._delete(match["table"], values)
            return None
        names = [c.split(" AS ")[1] for c in match["columns"].split(", ")]
        count = len(re.findall(r"\([?, ]+\)", match["rows"]))
        if count > self.max_rows:
            return "54000", "too many rows in one statement"
        sources = [_row(names, values[n * len(names) : (n + 1) * len(names)]) for n in range(count)]
        self._merge(match["table"], sources, on=match["on"], rest=match["rest"], guard=_GUARD)
        return None


def _row(names: list[str], values: list[Any]) -> dict[str, Any]:
    """One ``VALUES`` row of bound texts as the table keeps it (JSON columns parsed)."""
    row = dict(zip(names, values, strict=True))
    for name in _JSON & set(row):
        row[name] = json.loads(row[name])
    if row.get("segment") == "":
        row["segment"] = None
    return row
