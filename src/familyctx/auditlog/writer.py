"""Group commit for the Merkle log: many concurrent ``append`` calls, one transaction per batch.

Fail closed: ``await writer.append(...)`` returns the record's sequence number only after the
transaction holding it has COMMITTED, and raises :class:`~.errors.AuditWriteFailed` otherwise. A batch
is all or nothing (one transaction: tree-state lock, entries, the caller's index rows, frontier), so a
failure fails every record in it and none is partly visible. After a failure the connection is thrown
away, so the next batch starts on a fresh one (a restarted database is picked up without a restart of
the service).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from familyctx.auditlog.errors import AuditWriteFailed

if TYPE_CHECKING:
    from familyctx.auditlog.heads import SignedTreeHead, TreeHeadSigner
    from familyctx.auditlog.log import MerkleLog, PreparedEntry

__all__ = ["IndexWriter", "LogWriter", "WriterStats", "issue_tree_heads"]

_logger = logging.getLogger("familyctx.auditlog.writer")

#: Called inside the batch's transaction with ``[(seq, record), ...]`` to insert the caller's index rows.
IndexWriter = Callable[[sa.Connection, list[tuple[int, Mapping[str, Any]]]], None]

_STOP = object()
_Queued = tuple["PreparedEntry", Mapping[str, Any], "asyncio.Future[int]"]


@dataclass(slots=True)
class WriterStats:
    """Counters since start: committed ``records`` and ``batches``, ``largest_batch``, ``failed_batches``
    and ``failed_records`` (what callers got AuditWriteFailed for)."""

    records: int = 0
    batches: int = 0
    largest_batch: int = 0
    failed_batches: int = 0
    failed_records: int = 0

    @property
    def mean_batch(self) -> float:
        """Mean committed batch size (0.0 before the first)."""
        return self.records / self.batches if self.batches else 0.0


class LogWriter:
    """Async group-committing writer for one :class:`~.log.MerkleLog`.

    ``index``: optional :data:`IndexWriter` run in each batch's transaction; ``max_batch``: most records
    per transaction; ``timeout_seconds``: longest an ``append`` waits for its commit before raising
    :class:`~.errors.AuditWriteFailed` (the record may still commit later: fail closed, never the
    reverse). Database work runs in a worker thread; one batch is in flight at a time, and what arrives
    meanwhile forms the next batch.
    """

    def __init__(
        self,
        log: MerkleLog,
        *,
        index: IndexWriter | None = None,
        max_batch: int = 256,
        timeout_seconds: float = 30.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._log = log
        self._index = index
        self._max_batch = max_batch
        self._timeout = timeout_seconds
        self._queue: asyncio.Queue[Any] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.stats = WriterStats()

    def start(self) -> None:
        """Start the background task on the running event loop (``append`` starts it when needed)."""
        if self._task is None:
            self._closing = False
            self._queue = asyncio.Queue()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="familyctx-log-writer")

    async def append(self, record_class: str, record: Mapping[str, Any]) -> int:
        """Queue one record and wait for its batch to commit; returns its sequence number.

        Raises :class:`~.errors.AuditWriteFailed` when it was not committed (database error, timeout,
        writer closing), ``ValueError`` for a record that cannot be canonicalised (nothing written)."""
        prepared = self._log.prepare(record_class, record)
        if self._closing:
            raise AuditWriteFailed("log writer is closed")
        self.start()
        assert self._queue is not None
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((prepared, record, future))
        try:
            return await asyncio.wait_for(asyncio.shield(future), self._timeout)
        except TimeoutError:
            _logger.error("audit log append timed out after %.1fs", self._timeout)
            raise AuditWriteFailed("audit log commit timed out") from None

    async def close(self) -> None:
        """Stop accepting records, commit what is queued, and stop the background task."""
        self._closing = True
        if self._task is None or self._queue is None:
            return
        self._queue.put_nowait(_STOP)
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def _run(self) -> None:
        assert self._queue is not None
        queue = self._queue
        stop = False
        while not stop:
            item = await queue.get()
            if item is _STOP:
                break
            batch = [item]
            while len(batch) < self._max_batch and not queue.empty():
                nxt = queue.get_nowait()
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            await self._commit(batch)

    async def _commit(
        self, batch: list[tuple[PreparedEntry, Mapping[str, Any], asyncio.Future[int]]]
    ) -> None:
        try:
            seqs = await asyncio.to_thread(self._write, [(p, r) for p, r, _ in batch])
        except Exception as exc:  # any failure fails the batch (fail closed)
            self.stats.failed_batches += 1
            self.stats.failed_records += len(batch)
            _logger.error("audit log batch failed records=%d error=%s", len(batch), type(exc).__name__)
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(AuditWriteFailed("audit log unavailable"))
            return
        self.stats.records += len(batch)
        self.stats.batches += 1
        self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        for seq, (_, _, future) in zip(seqs, batch, strict=True):
            if not future.done():
                future.set_result(seq)

    def _write(self, items: list[tuple[PreparedEntry, Mapping[str, Any]]]) -> list[int]:
        with self._log.engine.connect() as conn:
            try:
                with conn.begin():  # commits on exit, rolls back on error
                    seqs = self._log.append_prepared(conn, [p for p, _ in items])
                    if self._index is not None:
                        self._index(conn, [(s, r) for s, (_, r) in zip(seqs, items, strict=True)])
            except BaseException:
                if not conn.invalidated:
                    conn.invalidate()  # the next batch gets a fresh connection
                raise
        return seqs


async def issue_tree_heads(
    log: MerkleLog,
    signer: TreeHeadSigner,
    *,
    interval_seconds: float,
    on_head: Callable[[SignedTreeHead], Awaitable[None] | None] | None = None,
) -> None:
    """Sign and store a tree head every ``interval_seconds`` while the log grows (run it as a task;
    cancel it to stop). Failures are logged and retried at the next tick, never raised."""
    while True:
        try:
            head = await asyncio.to_thread(log.sign_tree_head, signer)
        except Exception as exc:  # keep issuing; the next tick retries
            _logger.error("tree head not issued error=%s", type(exc).__name__)
        else:
            if on_head is not None:
                result = on_head(head)
                if asyncio.iscoroutine(result):
                    await result
        await asyncio.sleep(interval_seconds)
