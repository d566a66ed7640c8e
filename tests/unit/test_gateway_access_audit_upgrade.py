"""An audit database made by the release before roles and break glass (no ``role``, ``break_glass``,
``break_glass_id`` columns) is upgraded in place at start-up, keeping its records, so an existing
deployment (or ``var/demo``) keeps auditing instead of failing every request with 503. SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa
from familyctx_gateway.audit import AuditEvent, AuditOutcome, AuditStore, audit_events
from familyctx_gateway.break_glass import BreakGlassStore, break_glass_grants, break_glass_notifications

OLD_COLUMNS = [
    c.name for c in audit_events.columns if c.name not in ("role", "break_glass", "break_glass_id")
]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def _old_table(engine: sa.Engine) -> None:
    old = sa.MetaData()
    sa.Table("audit_events", old, *[c._copy() for c in audit_events.columns if c.name in OLD_COLUMNS])
    old.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            old.tables["audit_events"].insert(),
            {
                "request_id": "old-1",
                "occurred_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
                "user_sub": "sw",
                "user_name": "Sam Walker",
                "organisation": "E08000007",
                "roles": ["social_worker"],
                "client": "familyctx-cli",
                "jti": "j",
                "purpose": "s47_enquiry",
                "case_reference": "C-1",
                "endpoint": "POST /v1/searches",
                "query_terms": {},
                "subjects_returned": [],
                "councils": {},
                "outcome": "success",
                "http_status": 200,
            },
        )


def test_an_old_audit_table_gains_the_new_columns_and_keeps_its_records(url: str) -> None:
    engine = sa.create_engine(url)
    _old_table(engine)
    store = AuditStore(url)
    try:
        store.create_schema()
        store.create_schema()  # idempotent
        BreakGlassStore(store.engine).create_schema()
        columns = {c["name"] for c in sa.inspect(engine).get_columns("audit_events")}
        assert {"role", "break_glass", "break_glass_id"} <= columns
        tables = set(sa.inspect(engine).get_table_names())
        assert {break_glass_grants.name, break_glass_notifications.name} <= tables
        event = AuditEvent(
            request_id="new-1",
            user_sub="tm",
            user_name="Taylor Moss",
            organisation="E08000035",
            roles=["team_manager"],
            client="familyctx-cli",
            jti="j2",
            endpoint="POST /v1/family-context",
            outcome=AuditOutcome.success,
            http_status=200,
            role="team_manager",
            break_glass=True,
            break_glass_id="0b3c2a4e-8f1d-4c6b-9a7e-2d5f6e8a9b10",
        )
        asyncio.run(store.record(event))
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(
                    audit_events.c.request_id,
                    audit_events.c.role,
                    audit_events.c.break_glass,
                    audit_events.c.break_glass_id,
                ).order_by(audit_events.c.id)
            ).all()
        assert [tuple(r) for r in rows] == [
            ("old-1", None, False, None),
            ("new-1", "team_manager", True, "0b3c2a4e-8f1d-4c6b-9a7e-2d5f6e8a9b10"),
        ]
    finally:
        store.dispose()
        engine.dispose()
