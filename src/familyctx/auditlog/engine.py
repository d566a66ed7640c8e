"""Engines for a log database: PostgreSQL (psycopg 3) or SQLite configured so that appends from several
processes serialise.

SQLite: every transaction starts with ``BEGIN IMMEDIATE`` (the SQLAlchemy "pysqlite serializable"
recipe: the driver's own transaction handling is switched off and SQLAlchemy's ``begin`` event emits
the ``BEGIN``), so a writer takes the database's write lock *before* reading the tree state, and a
second process waits (busy timeout) instead of building on a stale frontier. Write-ahead log with a
sync at every commit (durable across power loss). A long read (``verify_log``, proofs) opts out with
:data:`READ_ONLY` so it never holds the write lock: in WAL mode it reads a snapshot while appends go on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

__all__ = ["READ_ONLY", "SQLITE_BEGIN_OPTION", "configure_sqlite", "create_log_engine", "is_sqlite"]

#: Execution option read by the ``begin`` listener: "IMMEDIATE" (default) or "DEFERRED".
SQLITE_BEGIN_OPTION = "familyctx_sqlite_begin"
#: ``connection.execution_options(**READ_ONLY)`` before the first statement: a plain (deferred)
#: transaction on SQLite; no effect elsewhere.
READ_ONLY: dict[str, Any] = {SQLITE_BEGIN_OPTION: "DEFERRED"}

_CONFIGURED = "_familyctx_sqlite_configured"


def is_sqlite(engine: sa.Engine) -> bool:
    """True when ``engine`` talks to SQLite."""
    return engine.dialect.name == "sqlite"


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # the driver stops issuing its own BEGIN
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


def _on_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get(SQLITE_BEGIN_OPTION, "IMMEDIATE")
    conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def configure_sqlite(engine: sa.Engine) -> None:
    """Install the SQLite listeners described in the module docstring on ``engine`` (idempotent; no
    effect on other databases). Call it before the engine's first connection: connections already in the
    pool keep the driver's default transaction handling."""
    if not is_sqlite(engine) or getattr(engine, _CONFIGURED, False):
        return
    sa.event.listen(engine, "connect", _on_connect)
    sa.event.listen(engine, "begin", _on_begin)
    setattr(engine, _CONFIGURED, True)


def create_log_engine(url: str | sa.URL, *, busy_timeout_seconds: float = 30.0, **kwargs: Any) -> sa.Engine:
    """A SQLAlchemy engine for a log database at ``url``.

    ``postgresql://`` is read as ``postgresql+psycopg://`` (the driver this project installs) and gets
    ``pool_pre_ping`` (a server may drop idle connections). SQLite gets the listeners of
    :func:`configure_sqlite`, ``busy_timeout_seconds`` (how long a writer waits for another process's
    write lock) and its parent directory created. Extra ``kwargs`` go to ``sqlalchemy.create_engine``."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        connect_args = dict(kwargs.pop("connect_args", {}))
        connect_args.setdefault("check_same_thread", False)
        connect_args.setdefault("timeout", busy_timeout_seconds)
        kwargs["connect_args"] = connect_args
        if not parsed.database or parsed.database == ":memory:":
            kwargs.setdefault("poolclass", sa.pool.StaticPool)  # one shared in-memory database
        elif not parsed.database.startswith("file:"):
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, **kwargs)
        configure_sqlite(engine)
        return engine
    kwargs.setdefault("pool_pre_ping", True)
    return sa.create_engine(parsed, **kwargs)
