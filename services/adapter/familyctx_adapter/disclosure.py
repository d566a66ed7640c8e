"""The adapter's own disclosure log: every answer it gives is recorded, tamper-evidently, before it leaves.

So that a council can audit access to its data without trusting the gateway, each adapter keeps a
Merkle log (:mod:`familyctx.auditlog`, RFC 9162 hashing) of what it released, to whom and why: one record
per FindPeople / GetFamilyContext answer and per refusal by its sharing policy
(:mod:`.disclosure_record` for the content). Records are group-committed by a
:class:`~familyctx.auditlog.log.LogWriter` together with their index rows (:mod:`.disclosure_schema`);
the handler awaits the commit and only then returns the answer. When the commit fails (database down,
locked, timed out) the call ends UNAVAILABLE "disclosure log unavailable" and nothing is sent
(:class:`~familyctx_adapter.errors.DisclosureLogUnavailable`); the log line says so with the request id.

Tree heads are signed with the council's own key (``disclosure_log.signing_key_file``, log id
``adapter-<GSS>``) every ``tree_head_interval_seconds`` while the log grows, and once more at shutdown;
``familyctx audit export-heads`` copies them out for the council's IG team to keep.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog.engine import create_log_engine
from familyctx.auditlog.errors import AuditWriteFailed, TreeHeadKeyError
from familyctx.auditlog.log import LogWriter, MerkleLog, SignedTreeHead, TreeHeadSigner
from familyctx.auditlog.writer import issue_tree_heads
from familyctx_adapter import disclosure_schema as schema
from familyctx_adapter.disclosure_index_check import index_rows
from familyctx_adapter.disclosure_record import record_summary
from familyctx_adapter.errors import AdapterConfigError, DisclosureLogUnavailable
from familyctx_adapter.settings import AdapterSettings

__all__ = ["DisclosureLog", "load_disclosure_log", "log_id_for"]

log = logging.getLogger("familyctx.adapter.disclosure")

#: Longest a handler waits for its record's commit before answering UNAVAILABLE.
COMMIT_TIMEOUT_SECONDS = 1.5


def log_id_for(gss_code: str) -> str:
    """The log id of a council adapter's disclosure log, as signed into its tree heads: ``adapter-<GSS>``."""
    return f"adapter-{gss_code}"


def _safe(value: str) -> str:
    return "".join(c for c in value[:64] if c.isprintable() and not c.isspace()) or "-"


def write_index(conn: sa.Connection, rows: list[tuple[int, Mapping[str, Any]]]) -> None:
    """Insert the ``disclosure_index`` and ``disclosure_people`` rows of committed-together records
    (``(seq, record)`` pairs, records as :func:`.disclosure_record.disclosure_record` makes them) inside
    the batch's transaction (rows from :func:`.disclosure_index_check.index_rows`, the same builder
    ``familyctx audit verify`` checks the index with)."""
    index, people = [], []
    for seq, record in rows:
        built = index_rows(seq, record)
        index += built[schema.disclosure_index]
        people += built[schema.disclosure_people]
    if index:
        conn.execute(schema.disclosure_index.insert(), index)
    if people:
        conn.execute(schema.disclosure_people.insert(), people)


