"""``GET /healthz`` (live: the process answers) and ``GET /readyz`` (ready: audit store and token keys).

Readiness never depends on a council: one council down must not take the gateway out of service. The
audit store must answer a read *and* be able to take a write (:func:`audit_store_writable`): an audit
store that cannot commit records fails every request that returns personal data (fail closed), so a
gateway whose store is write-locked or read-only is not ready. While the gateway drains (SIGTERM
received, :mod:`familyctx_gateway.stopping`) ``/readyz`` answers 503 "draining" at once, without probing
anything, and ``/healthz`` stays 200.
"""

from __future__ import annotations

import asyncio
import logging

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from familyctx_gateway.api.deps import Gateway
from familyctx_gateway.audit_schema import audit_log_tables
from familyctx_gateway.stopping import DRAINING_READINESS, is_stopping

router = APIRouter(tags=["health"])
log = logging.getLogger("familyctx_gateway.api.health")

#: Longest the write probe waits for the audit store's write lock (milliseconds).
WRITE_PROBE_TIMEOUT_MS = 500


def _no_op_write() -> str:
    """An UPDATE of no row of the log's tree-state table: refused by a read-only store, changes nothing."""
    state = audit_log_tables.tree_state.name
    return f"UPDATE {state} SET size = size WHERE id IS NULL"  # noqa: S608 - a fixed table name


def _probe_sqlite(engine: sa.Engine) -> None:
    raw = engine.raw_connection()  # the driver's own connection: autocommit, so BEGIN is ours
    try:
        cursor = raw.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout")
            row = cursor.fetchone()
            previous = int(row[0]) if row else 0
            cursor.execute(f"PRAGMA busy_timeout = {WRITE_PROBE_TIMEOUT_MS}")
            try:
                cursor.execute("BEGIN IMMEDIATE")  # the write lock every appender takes
                try:
                    cursor.execute(_no_op_write())
                finally:
                    cursor.execute("ROLLBACK")
            finally:
                cursor.execute(f"PRAGMA busy_timeout = {previous}")
        finally:
            cursor.close()
    finally:
        raw.close()


def _probe_postgresql(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        transaction = conn.begin()
        try:
            conn.exec_driver_sql(f"SET LOCAL statement_timeout = {WRITE_PROBE_TIMEOUT_MS * 4}")
            conn.exec_driver_sql(f"SET LOCAL lock_timeout = {WRITE_PROBE_TIMEOUT_MS * 4}")
            conn.exec_driver_sql(_no_op_write())  # a trivial write, refused by a read-only server
        finally:
            transaction.rollback()


def audit_store_writable(engine: sa.Engine) -> bool:
    """Whether the audit store ``engine`` can take a write now: SQLite: ``BEGIN IMMEDIATE`` within
    :data:`WRITE_PROBE_TIMEOUT_MS`, a no-op UPDATE, rolled back; PostgreSQL: a no-op UPDATE in a
    transaction with short statement and lock timeouts, rolled back. Nothing is written. Blocking;
    never raises (a failure is logged with its error type only)."""
    try:
        if engine.dialect.name == "sqlite":
            _probe_sqlite(engine)
        else:
            _probe_postgresql(engine)
    except Exception as exc:  # any driver or SQLAlchemy error: not writable
        log.warning("audit store write probe failed error=%s", type(exc).__name__)
        return False
    return True


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Live: the process answers."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready, or draining (shutting down)"}})
async def readyz(request: Request, gateway: Gateway) -> JSONResponse:
    """Ready: the audit store answers a read and can take a write, and the token keys are loaded.

    503 ``{"status": "draining", "detail": "draining: the gateway is shutting down"}`` from the moment
    the server is told to stop, so a load balancer stops routing to it while it finishes its work."""
    if is_stopping(request.app):
        return JSONResponse({"status": "draining", "detail": DRAINING_READINESS}, status_code=503)
    audit_ok = await gateway.audit.ready() and await asyncio.to_thread(
        audit_store_writable, gateway.audit.engine
    )
    keys_ok = gateway.jwks.loaded or await gateway.jwks.refresh()
    ready = audit_ok and keys_ok
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": {
                "audit_store": "ok" if audit_ok else "failing",
                "jwks": "ok" if keys_ok else "not loaded",
            },
        },
        status_code=200 if ready else 503,
    )
