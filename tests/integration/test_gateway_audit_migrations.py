"""The gateway's audit schema under Alembic, on SQLite and PostgreSQL: an empty database migrates to a
schema equal to the code's metadata; a database made by the previous release (its create_all tables,
frozen below, with records and a break-glass grant) is upgraded with every old record carried into the
Merkle log (verifiable, marked migrated, in their original order); the gateway refuses to start on an
unmigrated PostgreSQL database; several ``familyctx gateway migrate`` processes at once are safe."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from familyctx_gateway.app import create_app
from familyctx_gateway.audit_schema import (
    break_glass_grants,
    break_glass_notifications,
    metadata,
)
from familyctx_gateway.migrations import (
    VERSION_TABLE,
    SchemaNotCurrent,
    current_revision,
    head_revision,
    upgrade_to_head,
)
from familyctx_gateway.settings import GatewaySettings, OidcSettings
from familyctx_gateway.testing.audit import committed_records, verify_audit_log
from familyctx_gateway.testing.gateway import running_gateway
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer
from familyctx_gateway.testing.scenario import NHS

from familyctx.auditlog import create_log_engine

STOCKPORT, LEEDS = "E08000007", "E08000035"
GRANT_ID = "0b3c2a4e-8f1d-4c6b-9a7e-2d5f6e8a9b10"
T0 = dt.datetime(2026, 1, 2, 9, 0, tzinfo=dt.UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


# -- the previous release's schema (frozen copy of its metadata.create_all DDL) ------------------------


def _previous_schema(with_issue3_columns: bool) -> tuple[sa.MetaData, sa.Table]:
    old = sa.MetaData()
    columns = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("request_id", sa.String(64), nullable=False, unique=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("user_sub", sa.String(200), nullable=False, index=True),
        sa.Column("user_name", sa.String(200), nullable=False),
        sa.Column("organisation", sa.String(20), nullable=False),
        sa.Column("roles", sa.JSON, nullable=False),
        sa.Column("client", sa.String(200), nullable=False),
        sa.Column("jti", sa.String(200), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=True),
        sa.Column("case_reference", sa.String(64), nullable=True),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("query_terms", sa.JSON, nullable=False),
        sa.Column("subjects_returned", sa.JSON, nullable=False),
        sa.Column("councils", sa.JSON, nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
    ]
    if with_issue3_columns:
        columns += [
            sa.Column("role", sa.String(40), nullable=True),
            sa.Column("break_glass", sa.Boolean, nullable=False, server_default=sa.false()),
            sa.Column("break_glass_id", sa.String(36), nullable=True),
        ]
        sa.Table(
            "break_glass_grants",
            old,
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("user_sub", sa.String(200), nullable=False, index=True),
            sa.Column("issuer", sa.String(500), nullable=False),
            sa.Column("user_name", sa.String(200), nullable=False),
            sa.Column("organisation", sa.String(20), nullable=False),
            sa.Column("client", sa.String(200), nullable=False),
            sa.Column("role", sa.String(40), nullable=False),
            sa.Column("purpose", sa.String(40), nullable=False),
            sa.Column("case_reference", sa.String(64), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("request_id", sa.String(64), nullable=False),
        )
        sa.Table(
            "break_glass_notifications",
            old,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("council_gss_code", sa.String(20), nullable=False, index=True),
            sa.Column("grant_id", sa.String(36), sa.ForeignKey("break_glass_grants.id"), nullable=False),
            sa.Column("worker_sub", sa.String(200), nullable=False),
            sa.Column("worker_name", sa.String(200), nullable=False),
            sa.Column("worker_organisation", sa.String(20), nullable=False),
            sa.Column("purpose", sa.String(40), nullable=False),
            sa.Column("case_reference", sa.String(64), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        )
    return old, sa.Table("audit_events", old, *columns)


def _old_row(n: int, **values: Any) -> dict[str, Any]:
    return {
        "request_id": f"old-{n}",
        "occurred_at": T0 + dt.timedelta(minutes=n),
        "user_sub": "user-sw.stockport",
        "user_name": "Sam Walker",
        "organisation": STOCKPORT,
        "roles": ["social_worker"],
        "client": "familyctx-cli",
        "jti": f"jti-{n}",
        "purpose": "s47_enquiry",
        "case_reference": "C-1",
        "endpoint": "POST /v1/searches",
        "query_terms": {"family_name": "O'Neill", "date_of_birth": "2014-03-05"},
        "subjects_returned": [{"gss_code": STOCKPORT, "local_person_id": "S-1001"}],
        "councils": {STOCKPORT: "ok", LEEDS: "unavailable"},
        "outcome": "partial",
        "http_status": 200,
        **values,
    }


def _make_previous_release_database(url: str, *, with_issue3_columns: bool) -> list[dict[str, Any]]:
    old, events = _previous_schema(with_issue3_columns)
    rows = [
        _old_row(1),
        _old_row(
            2,
            endpoint="POST /v1/family-context",
            outcome="success",
            query_terms={"subject": {"gss_code": STOCKPORT, "local_person_id": "S-1001"}},
            subjects_returned=[
                {"gss_code": STOCKPORT, "local_person_id": "S-1001"},
                {"gss_code": LEEDS, "local_person_id": "L-77"},
            ],
            councils={STOCKPORT: "ok", LEEDS: "ok"},
        ),
        _old_row(3, outcome="denied", http_status=403, subjects_returned=[], councils={}),
    ]
    if with_issue3_columns:
        rows[1].update(role="social_worker", break_glass=False, break_glass_id=None)
        rows[2].update(role=None, break_glass=False, break_glass_id=None)
        rows[0].update(role="social_worker", break_glass=False, break_glass_id=None)
        rows.append(
            _old_row(
                4,
                endpoint="POST /v1/break-glass",
                outcome="success",
                http_status=201,
                query_terms={"minutes": 15},
                subjects_returned=[],
                councils={},
                role="team_manager",
                break_glass=True,
                break_glass_id=GRANT_ID,
            )
        )
    engine = sa.create_engine(url)
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(events.insert(), rows)
        if with_issue3_columns:
            grant = {
                "id": GRANT_ID,
                "user_sub": "user-tm.leeds",
                "issuer": "https://idp",
                "user_name": "Taylor Moss",
                "organisation": LEEDS,
                "client": "familyctx-cli",
                "role": "team_manager",
                "purpose": "early_help_assessment",
                "case_reference": "EH-1",
                "reason": "Out of hours, police report",
                "opened_at": T0,
                "expires_at": T0 + dt.timedelta(minutes=15),
                "request_id": "old-4",
            }
            conn.execute(old.tables["break_glass_grants"].insert(), grant)
            conn.execute(
                old.tables["break_glass_notifications"].insert(),
                [
                    {
                        "council_gss_code": code,
                        "grant_id": GRANT_ID,
                        "worker_sub": "user-tm.leeds",
                        "worker_name": "Taylor Moss",
                        "worker_organisation": LEEDS,
                        "purpose": "early_help_assessment",
                        "case_reference": "EH-1",
                        "reason": "Out of hours, police report",
                        "opened_at": T0,
                        "expires_at": T0 + dt.timedelta(minutes=15),
                    }
                    for code in (STOCKPORT, LEEDS)
                ],
            )
    engine.dispose()
    return rows


def _table_names(url: str) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


# -- tests -----------------------------------------------------------------------------------------------


def test_an_empty_database_migrates_to_the_code_schema(url: str) -> None:
    engine = create_log_engine(url)
    try:
        assert current_revision(engine) is None
        assert upgrade_to_head(engine) == (None, head_revision())
        assert upgrade_to_head(engine) == (head_revision(), head_revision())  # idempotent
        with engine.connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    # The migrations create exactly what audit_schema.metadata describes (tables, columns, indexes).
    assert [d for d in diffs if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)] == []
    assert {t.name for t in metadata.sorted_tables} | {VERSION_TABLE} == _table_names(url)


@pytest.mark.parametrize("with_issue3_columns", [True, False], ids=["issue3-schema", "issue2-schema"])
async def test_a_previous_release_database_is_carried_into_the_log(
    url: str, with_issue3_columns: bool, issuer: TestIssuer
) -> None:
    old_rows = _make_previous_release_database(url, with_issue3_columns=with_issue3_columns)
    engine = create_log_engine(url)
    try:
        assert upgrade_to_head(engine)[1] == head_revision()
    finally:
        engine.dispose()
    assert "audit_events_legacy" not in _table_names(url)

    records = committed_records(url)
    assert [r["request_id"] for r in records] == [r["request_id"] for r in old_rows]  # id order kept
    assert [r["seq"] for r in records] == list(range(len(old_rows)))
    assert all(r["migrated"] and r["record"]["migrated"] is True for r in records)
    first = records[0]
    assert first["record_class"] == "access" and first["occurred_at"].replace(
        tzinfo=dt.UTC
    ) == T0 + dt.timedelta(minutes=1)
    assert first["record"]["who"]["roles"] == ["social_worker"] and first["record"]["who"]["jti"] == "jti-1"
    assert first["record"]["what"]["query"] == {"family_name": "O'Neill", "date_of_birth": "2014-03-05"}
    assert first["councils"] == {STOCKPORT: "ok", LEEDS: "unavailable"}
    asked = [s for s in first["subjects"] if s["kind"] == "searched_for"]
    assert [(s["family_name_key"], s["date_of_birth"]) for s in asked] == [("oneill", dt.date(2014, 3, 5))]
    returned = {(s["gss"], s["local_person_id"]) for s in records[1]["subjects"] if s["kind"] == "returned"}
    assert returned == {(STOCKPORT, "S-1001"), (LEEDS, "L-77")}
    assert (records[2]["outcome"], records[2]["http_status"]) == ("denied", 403)
    if with_issue3_columns:
        assert records[0]["role"] == "social_worker"
        assert records[3]["record_class"] == "break_glass" and records[3]["break_glass_id"] == GRANT_ID
        grants = _select(url, sa.select(break_glass_grants.c.id, break_glass_grants.c.reason))
        assert grants == [(GRANT_ID, "Out of hours, police report")]
        notified = _select(url, sa.select(break_glass_notifications.c.council_gss_code))
        assert sorted(n[0] for n in notified) == sorted([LEEDS, STOCKPORT])
    else:
        assert records[0]["role"] is None and records[0]["break_glass"] is False

    report = verify_audit_log(url)
    assert report.ok and report.entries == len(old_rows), report.to_dict()

    # The gateway appends after the carried-over records, and the whole log still verifies.
    async with running_gateway(issuer, url) as gw:
        resp = await gw.client.post(
            "/v1/searches",
            json={"purpose": "cp_conference", "case_reference": "ICPC-1", "nhs_number": NHS["zoe"]},
            headers=gw.auth(),
        )
    assert resp.status_code == 200
    new = committed_records(url, request_id=resp.headers["x-request-id"])
    assert [r["seq"] for r in new] == [len(old_rows)] and new[0]["migrated"] is False
    report = verify_audit_log(url)
    assert report.ok and report.entries == len(old_rows) + 1, report.to_dict()


def _select(url: str, query: Any) -> list[Any]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(query)]
    finally:
        engine.dispose()


async def test_the_gateway_refuses_an_unmigrated_postgresql_database(
    postgres_url: str, issuer: TestIssuer
) -> None:
    settings = GatewaySettings(
        audit={"database_url": postgres_url}, oidc=[OidcSettings(issuer=issuer.issuer, audience=AUDIENCE)]
    )
    assert settings.audit.migrate_at_startup is False
    app = create_app(settings)
    with pytest.raises(SchemaNotCurrent) as refused:
        async with app.router.lifespan_context(app):
            pass
    assert "familyctx gateway migrate" in str(refused.value) and refused.value.current is None
    assert _table_names(postgres_url) == set()  # nothing was created


def _config(tmp_path: Path, url: str, **audit: Any) -> Path:
    config = tmp_path / "gateway.yaml"
    config.write_text(json.dumps({"audit": {"database_url": url, **audit}}))  # JSON is YAML
    return config


def _familyctx(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "familyctx", *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_migrate_command_from_several_processes_at_once(postgres_url: str, tmp_path: Path) -> None:
    _make_previous_release_database(postgres_url, with_issue3_columns=True)
    config = _config(tmp_path, postgres_url)
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "familyctx", "gateway", "migrate", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], outputs
    said = sorted(out.strip() for out, _err in outputs)
    # One process did the upgrade; the others waited for its lock and found the schema at head.
    assert said == sorted(
        [f"audit database upgraded from an unversioned schema to {head_revision()}"]
        + [f"audit database already at {head_revision()}"] * 2
    )
    report = verify_audit_log(postgres_url)
    assert report.ok and report.entries == 4, report.to_dict()
    assert len(committed_records(postgres_url)) == 4


def test_migrate_command_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("audit: {retention_days: {acess: 10}}\n")
    result = _familyctx("gateway", "migrate", "--config", str(bad))
    assert result.returncode == 2
    assert (
        "audit.retention_days: unknown record class acess; the classes are access, break_glass, ig_access"
        in (result.stderr)
    )
    secret = "postgresql+psycopg://auditor:s3cret-pw@127.0.0.1:1/audit"
    result = _familyctx("gateway", "migrate", "--config", str(_config(tmp_path, secret)))
    assert result.returncode == 1 and "the audit database cannot be used" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout and "Traceback" not in result.stderr
