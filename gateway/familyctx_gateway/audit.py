"""The gateway's audit log: one record per request that asks for or returns personal data, committed
before any personal data leaves the gateway (fail closed), in a tamper-evident Merkle-tree log.

Each record (:class:`~familyctx_gateway.audit_record.AuditEvent`, stored as canonical JSON) is one entry
of the log kept by :mod:`familyctx.auditlog` (RFC 9162 hashing, signed tree heads), and its index rows
(``audit_events``, ``audit_subjects``, ``audit_councils``, break-glass rows) are written in the same
transaction, by one group-committing :class:`~familyctx.auditlog.LogWriter` per process: many
concurrent requests share one commit, and ``await store.record(event)`` returns only once the record is
committed (else :class:`AuditWriteFailed`: the caller answers 503 and returns no data). Several gateway
processes append to one database (PostgreSQL) and still build one tree without gaps or forks.

SQLite by default, PostgreSQL in production (SQLAlchemy 2 Core); the schema is managed by Alembic
(:mod:`familyctx_gateway.migrations`). A background task signs a tree head every
``audit.tree_head_interval_seconds`` when the log grew, and once more at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from familyctx.auditlog import (
    READ_ONLY,
    AuditWriteFailed,
    LogWriter,
    MerkleLog,
    SignedTreeHead,
    TreeHeadKeyError,
    TreeHeadSigner,
    create_log_engine,
)
from familyctx.auditlog.writer import issue_tree_heads
from familyctx_gateway.audit_record import (
    AuditEvent,
    AuditOutcome,
    CouncilOutcome,
    RecordClass,
    Subject,
    SubjectKind,
    audit_payload,
    index_rows,
)
from familyctx_gateway.audit_schema import (
    audit_councils,
    audit_events,
    audit_log_tables,
    audit_reviews,
    audit_subjects,
    break_glass_grants,
    break_glass_notifications,
    metadata,
)
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.migrations import ensure_schema, upgrade_to_head
from familyctx_gateway.settings import AuditSettings

__all__ = [
    "AuditEvent",
    "AuditOutcome",
    "AuditStore",
    "AuditWriteFailed",
    "CouncilOutcome",
    "RecordClass",
    "Subject",
    "SubjectKind",
    "audit_events",
    "load_tree_head_signer",
    "metadata",
    "write_index",
]

log = logging.getLogger("familyctx_gateway.audit")

#: Insert order of index tables in a batch (grants before the notifications that reference them).
_INDEX_ORDER = (
    audit_events,
    audit_subjects,
    audit_councils,
    break_glass_grants,
    break_glass_notifications,
    audit_reviews,
)

#: Seconds a PostgreSQL connection attempt may take before the write fails (503), not hangs.
_CONNECT_TIMEOUT_SECONDS = 5
#: Seconds a SQLite writer waits for another process's write lock (group commit keeps waits short).
_SQLITE_BUSY_TIMEOUT_SECONDS = 5.0


#: Each index table's column lengths by column key (None: unbounded), filled on first use by ``_fit``.
_LENGTHS: dict[sa.Table, dict[str, int | None]] = {}


def _fit(table: sa.Table, row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with every string cut to its column's length and without NUL characters (PostgreSQL text
    cannot hold them): one odd value (an over-long claim, a council's error text) must not fail the
    whole group commit it shares with other requests. The payload keeps the value as it was.
    Raises ``KeyError`` for a string value of a column ``table`` does not have."""
    lengths = _LENGTHS.get(table)
    if lengths is None:
        lengths = _LENGTHS[table] = {c.key: getattr(c.type, "length", None) for c in table.c}
    for name, value in row.items():
        if not isinstance(value, str):
            continue
        length = lengths[name]
        if "\x00" in value:
            row[name] = value = value.replace("\x00", "")
        if length is not None and len(value) > length:
            row[name] = value[:length]
    return row


def write_index(conn: sa.Connection, items: list[tuple[int, Mapping[str, Any]]]) -> None:
    """The :class:`~familyctx.auditlog.LogWriter` index hook: insert the index rows of every ``(seq,
    payload)`` of the batch (:func:`~familyctx_gateway.audit_record.index_rows`) inside its transaction."""
    rows: dict[sa.Table, list[dict[str, Any]]] = defaultdict(list)
    for seq, payload in items:
        for table, table_rows in index_rows(seq, payload).items():
            rows[table].extend(_fit(table, row) for row in table_rows)
    for table in _INDEX_ORDER:
        if rows[table]:
            conn.execute(table.insert(), rows[table])


