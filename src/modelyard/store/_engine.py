"""Engine construction per database URI: SQLite (WAL, busy timeout) or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import ConnectionPoolEntry

from modelyard.core.errors import InvalidInput

SQLITE_BUSY_TIMEOUT_MS = 30_000


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    # pysqlite's own transaction handling would defer BEGIN; let SQLAlchemy emit it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


READ_ONLY_OPTION = "modelyard_read_only"


def _sqlite_on_begin(conn: Any) -> None:
    # Writers take the write lock up front (BEGIN IMMEDIATE), so two writers queue on the
    # busy timeout instead of one failing with "database is locked" on lock upgrade.
    # Readers begin deferred, so in WAL mode they never wait for a writer.
    if conn.get_execution_options().get(READ_ONLY_OPTION):
        conn.exec_driver_sql("BEGIN")
    else:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_sql_engine(uri: str) -> Engine:
    """An engine for ``sqlite:///path`` or ``postgresql+psycopg://…``.

    Raises:
        InvalidInput: the URI is malformed or names an unsupported database.
    """
    try:
        url = make_url(uri)
    except ArgumentError as exc:
        raise InvalidInput(f"malformed store URI {uri!r}: {exc}") from exc
    backend = url.get_backend_name()
    if backend == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    if backend == "postgresql":
        if url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)
    raise InvalidInput(
        f"unsupported store URI {uri!r}: use sqlite:///path or postgresql+psycopg://…"
    )
