"""The ports a SQL transaction or snapshot hands out (``tactful.store.ports``), each on the
same connection, so what they read and write belongs to the caller's transaction."""

from __future__ import annotations

from tactful.store.dbapi import Conn
from tactful.store.deliveries import SqlDeliveries
from tactful.store.dialect import Dialect
from tactful.store.readmodels import SqlReadModels
from tactful.store.runs import SqlRuns
from tactful.store.watch import SqlWatch


class SqlPorts:
    conn: Conn
    dialect: Dialect

    @property
    def deliveries(self) -> SqlDeliveries:
        return SqlDeliveries(self.conn, self.dialect)

    @property
    def read_models(self) -> SqlReadModels:
        return SqlReadModels(self.conn, self.dialect)

    @property
    def runs(self) -> SqlRuns:
        return SqlRuns(self.conn, self.dialect)

    @property
    def watch(self) -> SqlWatch:
        return SqlWatch(self.conn, self.dialect)
