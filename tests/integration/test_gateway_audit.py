"""Every search and family-context request leaves exactly one committed audit record, read back here
through a separate engine; a failed audit write gives 503 and no data. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from familyctx_gateway.audit import audit_events
from familyctx_gateway.testing.gateway import running_gateway
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT

PURPOSE = {"purpose": "cp_conference", "case_reference": "ICPC-2026/19"}
SUBJECT = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}
NO_DATA = {"detail": "Audit store unavailable; no data returned", "errors": []}


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))


def _rows(url: str) -> list[dict]:
    engine = sa.create_engine(url)  # a separate engine: sees only what was committed
    try:
        with engine.connect() as conn:
            return [
                dict(r._mapping) for r in conn.execute(sa.select(audit_events).order_by(audit_events.c.id))
            ]
    finally:
        engine.dispose()


async def test_one_committed_record_per_successful_request(issuer: TestIssuer, audit_url: str) -> None:
    async with running_gateway(issuer, audit_url) as gw:
        token_claims = {"jti": "jti-search-1"}
        search = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["claire"]}, headers=gw.auth(**token_claims)
        )
        assert search.status_code == 200
        rows = _rows(audit_url)
        assert len(rows) == 1
        row = rows[0]
        assert row["request_id"] == search.headers["x-request-id"]
        assert (row["user_sub"], row["user_name"], row["organisation"]) == (
            "user-sw.stockport",
            "Sam Walker",
            STOCKPORT,
        )
        assert row["roles"] == ["social_worker"] and row["client"] == "familyctx-cli"
        assert row["jti"] == "jti-search-1"
        assert (row["purpose"], row["case_reference"]) == ("cp_conference", "ICPC-2026/19")
        assert row["endpoint"] == "POST /v1/searches"
        assert row["query_terms"] == {"nhs_number": NHS["claire"]}
        assert sorted((s["gss_code"], s["local_person_id"]) for s in row["subjects_returned"]) == [
            (STOCKPORT, "S-1003"),
            (LEEDS, "L-77"),
        ]
        assert row["councils"] == {STOCKPORT: "ok", LEEDS: "ok", MANCHESTER: "ok"}
        assert (row["outcome"], row["http_status"]) == ("success", 200)
        assert row["occurred_at"] is not None

        context = await gw.client.post(
            "/v1/family-context", json={**PURPOSE, "subject": SUBJECT}, headers=gw.auth()
        )
        assert context.status_code == 200
        rows = _rows(audit_url)
        assert len(rows) == 2
        row = rows[1]
        assert row["endpoint"] == "POST /v1/family-context"
        assert row["query_terms"] == {"subject": SUBJECT}
        returned = {(s["gss_code"], s["local_person_id"]) for s in row["subjects_returned"]}
        assert {(STOCKPORT, "S-1001"), (STOCKPORT, "S-1003"), (LEEDS, "L-77"), (LEEDS, "L-78")} <= returned


async def test_denied_failed_and_partial_requests_are_audited(issuer: TestIssuer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    async with running_gateway(issuer, url, unreachable=True) as gw:
        denied = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "family_name": "O'Neill"}, headers=gw.auth("ig.stockport")
        )
        missing = await gw.client.post(
            "/v1/family-context",
            json={**PURPOSE, "subject": {"gss_code": STOCKPORT, "local_person_id": "S-404"}},
            headers=gw.auth(),
        )
        partial = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "family_name": "Brown"}, headers=gw.auth()
        )
        unauthenticated = await gw.client.post("/v1/searches", json={**PURPOSE, "family_name": "Brown"})
    assert [denied.status_code, missing.status_code, partial.status_code, unauthenticated.status_code] == [
        403,
        404,
        200,
        401,
    ]
    rows = _rows(url)
    assert [(r["outcome"], r["http_status"], r["user_sub"]) for r in rows] == [
        ("denied", 403, "user-ig.stockport"),
        ("error", 404, "user-sw.stockport"),
        ("partial", 200, "user-sw.stockport"),
    ]
    assert rows[0]["query_terms"] == {"family_name": "O'Neill"} and rows[0]["subjects_returned"] == []
    # The unknown subject (its council answered NOT_FOUND) is audited as an error with what was asked.
    assert rows[1]["query_terms"] == {"subject": {"gss_code": STOCKPORT, "local_person_id": "S-404"}}
    assert rows[1]["subjects_returned"] == []
    assert rows[2]["councils"]["E08000002"] == "unavailable"


async def test_audit_write_failure_gives_503_and_no_data(issuer: TestIssuer, audit_url: str) -> None:
    async with running_gateway(issuer, audit_url) as gw:
        engine = sa.create_engine(audit_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE audit_events"))
        engine.dispose()
        for path, body in (
            ("/v1/searches", {**PURPOSE, "nhs_number": NHS["zoe"]}),
            ("/v1/family-context", {**PURPOSE, "subject": SUBJECT}),
        ):
            resp = await gw.client.post(path, json=body, headers=gw.auth())
            assert resp.status_code == 503
            payload = resp.json()
            assert {k: payload[k] for k in ("detail", "errors")} == NO_DATA
            for value in ("Zo", "O'Neill", NHS["zoe"], "S-1001", "2014"):
                assert value not in resp.text
        ready = await gw.client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["checks"]["audit_store"] == "failing"


async def test_unreachable_audit_database_fails_closed(issuer: TestIssuer, tmp_path: Path) -> None:
    # Tests run as root here, so file permissions cannot make SQLite unwritable: instead the store's
    # engine is swapped for one whose database cannot be opened (a directory that does not exist).
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as gw:
        store = gw.app.state.gateway.audit
        store.dispose()
        store.engine = sa.create_engine(f"sqlite:///{tmp_path / 'gone' / 'audit.sqlite'}")
        resp = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
        )
        ready = await gw.client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["detail"] == NO_DATA["detail"]
    assert "S-1001" not in resp.text
    assert ready.status_code == 503
