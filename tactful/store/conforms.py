"""A static proof, checked by mypy (``make lint``), that the SQLite and the PostgreSQL store
implement the whole store interface, the ports of ``tactful.store.ports`` included: a port
method missing or typed differently in either is a lint error. Nothing imports this module
at run time (``open_store`` answers ``Any``, which mypy would take on trust)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tactful.store.base import Reader, Store, Tx
    from tactful.store.postgres import PgReader, PgTx, PostgresStore
    from tactful.store.sqlite import SQLiteReader, SQLiteStore, SQLiteTx

    def _stores(sqlite: SQLiteStore, postgres: PostgresStore) -> tuple[Store, Store]:
        return sqlite, postgres

    def _readers(sqlite: SQLiteReader, postgres: PgReader) -> tuple[Reader, Reader]:
        return sqlite, postgres

    def _transactions(sqlite: SQLiteTx, postgres: PgTx) -> tuple[Tx, Tx]:
        return sqlite, postgres
