"""The gateway's access audit log: one record per search or family-context request, committed before
any personal data leaves the gateway (fail closed).

SQLAlchemy 2 Core; SQLite by default, PostgreSQL in production. The schema is created with
``metadata.create_all`` at startup for now; Alembic migrations replace that in a later issue. The audit
database is the one place the gateway keeps personal data (query terms, subjects returned), because IG
officers must be able to answer "who looked at whose record, when and why".
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

__all__ = [
    "AuditEvent",
    "AuditOutcome",
    "AuditStore",
    "AuditWriteFailed",
    "audit_events",
    "audit_row",
    "metadata",
]

log = logging.getLogger("familyctx_gateway.audit")

metadata = sa.MetaData()

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user_sub", sa.String(200), nullable=False, index=True),
    sa.Column("user_name", sa.String(200), nullable=False),
    sa.Column("organisation", sa.String(20), nullable=False),
    sa.Column("roles", sa.JSON, nullable=False),
    sa.Column("client", sa.String(200), nullable=False),
    sa.Column("jti", sa.String(200), nullable=False),
    sa.Column("purpose", sa.String(40), nullable=True),
    sa.Column("case_reference", sa.String(64), nullable=True),
    sa.Column("endpoint", sa.String(100), nullable=False),
    sa.Column("query_terms", sa.JSON, nullable=False),
    sa.Column("subjects_returned", sa.JSON, nullable=False),
    sa.Column("councils", sa.JSON, nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=False),
    # Issue 3: the one role the request was authorised under (None when refused), and break glass.
    sa.Column("role", sa.String(40), nullable=True),
    sa.Column("break_glass", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("break_glass_id", sa.String(36), nullable=True),
)

#: Columns added after the first release of the table, added in place to an older audit database by
#: :meth:`AuditStore.create_schema` (until Alembic migrations arrive in a later issue).
_ADDED_COLUMNS = ("role", "break_glass", "break_glass_id")


#: One compiled INSERT, parameters bound per record (not ``insert().values(**row)``, a new statement
#: object per record).
_INSERT = audit_events.insert()


class AuditOutcome(StrEnum):
    success = "success"  # every council answered
    partial = "partial"  # answered, but at least one council was unavailable, timed out or failed
    denied = "denied"  # authenticated, but the role may not make this request
    error = "error"  # the request failed (e.g. unknown subject)


class AuditWriteFailed(Exception):
    """The audit record was not committed. The caller must return no data (503)."""


@dataclass(slots=True)
class AuditEvent:
    """One access. ``query_terms``: what was asked (personal data; audit DB only); ``subjects_returned``:
    ``[{"gss_code", "local_person_id"}]``; ``councils``: ``{gss_code: state}``. ``role``: the one role
    the gateway policy authorised the request under (None when refused); ``break_glass``: the request
    used the break-glass grant ``break_glass_id`` (the id is also kept when a grant was refused)."""

    request_id: str
    user_sub: str
    user_name: str
    organisation: str
    roles: list[str]
    client: str
    jti: str
    endpoint: str
    outcome: AuditOutcome
    http_status: int
    purpose: str | None = None
    case_reference: str | None = None
    query_terms: dict[str, Any] = field(default_factory=dict)
    subjects_returned: list[dict[str, str]] = field(default_factory=list)
    councils: dict[str, str] = field(default_factory=dict)
    occurred_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    role: str | None = None
    break_glass: bool = False
    break_glass_id: str | None = None


def audit_row(event: AuditEvent) -> dict[str, Any]:
    """The ``audit_events`` row for ``event`` (parameters for ``audit_events.insert()``)."""
    row = asdict(event)
    row["outcome"] = event.outcome.value
    return row


def _sqlite_durable_wal(dbapi_connection: Any, _record: Any) -> None:
    """Write-ahead log with a sync at every commit: one fsync per audit record instead of the rollback
    journal's two, and still durable across a crash or power loss (SQLite docs, "pragma synchronous")."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
    finally:
        cursor.close()


class AuditStore:
    """Writes :class:`AuditEvent` rows, each in its own committed transaction.

    Built from a SQLAlchemy URL; no connection is opened until :meth:`create_schema` or a write.
    Blocking database work runs in a worker thread so the event loop keeps serving.
    """

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        if parsed.drivername == "postgresql":  # psycopg 3 is the driver this project installs
            parsed = parsed.set(drivername="postgresql+psycopg")
        kwargs: dict[str, Any] = {}
        if parsed.get_backend_name() == "sqlite":
            # No pool_pre_ping: a SQLite connection is a file handle that cannot go stale, and the
            # extra ``SELECT 1`` on every checkout cost a statement per audit record.
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 5}
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        else:
            kwargs["pool_pre_ping"] = True  # a server may drop idle connections; find out before the write
        self.engine = sa.create_engine(parsed, **kwargs)
        if parsed.get_backend_name() == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_durable_wal)

    def create_schema(self) -> None:
        """Create the audit table if missing, and add the columns a table made by an earlier release
        lacks (``role``, ``break_glass``, ``break_glass_id``), until Alembic migrations arrive in a
        later issue."""
        metadata.create_all(self.engine, tables=[audit_events])
        present = {c["name"] for c in sa.inspect(self.engine).get_columns(audit_events.name)}
        missing = [audit_events.c[name] for name in _ADDED_COLUMNS if name not in present]
        if not missing:
            return
        dialect = self.engine.dialect
        with self.engine.begin() as conn:
            for column in missing:
                ddl = (
                    f"ALTER TABLE {audit_events.name} ADD COLUMN {column.name} {column.type.compile(dialect)}"
                )
                if column.server_default is not None:
                    default = column.server_default.arg.compile(dialect=dialect)  # type: ignore[attr-defined]
                    ddl += f" NOT NULL DEFAULT {default}"
                conn.execute(sa.text(ddl))
        log.info("audit table upgraded added_columns=%s", ",".join(c.name for c in missing))

    def _write(self, event: AuditEvent) -> None:
        with self.engine.begin() as conn:  # commits on exit, rolls back on error
            conn.execute(_INSERT, audit_row(event))

    async def record(self, event: AuditEvent) -> None:
        """Commit ``event``. Raises :class:`AuditWriteFailed` when it is not durably written."""
        try:
            await asyncio.to_thread(self._write, event)
        except (SQLAlchemyError, OSError) as exc:
            log.error("audit write failed request_id=%s error=%s", event.request_id, type(exc).__name__)
            raise AuditWriteFailed() from None

    def _ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.select(audit_events.c.id).limit(1)).all()

    async def ready(self) -> bool:
        """True when the audit table answers a read."""
        try:
            await asyncio.to_thread(self._ping)
        except (SQLAlchemyError, OSError):
            return False
        return True

    def dispose(self) -> None:
        self.engine.dispose()
