"""The ports a SQL transaction or snapshot hands out (``tactful.store.ports``), each on the
same connection, so what they read and write belongs to the caller's transaction."""

from __future__ import annotations

from tactful.store.dbapi import Conn
from tactful.store.deliveries import SqlDeliveries
from tactful.store.dialect import Dialect
from tactful.store.readmodels import SqlReadModels


class SqlPorts:
    conn: Conn
    dialect: Dialect

    @property
    def deliveries(self) -> SqlDeliveries:
        return SqlDeliveries(self.conn, self.dialect)

    @property
    def read_models(self) -> SqlReadModels:
        return SqlReadModels(self.conn, self.dialect)
