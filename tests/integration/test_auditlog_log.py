"""The Merkle log on real SQLite and PostgreSQL: appends, proofs, tree heads, redaction, group commit."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from auditlog_support import make_log

from familyctx.auditlog import merkle
from familyctx.auditlog.engine import create_log_engine
from familyctx.auditlog.errors import AuditWriteFailed, LogStateError, ProofError
from familyctx.auditlog.heads import TreeHeadSigner
from familyctx.auditlog.log import LogWriter, MerkleLog, as_utc, insert_rows
from familyctx.auditlog.verify import verify_log


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.sqlite'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def new_log(url: str) -> Iterator[Callable[[], tuple[MerkleLog, sa.Table]]]:
    """Makes a log (with the test index table) on ``url``; disposes its engine afterwards."""
    made: list[MerkleLog] = []

    def make() -> tuple[MerkleLog, sa.Table]:
        log, index = make_log(url)
        made.append(log)
        return log, index

    yield make
    for log in made:
        log.engine.dispose()


@pytest.fixture
def signer(tmp_path: Path) -> TreeHeadSigner:
    return TreeHeadSigner(TreeHeadSigner.generate_key(tmp_path / "head.jwk"), log_id="familyctx-test")


def _leaves(log: MerkleLog) -> list[bytes]:
    e = log.tables.entries
    with log.engine.connect() as conn:
        return [row.leaf_hash for row in conn.execute(sa.select(e.c.leaf_hash).order_by(e.c.seq))]


def _fill(log: MerkleLog, sizes: list[int]) -> None:
    n = log.tree_head().tree_size
    for size in sizes:
        with log.engine.begin() as conn:
            seqs = log.append(
                conn, [("access", {"request_id": f"r{n + i}", "i": n + i}) for i in range(size)]
            )
        assert seqs == list(range(n, n + size))
        n += size


def test_appends_proofs_and_roots_match_the_in_memory_tree(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]],
) -> None:
    log, _ = new_log()
    _fill(log, [1, 2, 3, 17, 1, 40, 5, 64, 2])  # 135 records in nine transactions
    leaves = _leaves(log)
    head = log.tree_head()
    assert head.tree_size == 135 and head.root_hash == merkle.root_hash(leaves)
    for size in (1, 2, 3, 64, 65, 100, 135):
        assert log.root_at(size) == merkle.root_hash(leaves[:size])
        for seq in {0, size // 2, size - 1}:
            proof = log.inclusion_proof(seq, size)
            assert list(proof.hashes) == merkle.inclusion_proof(seq, leaves[:size])
            assert proof.leaf_hash == leaves[seq] and proof.verify(merkle.root_hash(leaves[:size]))
        for old in (0, 1, size // 3, size):
            cons = log.consistency_proof(old, size)
            assert list(cons.hashes) == merkle.consistency_proof(old, leaves[:size])
            assert cons.verify(merkle.root_hash(leaves[:old]), merkle.root_hash(leaves[:size]))
    assert log.inclusion_proof(7).tree_size == 135  # default: the current tree
    entry = log.entry(3)
    assert (
        entry is not None and entry.record == {"request_id": "r3", "i": 3} and entry.record_class == "access"
    )
    assert log.entry(135) is None


def test_proofs_read_a_logarithmic_number_of_nodes(new_log: Callable[[], tuple[MerkleLog, sa.Table]]) -> None:
    log, _ = new_log()
    _fill(log, [500, 523])
    proof = log.inclusion_proof(700, 1023)
    assert len(proof.hashes) == 10 and proof.size_bytes() == 320 and proof.verify()


def test_append_belongs_to_the_callers_transaction(new_log: Callable[[], tuple[MerkleLog, sa.Table]]) -> None:
    log, index = new_log()
    _fill(log, [3])
    before = log.tree_head()
    with pytest.raises(RuntimeError), log.engine.begin() as conn:
        seqs = log.append(conn, [("access", {"request_id": "lost"})])
        conn.execute(index.insert(), [{"seq": seqs[0], "request_id": "lost"}])
        raise RuntimeError("the caller fails after appending")
    assert log.tree_head() == before
    with log.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(index)).scalar() == 0
    _fill_from = log.tree_head().tree_size
    with log.engine.begin() as conn:
        assert log.append(conn, [("access", {"request_id": "next"})]) == [_fill_from]


def test_bad_records_are_refused_before_anything_is_written(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]],
) -> None:
    log, _ = new_log()
    with log.engine.begin() as conn:
        with pytest.raises(ValueError, match="float"):
            log.append(conn, [("access", {"ok": 1}), ("access", {"score": 0.5})])
        with pytest.raises(ValueError, match="record_class"):
            log.append(conn, [("Access Log", {"ok": 1})])
    assert log.tree_head().tree_size == 0


def test_proof_requests_outside_the_log_are_refused(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]],
) -> None:
    log, _ = new_log()
    _fill(log, [5])
    with pytest.raises(ProofError):
        log.inclusion_proof(5, 5)
    with pytest.raises(ProofError):
        log.inclusion_proof(0, 6)
    with pytest.raises(ProofError):
        log.consistency_proof(4, 3)
    with pytest.raises(ProofError):
        log.root_at(6)


def test_tree_heads_are_signed_once_per_size_and_verify(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]], signer: TreeHeadSigner
) -> None:
    log, _ = new_log()
    empty = log.sign_tree_head(signer)
    assert empty.tree_size == 0 and empty.root_hash == merkle.EMPTY_ROOT
    _fill(log, [10])
    first = log.sign_tree_head(signer)
    assert first.tree_size == 10 and log.sign_tree_head(signer) == first  # unchanged size: no new head
    _fill(log, [5])
    second = log.sign_tree_head(signer)
    assert [h.tree_size for h in log.signed_heads()] == [0, 10, 15]
    assert log.signed_heads(min_size=10) == [first, second]
    assert all(h.verify(signer.public_jwks()) is None for h in log.signed_heads())
    cons = log.consistency_proof(first.tree_size, second.tree_size)
    assert cons.verify(first.root_hash, second.root_hash)
    report = verify_log(log.engine, log.tables, public_jwks=signer.public_jwks(), kept_heads=[first])
    assert report.ok and report.checked_heads == 4 and report.signatures_checked


def test_redaction_keeps_the_tree_verifiable(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]], signer: TreeHeadSigner
) -> None:
    log, _ = new_log()
    _fill(log, [20])
    head = log.sign_tree_head(signer)
    proof_before = log.inclusion_proof(4, 20)
    now = dt.datetime.now(dt.UTC)
    with log.engine.begin() as conn:
        assert log.redact(conn, [2, 3, 4, 4], record_class="access", cutoff=now, retention_days=1) == 3
        assert log.redact(conn, [4], record_class="access", cutoff=now) == 0  # already redacted
        assert log.redact_older_than(conn, "access", dt.datetime.now(dt.UTC) - dt.timedelta(days=1)) == 0
    entry = log.entry(4)
    assert entry is not None and entry.record is None and entry.redacted_at is not None
    assert log.inclusion_proof(4, 20) == proof_before
    report = verify_log(log.engine, log.tables, public_jwks=signer.public_jwks(), kept_heads=[head])
    assert report.ok and report.redacted == 3 and report.redacted_by_class == {"access": 3}
    assert report.entries == 21  # + one redaction record, in the tree like any other
    with log.engine.begin() as conn:
        assert log.redact_older_than(conn, "access", dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5)) == 17
    after = verify_log(log.engine, log.tables, public_jwks=signer.public_jwks())
    assert after.ok and after.redacted == 20 and after.entries == 22


def test_a_corrupt_tree_state_stops_appends(new_log: Callable[[], tuple[MerkleLog, sa.Table]]) -> None:
    log, _ = new_log()
    _fill(log, [3])
    with log.engine.begin() as conn:
        conn.execute(log.tables.tree_state.update().values(frontier={"size": 3, "hashes": ["00"]}))
    with pytest.raises(LogStateError), log.engine.begin() as conn:
        log.append(conn, [("access", {"x": 1})])


def test_missing_state_row_is_created_by_the_first_append(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]],
) -> None:
    log, _ = new_log()
    with log.engine.begin() as conn:
        conn.execute(log.tables.tree_state.delete())
    assert log.tree_head().tree_size == 0
    _fill(log, [2])
    assert log.tree_head().tree_size == 2


async def test_log_writer_groups_concurrent_appends_into_batches(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]],
) -> None:
    log, index = new_log()

    def write_index(conn: sa.Connection, rows: list) -> None:
        conn.execute(index.insert(), [{"seq": s, "request_id": r["request_id"]} for s, r in rows])

    writer = LogWriter(log, index=write_index, max_batch=32)
    seqs = await asyncio.gather(*(writer.append("access", {"request_id": f"r{i}"}) for i in range(100)))
    await writer.close()
    assert sorted(seqs) == list(range(100))
    assert writer.stats.records == 100 and 1 < writer.stats.largest_batch <= 32
    assert writer.stats.batches < 100
    with log.engine.connect() as conn:
        rows = dict(conn.execute(sa.select(index.c.request_id, index.c.seq)).all())
    assert rows == {f"r{i}": seq for i, seq in enumerate(seqs)}  # each index row names its own record
    assert verify_log(log.engine, log.tables, public_jwks=None).ok


async def test_a_failed_batch_fails_every_record_and_the_next_batch_gets_a_fresh_connection(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]],
) -> None:
    log, index = new_log()
    connections: list[Any] = []  # the DBAPI connections themselves (kept alive: no id reuse)
    fail = {"on": True}

    def write_index(conn: sa.Connection, rows: list) -> None:
        connections.append(conn.connection.dbapi_connection)
        conn.execute(index.insert(), [{"seq": s, "request_id": r["request_id"]} for s, r in rows])
        if fail["on"]:
            raise sa.exc.OperationalError("INSERT", {}, Exception("server closed the connection"))

    writer = LogWriter(log, index=write_index)
    results = await asyncio.gather(
        *(writer.append("access", {"request_id": f"a{i}"}) for i in range(20)), return_exceptions=True
    )
    assert results and all(isinstance(r, AuditWriteFailed) for r in results)
    assert writer.stats.failed_records == 20
    assert log.tree_head().tree_size == 0  # none of the batch is visible
    with log.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(index)).scalar() == 0
    fail["on"] = False
    assert await writer.append("access", {"request_id": "b0"}) == 0
    await writer.close()
    assert connections[-1] is not connections[0]  # the failed batch's connection was thrown away
    assert verify_log(log.engine, log.tables, public_jwks=None).ok


async def test_log_writer_fails_closed_when_the_database_is_unreachable() -> None:
    from auditlog_support import tables_for_tests

    _, tables, _ = tables_for_tests()
    engine = create_log_engine(
        "postgresql://postgres@127.0.0.1:1/nowhere", connect_args={"connect_timeout": 2}
    )
    writer = LogWriter(MerkleLog(engine, tables))
    with pytest.raises(AuditWriteFailed):
        await writer.append("access", {"request_id": "r"})
    await writer.close()
    with pytest.raises(AuditWriteFailed, match="closed"):
        await writer.append("access", {"request_id": "late"})
    engine.dispose()


async def test_log_writer_close_commits_what_is_queued(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]],
) -> None:
    log, _ = new_log()
    writer = LogWriter(log, max_batch=8)
    pending = [asyncio.ensure_future(writer.append("access", {"i": i})) for i in range(30)]
    await asyncio.sleep(0)  # let them queue
    await writer.close()
    assert sorted(await asyncio.gather(*pending)) == list(range(30))
    with pytest.raises(ValueError, match="float"):
        await LogWriter(log).append("access", {"bad": 1.5})


def test_create_log_engine_makes_sqlite_writers_take_the_write_lock_first(tmp_path: Path) -> None:
    engine = create_log_engine(f"sqlite:///{tmp_path / 'sub' / 'x.sqlite'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    first = engine.connect()
    first.begin()
    first.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    second = create_log_engine(
        f"sqlite:///{tmp_path / 'sub' / 'x.sqlite'}", busy_timeout_seconds=0.1
    ).connect()
    with pytest.raises(sa.exc.OperationalError, match="locked"):
        second.begin()  # BEGIN IMMEDIATE waits for the writer, then gives up
    second.close()
    first.rollback()
    first.close()


def test_read_only_connections_read_while_a_sqlite_writer_holds_the_lock(tmp_path: Path) -> None:
    log, _ = make_log(f"sqlite:///{tmp_path / 'log.sqlite'}")
    try:
        _fill(log, [4])
        with log.engine.begin() as writer:  # BEGIN IMMEDIATE: the write lock is held until commit
            log.append(writer, [("access", {"request_id": "pending"})])
            assert log.tree_head().tree_size == 4  # a READ_ONLY reader sees the last commit, unblocked
            assert log.inclusion_proof(3).verify()
            report = verify_log(log.engine, log.tables, public_jwks=None)
            assert report.ok and report.entries == 4
        assert log.tree_head().tree_size == 5
    finally:
        log.engine.dispose()


async def test_issue_tree_heads_signs_while_the_log_grows(
    new_log: Callable[[], tuple[MerkleLog, sa.Table]], signer: TreeHeadSigner
) -> None:
    from familyctx.auditlog.writer import issue_tree_heads

    log, _ = new_log()
    seen: list[int] = []

    async def on_head(head: Any) -> None:
        seen.append(head.tree_size)

    task = asyncio.create_task(issue_tree_heads(log, signer, interval_seconds=0.01, on_head=on_head))
    try:
        for _ in range(500):  # wait (bounded) for the first head, then grow the log and wait again
            if seen:
                break
            await asyncio.sleep(0.01)
        _fill(log, [3])
        for _ in range(500):
            if seen and seen[-1] == 3:
                break
            await asyncio.sleep(0.01)
    finally:
        task.cancel()
    assert seen[0] == 0 and seen[-1] == 3
    assert [h.tree_size for h in log.signed_heads()] == [0, 3]


def test_insert_rows_writes_what_sqlalchemy_would(new_log: Callable[[], tuple[MerkleLog, sa.Table]]) -> None:
    log, _ = new_log()
    metadata = sa.MetaData()
    table = sa.Table(
        "audit_test_rows",
        metadata,
        sa.Column("seq", sa.BigInteger, primary_key=True),
        sa.Column("terms", sa.JSON, nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("name", sa.String(50), nullable=True),
        sa.Column("flag", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("raw", sa.LargeBinary, nullable=True),
    )
    metadata.create_all(log.engine)
    at = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
    rows = [
        {
            "seq": 1,
            "terms": {"family_name": "O'Brien", "n": [1, 2]},
            "at": at,
            "name": 'a,b\t"c"\\',
            "raw": b"\x00\xff",
        },
        {"seq": 2, "terms": None, "at": None, "name": None, "raw": None},
    ]
    with log.engine.begin() as conn:
        insert_rows(conn, table, rows)
        insert_rows(conn, table, [])
    with log.engine.connect() as conn:
        got = [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.seq))]
    assert got[0]["terms"] == {"family_name": "O'Brien", "n": [1, 2]} and got[0]["name"] == 'a,b\t"c"\\'
    assert got[0]["raw"] == b"\x00\xff" and got[0]["flag"] is False
    assert as_utc(got[0]["at"]) == at
    assert got[1]["terms"] is None and got[1]["at"] is None and got[1]["raw"] is None
