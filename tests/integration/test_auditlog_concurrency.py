"""Several PROCESSES appending to one log at once keep one tree: gapless seqs, no lost record, no fork.

PostgreSQL: 4 processes x 500 records; SQLite file: 2 processes x 500. Each process appends through its
own :class:`LogWriter` (group commit) with index rows in the same transactions, and signs tree heads as
it goes, so heads from different processes must all fit the one recomputed tree.
"""

from __future__ import annotations

import multiprocessing
import queue
from pathlib import Path

import pytest
import sqlalchemy as sa
from auditlog_support import append_in_process, make_log

from familyctx.auditlog.heads import TreeHeadSigner
from familyctx.auditlog.verify import verify_log


def _run(url: str, key: Path, processes: int, per_process: int) -> dict[int, list[int]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [
        ctx.Process(
            target=append_in_process, args=(url, str(key), w, per_process, 25, barrier, results), daemon=True
        )
        for w in range(processes)
    ]
    for p in workers:
        p.start()
    seqs: dict[int, list[int]] = {}
    try:
        waited = 0
        while len(seqs) < processes:
            try:
                worker, got, _largest = results.get(timeout=5)
            except queue.Empty:
                waited += 5
                if waited > 240 or not any(p.is_alive() for p in workers):
                    pytest.fail(f"only {len(seqs)} of {processes} appender processes reported")
                continue
            seqs[worker] = got
    finally:
        for p in workers:
            p.join(timeout=30)
    assert [p.exitcode for p in workers] == [0] * processes
    return seqs


def _check(url: str, key: Path, processes: int, per_process: int) -> None:
    log, index = make_log(url)
    try:
        signer = TreeHeadSigner(key, log_id="familyctx-test")
        seqs = _run(url, key, processes, per_process)
        total = processes * per_process
        every = sorted(s for got in seqs.values() for s in got)
        assert every == list(range(total))  # gapless, no duplicates, nothing lost
        assert all(len(got) == per_process for got in seqs.values())
        report = verify_log(log.engine, log.tables, public_jwks=signer.public_jwks(), log_id="familyctx-test")
        assert report.ok, report.problems
        assert report.entries == total and report.tree_size == total
        heads = log.signed_heads()
        assert report.checked_heads == len(heads) >= processes  # heads from every process fit the one tree
        for older, newer in zip(heads, heads[1:], strict=False):
            assert log.consistency_proof(older.tree_size, newer.tree_size).verify(
                older.root_hash, newer.root_hash
            )
        with log.engine.connect() as conn:
            index_rows = conn.execute(sa.select(index.c.seq, index.c.request_id)).all()
            e = log.tables.entries
            payload_ids = {row.seq: row.payload for row in conn.execute(sa.select(e.c.seq, e.c.payload))}
        assert len(index_rows) == total
        for seq, request_id in index_rows:  # every index row points at its own record
            assert f'"request_id":"{request_id}"'.encode() in payload_ids[seq]
    finally:
        log.engine.dispose()


def test_four_processes_append_to_one_postgresql_log(postgres_url: str, tmp_path: Path) -> None:
    key = TreeHeadSigner.generate_key(tmp_path / "head.jwk")
    _check(postgres_url, key, processes=4, per_process=500)


def test_two_processes_append_to_one_sqlite_log(tmp_path: Path) -> None:
    key = TreeHeadSigner.generate_key(tmp_path / "head.jwk")
    _check(f"sqlite:///{tmp_path / 'log.sqlite'}", key, processes=2, per_process=500)
