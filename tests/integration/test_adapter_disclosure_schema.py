"""The disclosure log's Alembic migrations on PostgreSQL and SQLite, the start-up schema check, and
concurrent commits through the adapter's :class:`~familyctx_adapter.disclosure.DisclosureLog`."""

from __future__ import annotations

import asyncio
import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from familycontext.v1 import adapter_pb2, types_pb2
from familyctx_adapter import disclosure_record as dr
from familyctx_adapter import disclosure_schema as schema
from familyctx_adapter.disclosure import DisclosureLog, log_id_for
from familyctx_adapter.errors import AdapterConfigError

from familyctx.auditlog.engine import create_log_engine
from familyctx.auditlog.heads import TreeHeadSigner
from familyctx.auditlog.verify import verify_log
from familyctx.trust.assertion import Requester, VerifiedAssertion
from familyctx.trust.pki import DevPki

LEEDS = "E08000035"
TABLES = {
    "disclosure_entries",
    "disclosure_tree_state",
    "disclosure_tree_nodes",
    "disclosure_tree_heads",
    "disclosure_index",
    "disclosure_people",
}


def _diff(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": schema.VERSION_TABLE})
        return list(compare_metadata(context, schema.metadata))


def _check_migrations(url: str) -> None:
    engine = create_log_engine(url)
    try:
        assert schema.schema_status(engine).current is None
        status = schema.upgrade(engine)
        assert status.at_head and status.current == schema.head_revision() == "disclosure_0002"
        assert TABLES <= set(sa.inspect(engine).get_table_names())
        assert _diff(engine) == []  # the revision creates exactly what the code defines
        assert schema.upgrade(engine).at_head  # idempotent
        schema.downgrade(engine, "base")
        assert not TABLES & set(sa.inspect(engine).get_table_names())
        assert schema.upgrade(engine).at_head
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_migrations_on_postgresql(postgres_url: str) -> None:
    _check_migrations(postgres_url)
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            keys = sa.inspect(conn).get_foreign_keys("disclosure_index")
        assert [(k["referred_table"], k["constrained_columns"]) for k in keys] == [
            ("disclosure_entries", ["seq"])
        ]
    finally:
        engine.dispose()


# A replica's migration: connect, say "ready", wait for the go file, upgrade, print the revision.
_MIGRATE = """
import os, sys, time
from familyctx.auditlog.engine import create_log_engine
from familyctx_adapter.disclosure_schema import upgrade
engine = create_log_engine(sys.argv[1])
engine.connect().close()
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
print(upgrade(engine).current, flush=True)
"""


@pytest.mark.postgres
def test_replicas_migrating_at_once_all_succeed(postgres_url: str, tmp_path: Path) -> None:
    """Three processes (as three replicas' init containers) upgrade one empty database at the same
    moment; without the advisory lock two of them fail on the tables the first is creating."""
    go = tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _MIGRATE, postgres_url, str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [p.communicate(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], [err for _, err in outputs]
    assert [out.strip() for out, _ in outputs] == [schema.head_revision()] * 3
    engine = create_log_engine(postgres_url)
    try:
        assert _diff(engine) == []
    finally:
        engine.dispose()


def test_migrations_on_sqlite(tmp_path: Path) -> None:
    _check_migrations(f"sqlite:///{tmp_path}/disclosure.sqlite")


def _signer(pki: DevPki) -> TreeHeadSigner:
    return TreeHeadSigner(pki.adapter_audit_key(LEEDS), log_id=log_id_for(LEEDS))


def test_start_refuses_a_schema_behind_head_unless_auto_migrate(tmp_path: Path, dev_pki: DevPki) -> None:
    url = f"sqlite:///{tmp_path}/disclosure.sqlite"
    log = DisclosureLog(url, _signer(dev_pki), auto_migrate=False)
    with pytest.raises(AdapterConfigError, match=r"schema is at nothing.*familyctx adapter migrate"):
        log.prepare_schema()
    log.engine.dispose()
    migrating = DisclosureLog(url, _signer(dev_pki), auto_migrate=True)
    migrating.prepare_schema()
    migrating.engine.dispose()
    DisclosureLog(url, _signer(dev_pki), auto_migrate=False).prepare_schema()  # at head now: starts


def test_unreachable_database_at_start_is_a_config_error_without_the_password(dev_pki: DevPki) -> None:
    log = DisclosureLog(
        "postgresql+psycopg://adapter:s3cret@127.0.0.1:1/disclosure", _signer(dev_pki), auto_migrate=False
    )
    with pytest.raises(AdapterConfigError, match="disclosure_log.database_url") as info:
        log.prepare_schema()
    assert "s3cret" not in str(info.value)


def _record(n: int) -> tuple[str, dict[str, object]]:
    now = dt.datetime.now(dt.UTC)
    who = Requester(
        sub=f"worker-{n % 3}",
        name="Test Worker",
        organisation="E08000007",
        role="social_worker",
        client="familyctx-web",
        purpose="s47_enquiry",
        case_reference=f"CASE-{n}",
        request_id=f"rid-{n}",
    )
    verified = VerifiedAssertion(who, f"jti-{n}", now, now + dt.timedelta(seconds=60), LEEDS)
    maker = dr.RecordMaker(LEEDS, "FindPeople", verified, dr.Asked(query_fields=("nhs_number",)))
    released = dr.Released(local_person_ids=(f"P{n}", f"P{n + 1}"))
    response = adapter_pb2.FindPeopleResponse(
        candidates=[types_pb2.Person(local_person_id=p) for p in released.local_person_ids]
    )
    return maker.disclosed(response, released)


@pytest.mark.postgres
async def test_concurrent_commits_make_one_gapless_indexed_log(postgres_url: str, dev_pki: DevPki) -> None:
    log = DisclosureLog(postgres_url, _signer(dev_pki), auto_migrate=True, tree_head_interval_seconds=3600)
    await log.start()
    try:
        await asyncio.gather(*(log.commit([_record(n)], request_id=f"rid-{n}") for n in range(60)))
    finally:
        await log.close()
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            seqs = conn.execute(sa.select(schema.disclosure_index.c.seq).order_by("seq")).scalars().all()
            people = conn.execute(
                sa.select(sa.func.count()).select_from(schema.disclosure_people)
            ).scalar_one()
            by_person = conn.execute(
                sa.select(schema.disclosure_people.c.seq).where(
                    schema.disclosure_people.c.local_person_id == "P7"
                )
            ).scalars()
            rids = {
                conn.execute(
                    sa.select(schema.disclosure_index.c.request_id).where(schema.disclosure_index.c.seq == s)
                ).scalar_one()
                for s in by_person
            }
        assert seqs == list(range(60)) and people == 120
        assert rids == {"rid-6", "rid-7"}  # subject access by local id: every disclosure of P7
        report = verify_log(engine, schema.log, public_jwks=_signer(dev_pki).public_jwks())
        assert report.ok and report.entries == 60 and report.checked_heads >= 1
    finally:
        engine.dispose()
