#!/usr/bin/env python
"""Benchmark: the tamper-evident audit log (familyctx.auditlog) on PostgreSQL (and SQLite for comparison).

Three figures, each on a fresh database made for the run and dropped afterwards:

- ``append``: records per second appended through :class:`LogWriter` with the tree kept current (each
  batch's transaction locks the tree state, inserts entries and completed node-cache nodes, an index
  row per record, and the new frontier), ``--appenders`` concurrent coroutines in each of
  ``--processes`` processes, a tree head signed every second meanwhile. Prints batch sizes.
- ``verify``: ``verify_log`` over ``--verify-size`` records (the log is generated fast: entries, node
  cache and tree state computed in Python and bulk-loaded with COPY, plus a signed head), checked
  against the signed head.
- ``proof``: inclusion-proof time (p50/p99 ms, ``MerkleLog.inclusion_proof``: connection, tree state,
  O(log n) node rows) and size (bytes of the audit path; JSON size as the IG API would send it) at each
  of ``--proof-sizes``.

Figures and the machine go into docs/benchmarks.md by hand. Usage::

    .venv/bin/python scripts/bench_audit.py [--records 20000] [--verify-size 100000]
        [--proof-sizes 1000,100000] [--processes 2] [--appenders 64] [--sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog.engine import create_log_engine
from familyctx.auditlog.heads import TreeHeadSigner
from familyctx.auditlog.log import LogWriter, MerkleLog, envelope_bytes, insert_rows
from familyctx.auditlog.merkle import Frontier, leaf_hash
from familyctx.auditlog.tables import LogTables, log_tables
from familyctx.auditlog.verify import verify_log
from familyctx.auditlog.writer import issue_tree_heads

ADMIN_URL = os.environ.get(
    "FAMILYCTX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
LOG_ID = "familyctx-bench"


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of ``values`` (q in 0..100)."""
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def schema() -> tuple[sa.MetaData, LogTables, sa.Table]:
    """The log's tables (prefix ``audit``) and an index table like the gateway's, one row per record."""
    metadata = sa.MetaData()
    tables = log_tables(metadata, "audit")
    index = sa.Table(
        "audit_bench_index",
        metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("user_sub", sa.String(200), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
    )
    return metadata, tables, index


def sample_record(i: int, rng: random.Random) -> dict[str, Any]:
    """A synthetic access record shaped like the gateway's (about 600 bytes of canonical JSON)."""
    return {
        "request_id": uuid.UUID(int=rng.getrandbits(128)).hex,
        "user": {"sub": f"worker-{i % 500}", "name": f"Worker {i % 500}", "organisation": "E08000007"},
        "role": "social_worker",
        "client": "familyctx-web",
        "jti": uuid.UUID(int=rng.getrandbits(128)).hex,
        "purpose": "s47_enquiry",
        "case_reference": f"CASE-2026-{i % 9000:04d}",
        "endpoint": "POST /v1/searches",
        "query": {"family_name": "Smith", "date_of_birth": "2015-03-02", "postcode": "SK1 3XE"},
        "subjects": [
            {"gss": "E08000007", "local_person_id": f"P{rng.randrange(10**7):07d}"} for _ in range(3)
        ],
        "councils": {"E08000007": "ok", "E08000035": "ok", "E08000003": "unavailable"},
        "outcome": "partial",
        "http_status": 200,
        "response_sha256": os.urandom(32).hex(),
    }


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    name = f"fcbench_audit_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def create(url: str) -> tuple[MerkleLog, sa.Table]:
    metadata, tables, index = schema()
    engine = create_log_engine(url)
    metadata.create_all(engine)
    log = MerkleLog(engine, tables)
    log.create_schema()
    return log, index


# -- append ------------------------------------------------------------------------------------------


def _append_worker(
    url: str, key: str, worker: int, records: int, appenders: int, barrier: Any, results: Any
) -> None:
    _, tables, index = schema()
    engine = create_log_engine(url, pool_size=2)
    log = MerkleLog(engine, tables)
    signer = TreeHeadSigner(key, log_id=LOG_ID)
    rng = random.Random(worker)
    prepared = [sample_record(worker * records + i, rng) for i in range(records)]

    def write_index(conn: sa.Connection, rows: list[tuple[int, Any]]) -> None:
        insert_rows(  # COPY on PostgreSQL: what an index writer should use
            conn,
            index,
            [
                {
                    "seq": s,
                    "request_id": r["request_id"],
                    "user_sub": r["user"]["sub"],
                    "outcome": r["outcome"],
                }
                for s, r in rows
            ],
        )

    async def run() -> tuple[float, float, dict[str, Any]]:
        writer = LogWriter(log, index=write_index, max_batch=256)
        heads = asyncio.create_task(issue_tree_heads(log, signer, interval_seconds=1.0))
        cursor = iter(prepared)

        async def appender() -> None:
            for record in cursor:  # shared iterator: each record taken once
                await writer.append("access", record)

        await asyncio.to_thread(barrier.wait, 300)  # every process starts appending at once
        started = time.time()
        await asyncio.gather(*(appender() for _ in range(appenders)))
        ended = time.time()
        await writer.close()
        heads.cancel()
        stats = writer.stats
        return (
            started,
            ended,
            {
                "batches": stats.batches,
                "mean_batch": stats.mean_batch,
                "largest_batch": stats.largest_batch,
                "failed": stats.failed_records,
            },
        )

    started, ended, stats = asyncio.run(run())
    engine.dispose()
    results.put((worker, started, ended, stats))


def bench_append(url: str, key: Path, records: int, processes: int, appenders: int) -> dict[str, Any]:
    log, _ = create(url)
    log.engine.dispose()
    ctx = multiprocessing.get_context("spawn")
    results = ctx.Queue()
    barrier = ctx.Barrier(processes)
    per = records // processes
    started = time.perf_counter()
    workers = [
        ctx.Process(target=_append_worker, args=(url, str(key), w, per, appenders, barrier, results))
        for w in range(processes)
    ]
    for p in workers:
        p.start()
    outs = [results.get(timeout=3600) for _ in workers]
    for p in workers:
        p.join()
    wall = time.perf_counter() - started
    total = per * processes
    slowest = max(o[2] for o in outs) - min(o[1] for o in outs)  # first start to last finish
    report = verify_log(log.engine, log.tables, public_jwks=None)
    log.engine.dispose()
    return {
        "records": total,
        "processes": processes,
        "appenders_per_process": appenders,
        "seconds_appending": slowest,
        "records_per_second": total / slowest,
        "wall_seconds_with_process_start": wall,
        "batches": sum(o[3]["batches"] for o in outs),
        "mean_batch": total / max(1, sum(o[3]["batches"] for o in outs)),
        "largest_batch": max(o[3]["largest_batch"] for o in outs),
        "failed": sum(o[3]["failed"] for o in outs),
        "verified_ok": report.ok and report.entries == total,
        "signed_heads_checked": report.checked_heads,
    }


# -- bulk generation, verify, proofs -----------------------------------------------------------------


def bulk_fill(log: MerkleLog, n: int, signer: TreeHeadSigner) -> float:
    """Fill an empty log with ``n`` generated records as appends would have (entries, node cache, tree
    state), bulk-loaded (COPY on PostgreSQL), then sign a head. Returns seconds taken."""
    started = time.perf_counter()
    rng = random.Random(n)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    frontier = Frontier()
    t = log.tables
    entry_cols = ("seq", "record_class", "recorded_at", "payload", "leaf_hash")
    raw = log.engine.raw_connection()
    try:
        postgres = log.engine.dialect.name == "postgresql"
        cur = raw.cursor()
        entries: list[tuple[Any, ...]] = []
        nodes: list[tuple[int, int, bytes]] = []

        # Table names come from our own metadata, values are bound parameters.
        insert_entries = f"INSERT INTO {t.entries.name} ({', '.join(entry_cols)}) VALUES (?, ?, ?, ?, ?)"  # noqa: S608
        insert_nodes = f"INSERT INTO {t.tree_nodes.name} (last_seq, level, hash) VALUES (?, ?, ?)"  # noqa: S608
        mark = "%s" if postgres else "?"
        update_state = f"UPDATE {t.tree_state.name} SET size = {mark}, frontier = {mark}"  # noqa: S608

        def flush() -> None:
            if postgres:
                with cur.copy(f"COPY {t.entries.name} ({', '.join(entry_cols)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for row in entries:
                        copy.write_row(row)
                with cur.copy(f"COPY {t.tree_nodes.name} (last_seq, level, hash) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for node in nodes:
                        copy.write_row(node)
            else:
                rows = [(s, c, r.strftime("%Y-%m-%d %H:%M:%S.%f"), p, h) for s, c, r, p, h in entries]
                cur.executemany(insert_entries, rows)
                cur.executemany(insert_nodes, nodes)
            entries.clear()
            nodes.clear()

        if not postgres:
            cur.execute("BEGIN IMMEDIATE")
        for seq in range(n):
            at = base + dt.timedelta(milliseconds=seq)
            payload = envelope_bytes("access", at, sample_record(seq, rng))
            leaf = leaf_hash(payload)
            for level, idx, digest in frontier.append(leaf):
                nodes.append((((idx + 1) << level) - 1, level, digest))
            entries.append((seq, "access", at, payload, leaf))
            if len(entries) >= 20000:
                flush()
        flush()
        cur.execute(update_state, (frontier.size, json.dumps(frontier.to_json())))
        raw.commit()
        if postgres:
            cur.execute(f"ANALYZE {t.entries.name}")
            cur.execute(f"ANALYZE {t.tree_nodes.name}")
            raw.commit()
    finally:
        raw.close()
    log.sign_tree_head(signer)
    return time.perf_counter() - started


def bench_verify(log: MerkleLog, signer: TreeHeadSigner) -> dict[str, Any]:
    kept = log.signed_heads()
    report = verify_log(log.engine, log.tables, public_jwks=signer.public_jwks(), kept_heads=kept)
    return {
        "entries": report.entries,
        "ok": report.ok,
        "seconds": report.seconds,
        "heads": report.checked_heads,
    }


def bench_proofs(log: MerkleLog, queries: int) -> dict[str, Any]:
    size = log.tree_head().tree_size
    rng = random.Random(size)
    times: list[float] = []
    lengths: list[int] = []
    json_bytes: list[int] = []
    for _ in range(queries):
        seq = rng.randrange(size)
        t0 = time.perf_counter()
        proof = log.inclusion_proof(seq, size)
        times.append((time.perf_counter() - t0) * 1000)
        if not proof.verify():
            raise SystemExit(f"proof for seq {seq} did not verify")
        lengths.append(proof.size_bytes())
        json_bytes.append(len(json.dumps(proof.to_dict())))
    return {
        "tree_size": size,
        "p50_ms": statistics.median(times),
        "p99_ms": percentile(times, 99),
        "path_bytes_max": max(lengths),
        "path_bytes_mean": statistics.mean(lengths),
        "json_bytes_max": max(json_bytes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=20000, help="records appended in the append test")
    parser.add_argument("--processes", type=int, default=2, help="appender processes")
    parser.add_argument("--appenders", type=int, default=64, help="concurrent appends per process")
    parser.add_argument("--verify-size", type=int, default=100_000, help="records in the verify test")
    parser.add_argument("--proof-sizes", default="1000,100000", help="log sizes for proof timing")
    parser.add_argument("--proof-queries", type=int, default=300)
    parser.add_argument("--sqlite", action="store_true", help="also run append and verify on SQLite")
    parser.add_argument("--skip-append", action="store_true")
    args = parser.parse_args()

    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    print(f"load average at start: {os.getloadavg()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-audit-"))
    key = TreeHeadSigner.generate_key(tmp / "head.jwk")
    signer = TreeHeadSigner(key, log_id=LOG_ID)
    results: dict[str, Any] = {}

    if not args.skip_append:
        with postgres_database() as url:
            results["append_postgresql"] = bench_append(
                url, key, args.records, args.processes, args.appenders
            )
        print("append, PostgreSQL:", json.dumps(results["append_postgresql"], indent=1))
        if args.sqlite:
            url = f"sqlite:///{tmp / 'append.sqlite'}"
            results["append_sqlite"] = bench_append(url, key, args.records, args.processes, args.appenders)
            print("append, SQLite:", json.dumps(results["append_sqlite"], indent=1))

    sizes = sorted({int(s) for s in args.proof_sizes.split(",") if s} | {args.verify_size})
    for size in sizes:
        with postgres_database() as url:
            log, _ = create(url)
            fill = bulk_fill(log, size, signer)
            row: dict[str, Any] = {"generate_seconds": fill}
            if size == args.verify_size:
                row["verify"] = bench_verify(log, signer)
            if str(size) in args.proof_sizes.split(","):
                row["proof"] = bench_proofs(log, args.proof_queries)
            log.engine.dispose()
        results[f"postgresql_{size}"] = row
        print(f"PostgreSQL, {size} records:", json.dumps(row, indent=1))
        if args.sqlite and size == args.verify_size:
            log, _ = create(f"sqlite:///{tmp / f'verify-{size}.sqlite'}")
            row = {"generate_seconds": bulk_fill(log, size, signer), "verify": bench_verify(log, signer)}
            row["proof"] = bench_proofs(log, args.proof_queries)
            log.engine.dispose()
            results[f"sqlite_{size}"] = row
            print(f"SQLite, {size} records:", json.dumps(row, indent=1))
    print(f"load average at end: {os.getloadavg()}")
    print(json.dumps(results))


if __name__ == "__main__":
    sys.exit(main())
