"""A real adapter process keeps its own disclosure log: one record per answer, before the answer leaves.

``familyctx adapter serve`` runs as a child process on a fixture warehouse (Leeds, Mosaic flavour, the
real Leeds sharing policy); the test calls it as the gateway does (mutual TLS, a signed assertion per
call), then reads the log the adapter wrote and verifies it, in process and with ``familyctx audit``.
The disclosure database on PostgreSQL is made unreachable mid-run: those calls get UNAVAILABLE and no
data, and leave no record.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc
from familyctx_adapter import disclosure_schema as schema
from trust_support import Caller, adapter_trust_yaml, requester
from unit.test_adapter_fixture_warehouse import CHILD, CHILD_NHS, build_warehouse

from familyctx.auditlog.heads import load_public_jwks
from familyctx.auditlog.log import MerkleLog
from familyctx.auditlog.verify import verify_log
from familyctx.trust.assertion import ASSERTION_METADATA_KEY
from familyctx.trust.pki import DevPki

LEEDS = "E08000035"
REPO = Path(__file__).resolve().parents[2]
LEEDS_POLICY = REPO / "services" / "adapter" / "config" / "policies" / "leeds.cedar"
POSTGRES_ADMIN_URL = os.environ.get(
    "FAMILYCTX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _familyctx(*args: str) -> list[str]:
    return [sys.executable, "-c", "from familyctx.cli import app; app()", *args]


def _config(tmp_path: Path, pki: DevPki, disclosure_url: str) -> Path:
    url = f"sqlite:///{tmp_path}/leeds.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "mosaic")
    engine.dispose()
    path = tmp_path / "leeds.yaml"
    path.write_text(
        "council: {gss_code: E08000035, name: Leeds, dfe_la_number: 383}\n"
        f"cms: mosaic\ndatabase_url: {url}\nlisten: {{host: 127.0.0.1, port: 0}}\n"
        + adapter_trust_yaml(pki, LEEDS, policy_file=LEEDS_POLICY, disclosure_url=disclosure_url),
        encoding="utf-8",
    )
    return path


@contextmanager
def running_adapter(config: Path, log_file: Path) -> Iterator[subprocess.Popen[str]]:
    """``familyctx adapter serve`` until the block ends, then SIGTERM (must exit 0). Logs go to
    ``log_file``; the process's ``port`` attribute is set from the ready line."""
    with (
        log_file.open("w", encoding="utf-8") as err,
        subprocess.Popen(
            _familyctx("adapter", "serve", "--config", str(config), "--port", "0"),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        ) as proc,
    ):
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("adapter ready on 127.0.0.1:"), line + log_file.read_text()
            proc.port = int(line.strip().rsplit(":", 1)[1])  # type: ignore[attr-defined]
            yield proc
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log_file.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def _jti(metadata: tuple[tuple[str, str], ...]) -> str:
    token = dict(metadata)[ASSERTION_METADATA_KEY]
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"]


def _records(url: str) -> dict[str, tuple[int, dict]]:
    """{request id: (seq, record)} of every entry in the disclosure log at ``url``."""
    engine = sa.create_engine(url)
    try:
        log = MerkleLog(engine, schema.log)
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(schema.disclosure_index.c.seq, schema.disclosure_index.c.request_id)
            )
            index = {r.request_id: r.seq for r in rows}
            entries = conn.execute(sa.select(sa.func.count()).select_from(schema.log.entries)).scalar_one()
        assert entries == len(index), "one index row per entry"
        out = {}
        for rid, seq in index.items():
            entry = log.entry(seq)
            assert entry is not None and entry.record is not None
            out[rid] = (seq, entry.record)
        return out
    finally:
        engine.dispose()


def _verify(url: str, pki: DevPki) -> None:
    engine = sa.create_engine(url)
    try:
        report = verify_log(engine, schema.log, public_jwks=load_public_jwks(pki.adapter_audit_jwks(LEEDS)))
    finally:
        engine.dispose()
    assert report.ok, report.problems
    assert report.signatures_checked and report.checked_heads >= 1
    result = subprocess.run(
        _familyctx("audit", "verify", "--database", url, "--jwks", str(pki.adapter_audit_jwks(LEEDS))),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "adapter disclosure log" in result.stdout and "OK" in result.stdout


def test_one_record_per_answer_and_refusal_committed_and_verifiable(tmp_path: Path, dev_pki: DevPki) -> None:
    url = f"sqlite:///{tmp_path}/disclosure-leeds.sqlite"
    config = _config(tmp_path, dev_pki, url)
    caller = Caller.gateway(dev_pki)
    log_file = tmp_path / "adapter.log"
    sent: dict[str, tuple[tuple[tuple[str, str], ...], object]] = {}
    with running_adapter(config, log_file) as proc, caller.sync_channel(f"127.0.0.1:{proc.port}") as ch:  # type: ignore[attr-defined]
        stub = adapter_pb2_grpc.AdapterServiceStub(ch)
        meta = caller.metadata(LEEDS, requester(purpose="s47_enquiry", request_id="rid-find"))
        found = stub.FindPeople(
            adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number=CHILD_NHS)),
            metadata=meta,
            timeout=10,
        )
        sent["rid-find"] = (meta, found)
        meta = caller.metadata(LEEDS, requester(purpose="s17_assessment", request_id="rid-family"))
        family = stub.GetFamilyContext(
            adapter_pb2.GetFamilyContextRequest(local_person_ids=[CHILD], include_relatives=True),
            metadata=meta,
            timeout=10,
        )
        sent["rid-family"] = (meta, family)
        meta = caller.metadata(LEEDS, requester(role="ig_officer", request_id="rid-refused"))
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetFamilyContext(
                adapter_pb2.GetFamilyContextRequest(local_person_ids=[CHILD]), metadata=meta, timeout=10
            )
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        sent["rid-refused"] = (meta, None)
        # Not disclosures: refused before authentication, nothing found, and Describe.
        with pytest.raises(grpc.RpcError) as unauthenticated:
            stub.FindPeople(
                adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number=CHILD_NHS)),
                metadata=(("x-request-id", "rid-noauth"),),
                timeout=10,
            )
        assert unauthenticated.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc.RpcError) as missing:
            stub.GetFamilyContext(
                adapter_pb2.GetFamilyContextRequest(local_person_ids=["P9999"]),
                metadata=caller.metadata(LEEDS, requester(request_id="rid-notfound")),
                timeout=10,
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        stub.Describe(
            adapter_pb2.DescribeRequest(), metadata=caller.metadata(LEEDS, requester(purpose="")), timeout=10
        )

    records = _records(url)
    assert set(records) == {"rid-find", "rid-family", "rid-refused"}
    assert [records[r][0] for r in ("rid-find", "rid-family", "rid-refused")] == [0, 1, 2]
    for rid, (meta, response) in sent.items():
        record = records[rid][1]
        assert record["assertion"]["jti"] == _jti(meta)
        assert record["council"] == LEEDS and record["request_id"] == rid
        assert record["requester"]["sub"] == "worker-0001" and record["requester"]["name"] == "Test Worker"
        assert record["case_reference"] == "TEST-CASE-1"
        if response is not None:  # what the caller received is exactly what was hashed
            assert record["response_sha256"] == hashlib.sha256(response.SerializeToString()).hexdigest()

    find = records["rid-find"][1]
    assert (find["method"], find["outcome"], find["purpose"]) == ("FindPeople", "disclosed", "s47_enquiry")
    assert (
        find["released"]["local_person_ids"] == sorted(p.local_person_id for p in found.candidates) == [CHILD]
    )
    assert find["asked"]["query_fields"] == ["nhs_number"]

    fam = records["rid-family"][1]
    assert (fam["method"], fam["purpose"]) == ("GetFamilyContext", "s17_assessment")
    assert fam["released"]["local_person_ids"] == sorted(p.local_person_id for p in family.people)
    assert fam["released"]["involvement_ids"] == sorted(i.involvement_id for i in family.involvements)
    assert fam["released"]["datasets_withheld"] == ["housing"]  # Leeds: housing for child protection only
    assert "housing" not in {i.dataset_id for i in family.involvements}
    assert fam["asked"] == {"query_fields": [], "local_person_ids": [CHILD], "include_relatives": True}

    refusal = records["rid-refused"][1]
    assert (refusal["outcome"], refusal["response_sha256"]) == ("refused", None)
    assert refusal["released"]["local_person_ids"] == [] and refusal["requester"]["role"] == "ig_officer"
    assert refusal["policies"] == ["no-family-data-for-non-practitioners"]

    _verify(url, dev_pki)
    engine = sa.create_engine(url)
    try:
        latest = MerkleLog(engine, schema.log).latest_signed_head()
    finally:
        engine.dispose()
    assert latest is not None and (latest.tree_size, latest.log_id) == (3, "adapter-E08000035")  # at shutdown

    logs = log_file.read_text(encoding="utf-8")
    assert "disclosure recorded request_id=rid-family seq=1" in logs
    for personal in ("Zo", "NEILL", CHILD_NHS, "TEST-CASE-1", "Test Worker"):
        assert personal not in logs


@pytest.fixture
def admin() -> Iterator[sa.Engine]:
    engine = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _allow_connections(admin: sa.Engine, url: str, allow: bool) -> None:
    name = sa.engine.make_url(url).database
    with admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}'))
        if not allow:
            conn.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )


@pytest.mark.postgres
def test_disclosure_database_unreachable_means_unavailable_and_no_data(
    tmp_path: Path, dev_pki: DevPki, postgres_url: str, admin: sa.Engine
) -> None:
    config = _config(tmp_path, dev_pki, postgres_url)
    # PostgreSQL: the adapter does not migrate by itself; it refuses to start on an empty schema.
    refused = subprocess.run(
        _familyctx("adapter", "serve", "--config", str(config), "--port", "0"),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 1
    assert "familyctx adapter migrate" in refused.stderr and "Traceback" not in refused.stderr
    migrated = subprocess.run(
        _familyctx("adapter", "migrate", "--config", str(config)), capture_output=True, text=True, timeout=120
    )
    assert migrated.returncode == 0, migrated.stderr
    assert f"upgraded from nothing to {schema.head_revision()}" in migrated.stdout

    caller = Caller.gateway(dev_pki)
    find = adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number=CHILD_NHS))
    family = adapter_pb2.GetFamilyContextRequest(local_person_ids=[CHILD], include_relatives=True)
    log_file = tmp_path / "adapter.log"
    with running_adapter(config, log_file) as proc, caller.sync_channel(f"127.0.0.1:{proc.port}") as ch:  # type: ignore[attr-defined]
        stub = adapter_pb2_grpc.AdapterServiceStub(ch)

        def meta(rid: str) -> tuple[tuple[str, str], ...]:
            return caller.metadata(LEEDS, requester(request_id=rid))

        assert stub.FindPeople(find, metadata=meta("rid-before"), timeout=20).candidates
        _allow_connections(admin, postgres_url, False)
        try:
            for rid, call, request in (
                ("rid-down-find", stub.FindPeople, find),
                ("rid-down-family", stub.GetFamilyContext, family),
            ):
                with pytest.raises(grpc.RpcError) as down:
                    call(request, metadata=meta(rid), timeout=20)
                assert down.value.code() == grpc.StatusCode.UNAVAILABLE
                assert down.value.details() == "disclosure log unavailable"
        finally:
            _allow_connections(admin, postgres_url, True)
        # The writer takes a fresh connection: the adapter answers again without a restart.
        assert stub.GetFamilyContext(family, metadata=meta("rid-after"), timeout=20).people

    assert set(_records(postgres_url)) == {"rid-before", "rid-after"}
    _verify(postgres_url, dev_pki)
    logs = log_file.read_text(encoding="utf-8")
    assert "disclosure log unavailable request_id=rid-down-find" in logs
    assert "status=UNAVAILABLE" in logs
    for personal in ("Zo", "NEILL", CHILD_NHS, "TEST-CASE-1"):
        assert personal not in logs