class DisclosureLog:
    """One adapter's disclosure log: engine, Merkle log, group-committing writer, tree-head signer.

    ``database_url``: SQLAlchemy URL of the log; ``signer``: the council's tree-head signer;
    ``auto_migrate``: apply migrations at :meth:`start` (else refuse to start on an old schema);
    ``tree_head_interval_seconds``: signing cadence. Build from settings with :func:`load_disclosure_log`.
    """

    def __init__(
        self,
        database_url: str,
        signer: TreeHeadSigner,
        *,
        auto_migrate: bool,
        tree_head_interval_seconds: float = 60.0,
        commit_timeout_seconds: float = COMMIT_TIMEOUT_SECONDS,
    ) -> None:
        self.engine = create_log_engine(database_url)
        self.log = MerkleLog(self.engine, schema.log)
        self.signer = signer
        self.auto_migrate = auto_migrate
        self.interval = tree_head_interval_seconds
        self.writer = LogWriter(self.log, index=write_index, timeout_seconds=commit_timeout_seconds)
        self._heads: asyncio.Task[None] | None = None

    @property
    def log_id(self) -> str:
        """The id signed into tree heads (``adapter-<GSS>``)."""
        return self.signer.log_id

    def prepare_schema(self) -> None:
        """Apply the migrations (``auto_migrate``) or check the schema is at head (blocking).

        Raises :class:`AdapterConfigError` when the schema is behind (naming the migrate command) or the
        database cannot be reached (naming the setting, never the URL: it may hold a password)."""
        try:
            status = schema.upgrade(self.engine) if self.auto_migrate else schema.schema_status(self.engine)
        except sa.exc.SQLAlchemyError as exc:
            raise AdapterConfigError(
                f"disclosure_log.database_url: the disclosure log database cannot be used "
                f"({type(exc).__name__}); the adapter does not answer without it"
            ) from None
        if not status.at_head:
            raise AdapterConfigError(
                "disclosure_log.database_url: the disclosure log schema is at "
                f"{status.current or 'nothing'}, this adapter needs {status.head}; run "
                "`familyctx adapter migrate --config <file>` (or set disclosure_log.auto_migrate: true)"
            )

    async def start(self) -> None:
        """Prepare the schema (see :meth:`prepare_schema`), start the writer and the tree-head task."""
        await asyncio.to_thread(self.prepare_schema)
        self.writer.start()
        self._heads = asyncio.create_task(
            issue_tree_heads(self.log, self.signer, interval_seconds=self.interval), name="disclosure-heads"
        )

    async def commit(self, records: Sequence[tuple[str, Mapping[str, Any]]], *, request_id: str = "") -> None:
        """Commit ``records`` (``(record_class, record)`` pairs) and return once they are durable.

        Raises :class:`DisclosureLogUnavailable` when any of them was not committed (logged with the
        request id and counts only)."""
        for record_class, record in records:
            try:
                seq = await self.writer.append(record_class, record)
            except (AuditWriteFailed, ValueError) as exc:
                log.error(
                    "disclosure log unavailable request_id=%s %s error=%s",
                    _safe(request_id),
                    record_summary(record),
                    type(exc).__name__,
                )
                raise DisclosureLogUnavailable() from None
            log.info(
                "disclosure recorded request_id=%s seq=%d %s", _safe(request_id), seq, record_summary(record)
            )

    def sign_tree_head(self) -> SignedTreeHead:
        """Sign and store a tree head now unless the latest already covers the log (blocking)."""
        return self.log.sign_tree_head(self.signer)

    async def close(self) -> None:
        """Commit what is queued, stop the tree-head task, sign a last head, release connections."""
        await self.writer.close()
        if self._heads is not None:
            self._heads.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._heads
            self._heads = None
            try:
                await asyncio.to_thread(self.sign_tree_head)
            except Exception as exc:  # noqa: BLE001 - shutting down; the next start signs it
                log.warning("last tree head not signed error=%s", type(exc).__name__)
        self.engine.dispose()


def load_disclosure_log(settings: AdapterSettings) -> DisclosureLog:
    """The :class:`DisclosureLog` of ``settings.disclosure_log`` (signing key read now; no connection
    yet). Raises :class:`AdapterConfigError` naming the setting and file of an unusable signing key."""
    section = settings.disclosure_log
    try:
        signer = TreeHeadSigner(section.signing_key_file, log_id=log_id_for(settings.council.gss_code))
    except TreeHeadKeyError as exc:
        raise AdapterConfigError(f"disclosure_log.signing_key_file: {exc}") from None
    return DisclosureLog(
        section.database_url,
        signer,
        auto_migrate=section.migrate_on_start,
        tree_head_interval_seconds=section.tree_head_interval_seconds,
        commit_timeout_seconds=section.commit_timeout_seconds,
    )
