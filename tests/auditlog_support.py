"""Helpers for the Merkle log's tests: a log on a URL, and the appender run in child processes
(multiprocessing ``spawn`` imports this module by name, so the worker lives here, not in a test file)."""

from __future__ import annotations

import asyncio
import multiprocessing.synchronize
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog.engine import create_log_engine
from familyctx.auditlog.heads import TreeHeadSigner
from familyctx.auditlog.log import LogWriter, MerkleLog, insert_rows
from familyctx.auditlog.tables import LogTables, log_tables

__all__ = ["append_in_process", "make_log", "tables_for_tests"]


def tables_for_tests() -> tuple[sa.MetaData, LogTables, sa.Table]:
    """The log's tables under prefix ``audit`` and an index table ``audit_test_index(seq, request_id)``
    like the ones the gateway and adapters keep beside their logs."""
    metadata = sa.MetaData()
    tables = log_tables(metadata, "audit")
    index = sa.Table(
        "audit_test_index",
        metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
    )
    return metadata, tables, index


def make_log(url: str) -> tuple[MerkleLog, sa.Table]:
    """A :class:`MerkleLog` on ``url`` with its schema and the test index table created."""
    metadata, tables, index = tables_for_tests()
    engine = create_log_engine(url)
    metadata.create_all(engine)
    log = MerkleLog(engine, tables)
    log.create_schema()
    return log, index


def append_in_process(
    url: str,
    key_path: str,
    worker: int,
    count: int,
    wave: int,
    barrier: multiprocessing.synchronize.Barrier,
    results: Any,
) -> None:
    """Child process: append ``count`` records through a :class:`LogWriter` (``wave`` concurrent
    appends at a time, so batches form), inserting index rows in the same transactions, and sign a tree
    head after each wave. Puts ``(worker, seqs, largest_batch)`` on ``results``."""
    _, tables, index = tables_for_tests()
    engine = create_log_engine(url)
    log = MerkleLog(engine, tables)
    signer = TreeHeadSigner(key_path, log_id="familyctx-test")

    def write_index(conn: sa.Connection, rows: list[tuple[int, Any]]) -> None:
        insert_rows(conn, index, [{"seq": seq, "request_id": rec["request_id"]} for seq, rec in rows])

    async def run() -> list[int]:
        writer = LogWriter(log, index=write_index, max_batch=64)
        seqs: list[int] = []
        for start in range(0, count, wave):
            batch = [
                writer.append("access", {"request_id": f"w{worker}-r{i}", "worker": worker, "i": i})
                for i in range(start, min(start + wave, count))
            ]
            seqs += await asyncio.gather(*batch)
            await asyncio.to_thread(log.sign_tree_head, signer)
        await writer.close()
        results.put((worker, seqs, writer.stats.largest_batch))
        return seqs

    barrier.wait(timeout=120)
    try:
        asyncio.run(run())
    finally:
        engine.dispose()
