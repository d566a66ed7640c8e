"""Retention by redaction on SQLite and PostgreSQL: records older than their class's period lose their
content and the personal data of their index rows, keep their leaf hash (the log and its signed heads
still verify), and newer records are untouched; ``familyctx gateway retention`` runs it."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from familyctx_gateway.audit import (
    AuditEvent,
    AuditOutcome,
    AuditStore,
    RecordClass,
    Subject,
    SubjectKind,
    write_index,
)
from familyctx_gateway.audit_record import audit_payload, rfc3339
from familyctx_gateway.audit_retention import apply_retention
from familyctx_gateway.audit_schema import break_glass_grants, break_glass_notifications
from familyctx_gateway.settings import AuditSettings
from familyctx_gateway.testing.audit import committed_records, verify_audit_log

from familyctx.auditlog import TreeHeadSigner

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
GRANT_IDS = {1: "6f1c2a4e-8f1d-4c6b-9a7e-2d5f6e8a9b11", 2: "6f1c2a4e-8f1d-4c6b-9a7e-2d5f6e8a9b12"}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def _event(n: int, when: dt.datetime, record_class: RecordClass = RecordClass.access) -> AuditEvent:
    event = AuditEvent(
        request_id=f"r-{n}",
        user_sub="user-sw.stockport",
        user_name="Sam Walker",
        organisation="E08000007",
        roles=["social_worker"],
        client="familyctx-cli",
        jti=f"j-{n}",
        endpoint="POST /v1/searches",
        outcome=AuditOutcome.success,
        http_status=200,
        record_class=record_class,
        purpose="s47_enquiry",
        case_reference="C-1",
        role="social_worker",
        subjects=[
            Subject(SubjectKind.searched_for, family_name="O'Neill", date_of_birth="2014-03-05"),
            Subject(
                SubjectKind.returned, gss_code="E08000007", local_person_id="S-1001", nhs_number="9990000018"
            ),
        ],
        response_sha256="ab" * 32,
        response_bytes=10,
        occurred_at=when,
    )
    if record_class is RecordClass.break_glass:
        event.break_glass, event.break_glass_id, event.break_glass_reason = (
            True,
            GRANT_IDS[n],
            "Police report",
        )
        event.grant = {
            "break_glass_id": GRANT_IDS[n],
            "reason": "Police report",
            "opened_at": rfc3339(when),
            "expires_at": rfc3339(when + dt.timedelta(minutes=15)),
            "councils_notified": ["E08000007"],
        }
    return event


def _write(store: AuditStore, events: list[AuditEvent]) -> None:
    """Append as the writer does, but with each record's own (old) time."""
    with store.engine.begin() as conn:
        for event in events:
            payload = audit_payload(event)
            prepared = store.log.prepare(event.record_class.value, payload, recorded_at=event.occurred_at)
            (seq,) = store.log.append_prepared(conn, [prepared])
            write_index(conn, [(seq, payload)])


def test_old_records_are_redacted_and_the_log_still_verifies(url: str, tmp_path: Path) -> None:
    settings = AuditSettings(database_url=url, retention_days={"access": 30, "break_glass": 90})
    signer = TreeHeadSigner(TreeHeadSigner.generate_key(tmp_path / "k.jwk.json"), log_id="familyctx-gateway")
    store = AuditStore(settings, signer=signer)
    try:
        store.create_schema()
        _write(
            store,
            [
                _event(0, NOW - dt.timedelta(days=40)),  # access, past 30 days
                _event(1, NOW - dt.timedelta(days=40), RecordClass.break_glass),  # within 90 days
                _event(2, NOW - dt.timedelta(days=100), RecordClass.break_glass),  # past 90 days
                _event(3, NOW - dt.timedelta(days=5)),  # recent
            ],
        )
        head_before = store.log.sign_tree_head(signer)
        assert apply_retention(store.engine, settings, now=NOW, dry_run=True).redacted == {
            "access": 1,
            "break_glass": 1,
            "ig_access": 0,
        }
        report = apply_retention(store.engine, settings, now=NOW)
        assert report.redacted == {"access": 1, "break_glass": 1, "ig_access": 0}
        assert apply_retention(store.engine, settings, now=NOW).total == 0  # idempotent
        with store.engine.connect() as conn:
            grants = conn.execute(sa.select(break_glass_grants.c.id)).scalars().all()
            notified = conn.execute(sa.select(break_glass_notifications.c.grant_id)).scalars().all()
    finally:
        store.dispose()

    rows = {r["request_id"]: r for r in committed_records(url)}
    for gone in ("r-0", "r-2"):
        row = rows[gone]
        assert row["record"] is None and row["subjects"] == []
        assert (row["user_sub"], row["user_name"], row["jti"], row["case_reference"], row["client"]) == (
            None,
        ) * 5
        # What is not personal stays, for statistics.
        assert (row["organisation"], row["purpose"], row["outcome"], row["http_status"]) == (
            "E08000007",
            "s47_enquiry",
            "success",
            200,
        )
    for kept in ("r-1", "r-3"):
        assert rows[kept]["record"]["who"]["name"] == "Sam Walker" and len(rows[kept]["subjects"]) == 2
    # The grant past retention is gone with its notifications; the other is kept.
    assert grants == [GRANT_IDS[1]] and notified == [GRANT_IDS[1]]

    report = verify_audit_log(url, public_jwks=signer.public_jwks())
    # + one redaction record per class redacted (access, break_glass), each listing what it redacted
    assert report.ok and report.entries == 6 and report.redacted == 2, report.to_dict()
    assert report.checked_heads >= 1 and head_before.tree_size == 4


def test_retention_command(url: str, tmp_path: Path) -> None:
    settings = AuditSettings(database_url=url)
    store = AuditStore(settings)
    try:
        store.create_schema()
        _write(
            store,
            [
                _event(0, dt.datetime.now(dt.UTC) - dt.timedelta(days=3000)),
                _event(1, dt.datetime.now(dt.UTC)),
            ],
        )
    finally:
        store.dispose()
    config = tmp_path / "gateway.yaml"
    config.write_text(json.dumps({"audit": {"database_url": url, "retention_days": {"access": 2557}}}))
    argv = [sys.executable, "-m", "familyctx", "gateway", "retention", "--config", str(config)]
    dry = subprocess.run([*argv, "--dry-run"], capture_output=True, text=True, timeout=120, check=False)
    assert dry.returncode == 0 and "access: 1 due for redaction (older than 2557 days)" in dry.stdout, (
        dry.stderr
    )
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and "access: 1 redacted (older than 2557 days)" in done.stdout, done.stderr
    assert [r["record"] is None for r in committed_records(url)] == [True, False]
    assert verify_audit_log(url).ok