def load_tree_head_signer(settings: AuditSettings) -> TreeHeadSigner | None:
    """The tree-head signer for ``settings.signing_key_file`` (None when not set). Raises
    :class:`~familyctx_gateway.errors.GatewayConfigError` when the file cannot be used."""
    if settings.signing_key_file is None:
        return None
    try:
        return TreeHeadSigner(settings.signing_key_file, log_id=settings.log_id)
    except TreeHeadKeyError as exc:
        raise GatewayConfigError("gateway settings", [f"audit.signing_key_file: {exc}"]) from None


class AuditStore:
    """The gateway's audit log on ``settings.database_url`` (an :class:`AuditSettings`, or a URL).

    No connection is opened until :meth:`prepare`, :meth:`create_schema` or a write. ``signer``: signs
    tree heads (None: none are signed). ``writer_timeout_seconds``: longest a request waits for its
    record's commit before it is answered 503.
    """

    def __init__(
        self,
        settings: AuditSettings | str,
        *,
        signer: TreeHeadSigner | None = None,
        writer_timeout_seconds: float = 10.0,
    ) -> None:
        self.settings = (
            settings if isinstance(settings, AuditSettings) else AuditSettings(database_url=settings)
        )
        url = sa.make_url(self.settings.database_url)
        kwargs: dict[str, Any] = {}
        if url.get_backend_name() == "postgresql":
            kwargs["connect_args"] = {"connect_timeout": _CONNECT_TIMEOUT_SECONDS}
        else:
            kwargs["busy_timeout_seconds"] = _SQLITE_BUSY_TIMEOUT_SECONDS
        self.engine = create_log_engine(url, **kwargs)
        self.tables = audit_log_tables
        self.log = MerkleLog(self.engine, self.tables)
        self.writer = LogWriter(self.log, index=write_index, timeout_seconds=writer_timeout_seconds)
        self.signer = signer
        self._heads: asyncio.Task[None] | None = None

    # -- schema ---------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Start-up: upgrade the schema when ``audit.auto_migrate`` allows it, else check it is at head.
        Raises :class:`~familyctx_gateway.migrations.SchemaNotCurrent`, or SQLAlchemy errors when the
        database cannot be reached."""
        ensure_schema(self.engine, auto_migrate=self.settings.migrate_at_startup)

    def create_schema(self) -> None:
        """Upgrade the schema to head (tests, tools); same as ``familyctx gateway migrate``."""
        upgrade_to_head(self.engine)

    # -- lifecycle ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the group-commit writer and, with a signer, the tree-head task (on the running loop)."""
        self.writer.start()
        if self.signer is not None and self._heads is None:
            self._heads = asyncio.get_running_loop().create_task(
                issue_tree_heads(
                    self.log, self.signer, interval_seconds=self.settings.tree_head_interval_seconds
                ),
                name="familyctx-audit-tree-heads",
            )
        elif self.signer is None:
            log.warning("audit tree heads off: audit.signing_key_file is not set")

    async def close(self) -> None:
        """Commit what is queued, stop the tree-head task and sign a last tree head (shutdown)."""
        if self._heads is not None:
            self._heads.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heads
            self._heads = None
        await self.writer.close()
        if self.signer is not None:
            await self.sign_tree_head()

    async def sign_tree_head(self) -> SignedTreeHead | None:
        """Sign and store a tree head now if the log grew (needs a signer); None when it could not be."""
        if self.signer is None:
            return None
        try:
            return await asyncio.to_thread(self.log.sign_tree_head, self.signer)
        except (SQLAlchemyError, OSError) as exc:
            log.error("tree head not issued error=%s", type(exc).__name__)
            return None

    def dispose(self) -> None:
        """Close the engine's pooled connections."""
        self.engine.dispose()

    # -- writing and health ---------------------------------------------------------------------------

    async def record(self, event: AuditEvent) -> int:
        """Commit ``event`` as one log entry with its index rows; returns its sequence number.

        Raises :class:`AuditWriteFailed` when it is not committed (database down, timeout, shutting
        down): the caller must return no data (503)."""
        try:
            payload = audit_payload(event)
            return await self.writer.append(event.record_class.value, payload)
        except AuditWriteFailed:
            log.error("audit write failed request_id=%s", event.request_id)
            raise
        except ValueError as exc:  # a value canonical JSON refuses (never expected): still fail closed
            log.error("audit record refused request_id=%s error=%s", event.request_id, type(exc).__name__)
            raise AuditWriteFailed("audit record could not be serialised") from None

    def _ping(self) -> None:
        state = self.tables.tree_state
        with self.engine.connect().execution_options(**READ_ONLY) as conn:  # no write lock on SQLite
            conn.execute(sa.select(state.c.size).limit(1)).all()
            conn.execute(sa.select(audit_events.c.seq).limit(1)).all()

    async def ready(self) -> bool:
        """True when the log's tables answer a read."""
        try:
            await asyncio.to_thread(self._ping)
        except (SQLAlchemyError, OSError):
            return False
        return True
