"""(e) Every successful answer has exactly one committed audit record, holding the hash of the bytes
the client received, in a log that verifies with the demo's tree-head key; no audit, no data (503)."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa
from e2e_support import CASE_REFERENCE, PURPOSE, Gateway, audit_rows, personal_data
from familyctx_gateway.audit_schema import audit_log_tables

from familyctx.auditlog import load_public_jwks, verify_log
from familyctx.demo import Federation


def _count(engine: sa.Engine) -> int:
    table = sa.Table("audit_events", sa.MetaData(), autoload_with=engine)
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one())


def test_each_successful_request_adds_exactly_one_record(gateway: Gateway, scenario: dict[str, Any]) -> None:
    child = scenario["child"]
    before = _count(gateway.audit_engine)
    search = gateway.post(
        "/v1/searches",
        {"purpose": "s17_assessment", "case_reference": "AUDIT-1", "family_name": child["family_name"]},
    )
    context = gateway.family_context(child)
    assert search.status_code == 200 and context.status_code == 200
    assert _count(gateway.audit_engine) == before + 2

    (searched,) = audit_rows(gateway.audit_engine, search.headers["x-request-id"])
    assert searched["endpoint"].endswith("searches")
    assert searched["purpose"] == "s17_assessment" and searched["case_reference"] == "AUDIT-1"
    assert searched["query_terms"]["family_name"] == child["family_name"]
    assert searched["http_status"] == 200
    (contexted,) = audit_rows(gateway.audit_engine, context.headers["x-request-id"])
    assert contexted["purpose"] == PURPOSE and contexted["case_reference"] == CASE_REFERENCE
    assert set(contexted["councils"]) == {"E08000007", "E08000035", "E08000003"}
    for response, row in ((search, searched), (context, contexted)):
        assert row["response_sha256"] == hashlib.sha256(response.content).hexdigest()
    assert contexted["record"]["what"]["involvements"]  # which service records were shown


def test_the_demo_log_verifies_with_its_tree_head_key(gateway: Gateway, federation: Federation) -> None:
    report = verify_log(
        gateway.audit_engine,
        audit_log_tables,
        public_jwks=load_public_jwks(federation.pki.gateway_audit_jwks),
        log_id="familyctx-gateway",
    )
    assert report.ok and report.entries == _count(gateway.audit_engine), report.to_dict()


def test_audit_store_unavailable_gives_503_and_no_data(gateway: Gateway, scenario: dict[str, Any]) -> None:
    """Hold an exclusive lock on the audit SQLite file so the gateway's write cannot commit."""
    before = _count(gateway.audit_engine)
    locker = sa.create_engine(f"sqlite:///{gateway.audit_engine.url.database}", isolation_level=None)
    with locker.connect() as conn:
        conn.exec_driver_sql("BEGIN EXCLUSIVE")
        try:
            response = gateway.family_context(scenario["child"])
        finally:
            conn.exec_driver_sql("ROLLBACK")
    locker.dispose()
    assert response.status_code == 503, response.text[:300]
    for value in personal_data(scenario):
        assert value not in response.text
    assert audit_rows(gateway.audit_engine, response.headers["x-request-id"]) == []
    assert _count(gateway.audit_engine) == before
