"""Retention of an adapter's disclosure log on SQLite and PostgreSQL: records older than their class's
period lose their content and the personal data of their index rows, keep their leaf hash (the log and
its signed heads still verify), newer records are untouched, a dry run changes nothing; the
``disclosure_0002`` migration keeps existing rows; ``familyctx adapter retention`` runs it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from familyctx_adapter import disclosure_record as dr
from familyctx_adapter import disclosure_schema as schema
from familyctx_adapter.disclosure import log_id_for, write_index
from familyctx_adapter.disclosure_index_check import DisclosureIndexChecker
from familyctx_adapter.disclosure_retention import apply_retention
from familyctx_adapter.settings import DisclosureLogSettings

from familyctx.auditlog.engine import create_log_engine
from familyctx.auditlog.heads import TreeHeadSigner
from familyctx.auditlog.log import MerkleLog
from familyctx.auditlog.verify import verify_log
from familyctx.trust.assertion import Requester, VerifiedAssertion

LEEDS = "E08000035"
NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
WORKER = "worker-sw.stockport"
PERSONAL = ("requester_sub", "client", "case_reference", "assertion_jti", "local_person_ids")


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'disclosure.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def _record(n: int, when: dt.datetime, record_class: str) -> dict[str, Any]:
    who = Requester(
        sub=WORKER,
        name="Sam Walker",
        organisation="E08000007",
        role="social_worker",
        client="familyctx-web",
        purpose="s47_enquiry",
        case_reference=f"CASE-{n}",
        request_id=f"rid-{n}",
    )
    verified = VerifiedAssertion(who, f"jti-{n}", when, when + dt.timedelta(seconds=60), LEEDS)
    refused = record_class == dr.CLASS_REFUSAL
    released = dr.Released() if refused else dr.Released(local_person_ids=(f"P{n}", f"P{n}-mother"))
    return dr.disclosure_record(
        council=LEEDS,
        method="FindPeople",
        verified=verified,
        asked=dr.Asked(query_fields=("nhs_number",)),
        released=released,
        response_hash=None if refused else "ab" * 32,
        occurred_at=when,
    )


def _write(engine: sa.Engine, records: list[tuple[str, dt.datetime]]) -> None:
    """Append as the adapter's writer does (entry and index rows in one transaction), each record with
    its own (old) time."""
    log = MerkleLog(engine, schema.log)
    with engine.begin() as conn:
        for n, (record_class, when) in enumerate(records):
            record = _record(n, when, record_class)
            (seq,) = log.append_prepared(conn, [log.prepare(record_class, record, recorded_at=when)])
            write_index(conn, [(seq, record)])


def _snapshot(engine: sa.Engine) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(sa.select(t).order_by(*t.primary_key.columns))]
            for t in (schema.log.entries, schema.disclosure_index, schema.disclosure_people)
        }


def _days_ago(days: int) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


# seq: class, age. Retention below: disclosure 30 days, refusal 90 days.
RECORDS = [
    (dr.CLASS_DISCLOSURE, _days_ago(40)),  # 0: past 30 days: redacted
    (dr.CLASS_REFUSAL, _days_ago(40)),  # 1: within 90 days: kept
    (dr.CLASS_REFUSAL, _days_ago(100)),  # 2: past 90 days: redacted
    (dr.CLASS_DISCLOSURE, _days_ago(5)),  # 3: recent: kept
    (dr.CLASS_DISCLOSURE, _days_ago(31)),  # 4: just past 30 days: redacted
]
GONE, KEPT = {0, 2, 4}, {1, 3}


def test_old_records_are_redacted_with_their_index_data_and_the_log_still_verifies(
    url: str, tmp_path: Path
) -> None:
    section = DisclosureLogSettings(
        database_url=url,
        signing_key_file=tmp_path / "k.jwk.json",
        retention_days={"disclosure": 30, "refusal": 90},
    )
    signer = TreeHeadSigner(TreeHeadSigner.generate_key(section.signing_key_file), log_id=log_id_for(LEEDS))
    engine = create_log_engine(url)
    try:
        assert schema.upgrade(engine).at_head
        _write(engine, RECORDS)
        head = MerkleLog(engine, schema.log).sign_tree_head(signer)
        before = _snapshot(engine)

        dry = apply_retention(engine, section, now=NOW, dry_run=True)
        assert (dry.dry_run, dry.redacted) == (True, {"disclosure": 2, "refusal": 1})
        assert dry.cutoffs == {"disclosure": _days_ago(30), "refusal": _days_ago(90)}
        assert _snapshot(engine) == before  # a dry run changes nothing

        report = apply_retention(engine, section, now=NOW)
        assert (report.redacted, report.total) == ({"disclosure": 2, "refusal": 1}, 3)
        assert apply_retention(engine, section, now=NOW).total == 0  # idempotent
        after = _snapshot(engine)

        log = MerkleLog(engine, schema.log)
        entries = {seq: log.entry(seq) for seq in range(len(RECORDS))}
        with engine.connect() as conn:
            index = {r.seq: r for r in conn.execute(sa.select(schema.disclosure_index))}
            people = set(conn.execute(sa.select(schema.disclosure_people.c.seq)).scalars())
            null_ids = set(
                conn.execute(
                    sa.select(schema.disclosure_index.c.seq).where(
                        schema.disclosure_index.c.local_person_ids.is_(None)  # SQL NULL, not JSON null
                    )
                ).scalars()
            )
        report_after = verify_log(
            engine,
            schema.log,
            public_jwks=signer.public_jwks(),
            kept_heads=[head],
            index_checker=DisclosureIndexChecker(),  # the index rows left are what retention leaves
        )
    finally:
        engine.dispose()

    # Leaf hashes never change: the tree is the same tree.
    leaf = {row[0]: row[4] for row in before[schema.log.entries.name]}
    assert {row[0]: row[4] for row in after[schema.log.entries.name] if row[0] in leaf} == leaf
    for seq in GONE:
        entry = entries[seq]
        assert entry is not None and entry.record is None and entry.redacted_at is not None
        row = index[seq]
        assert all(getattr(row, c) is None for c in PERSONAL), row
        # What is not personal stays, for statistics.
        assert (row.requester_organisation, row.requester_role, row.purpose, row.method) == (
            "E08000007",
            "social_worker",
            "s47_enquiry",
            "FindPeople",
        )
        assert row.request_id == f"rid-{seq}" and row.occurred_at is not None
    assert null_ids == GONE
    for seq in KEPT:
        entry = entries[seq]
        assert entry is not None and entry.record is not None and entry.redacted_at is None
        assert entry.record["requester"]["name"] == "Sam Walker"
        row = index[seq]
        assert (row.requester_sub, row.case_reference, row.assertion_jti) == (
            WORKER,
            f"CASE-{seq}",
            f"jti-{seq}",
        )
    # disclosure_people: refusals release nobody; of the disclosures only seq 3 is still there.
    assert people == {3}

    assert report_after.ok, report_after.to_dict()
    # + one redaction record per class redacted (disclosure, refusal), listing what it redacted
    assert (report_after.entries, report_after.redacted) == (7, 3)
    assert report_after.redacted_by_class == {"disclosure": 2, "refusal": 1}
    assert report_after.checked_heads >= 1 and head.tree_size == 5


def test_migration_from_0001_keeps_rows_and_downgrade_refills_redacted_ones(url: str) -> None:
    engine = create_log_engine(url)
    section = DisclosureLogSettings(database_url=url, signing_key_file=Path("unused.jwk.json"))
    try:
        schema.upgrade(engine, "disclosure_0001")
        _write(engine, [(dr.CLASS_DISCLOSURE, _days_ago(3000)), (dr.CLASS_DISCLOSURE, _days_ago(1))])
        before = _snapshot(engine)
        assert schema.upgrade(engine).current == "disclosure_0002"
        assert _snapshot(engine) == before  # the upgrade changes no data
        assert apply_retention(engine, section, now=NOW).redacted == {"disclosure": 1, "refusal": 0}

        assert schema.downgrade(engine, "disclosure_0001").current == "disclosure_0001"
        with engine.connect() as conn:
            rows = conn.execute(sa.select(schema.disclosure_index).order_by("seq")).all()
        assert [(r.requester_sub, r.case_reference, r.local_person_ids) for r in rows] == [
            ("", "", []),
            (WORKER, "CASE-1", ["P1", "P1-mother"]),
        ]
        assert verify_log(engine, schema.log, public_jwks=None).ok
    finally:
        engine.dispose()


def _familyctx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "familyctx", *args], capture_output=True, text=True, timeout=120, check=False
    )


def _config(tmp_path: Path, url: str, retention: str = "{disclosure: 2557}") -> Path:
    # The adapter's files (certificates, keys, policy) are only read by `serve`: placeholders do.
    path = tmp_path / "leeds.yaml"
    path.write_text(
        "council: {gss_code: E08000035, name: Leeds, dfe_la_number: 383}\n"
        f"cms: mosaic\ndatabase_url: sqlite:///{tmp_path}/warehouse.sqlite\n"
        "tls: {cert_file: a.pem, key_file: a.key, client_ca_file: ca.pem}\n"
        "gateway: {issuer: https://gateway.familyctx.local, jwks_file: jwks.json}\n"
        "policy_file: leeds.cedar\n"
        f"disclosure_log:\n  database_url: {url}\n  signing_key_file: k.jwk.json\n"
        f"  retention_days: {retention}\n",
        encoding="utf-8",
    )
    return path


def test_retention_command(url: str, tmp_path: Path) -> None:
    config = _config(tmp_path, url)
    if url.startswith("sqlite"):
        missing = _familyctx("adapter", "retention", "--config", str(config), "--dry-run")
        assert missing.returncode == 1 and "no SQLite database at" in missing.stderr, missing.stderr
        assert not Path(url.removeprefix("sqlite:///")).exists()  # not created by asking
    engine = create_log_engine(url)
    try:
        engine.connect().close()
        behind = _familyctx("adapter", "retention", "--config", str(config))
        assert behind.returncode == 1, behind.stderr
        assert "schema is at nothing" in behind.stderr and "familyctx adapter migrate" in behind.stderr
        schema.upgrade(engine)
        now = dt.datetime.now(dt.UTC)
        _write(engine, [(dr.CLASS_DISCLOSURE, now - dt.timedelta(days=3000)), (dr.CLASS_REFUSAL, now)])
    finally:
        engine.dispose()

    dry = _familyctx("adapter", "retention", "--config", str(config), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        "disclosure: 1 due for redaction (older than 2557 days)",
        "refusal: 0 due for redaction (older than 2557 days)",
    ]
    done = _familyctx("adapter", "retention", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "disclosure: 1 redacted (older than 2557 days)" in done.stdout
    again = _familyctx("adapter", "retention", "--config", str(config))
    assert again.returncode == 0 and "disclosure: 0 redacted" in again.stdout
    engine = create_log_engine(url)
    try:
        log = MerkleLog(engine, schema.log)
        assert [log.entry(s).record is None for s in (0, 1)] == [True, False]  # type: ignore[union-attr]
        assert verify_log(engine, schema.log, public_jwks=None).redacted == 1
    finally:
        engine.dispose()

    bad = _familyctx("adapter", "retention", "--config", str(_config(tmp_path, url, "{disclosures: 30}")))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert (
        "disclosure_log.retention_days" in bad.stderr and "unknown record class 'disclosures'" in bad.stderr
    )
    assert "the classes are disclosure, refusal" in bad.stderr


def test_retention_command_with_the_database_down_says_so_without_the_url(tmp_path: Path) -> None:
    url = "postgresql+psycopg://adapter:s3cret@127.0.0.1:1/disclosure"
    result = _familyctx("adapter", "retention", "--config", str(_config(tmp_path, url)))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "the disclosure log database cannot be used (OperationalError)" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout
