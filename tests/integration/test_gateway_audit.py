"""Every search and family-context request leaves exactly one committed audit record (a Merkle-log entry
plus its index rows), read back here through a separate engine, with the hash of the exact bytes the
caller received; a failed audit write gives 503 and no data. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from familyctx_gateway.audit_schema import audit_log_tables
from familyctx_gateway.testing.audit import committed_records, verify_audit_log
from familyctx_gateway.testing.gateway import running_gateway
from familyctx_gateway.testing.issuer import TestIssuer
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT
from opentelemetry.sdk.trace import TracerProvider

from familyctx.auditlog import TreeHeadSigner, create_log_engine
from familyctx.auditlog.log import head_from_row

PURPOSE = {"purpose": "cp_conference", "case_reference": "ICPC-2026/19"}
SUBJECT = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}
NO_DATA = {"detail": "Audit store unavailable; no data returned", "errors": []}


def _sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


async def test_one_committed_record_per_successful_request(issuer: TestIssuer, audit_url: str) -> None:
    async with running_gateway(issuer, audit_url) as gw:
        search = await gw.client.post(
            "/v1/searches",
            json={**PURPOSE, "nhs_number": NHS["claire"]},
            headers=gw.auth(jti="jti-search-1"),
        )
        assert search.status_code == 200
        rows = committed_records(audit_url)
        assert len(rows) == 1
        row = rows[0]
        record = row["record"]
        assert row["seq"] == 0 and row["record_class"] == "access" and record["record_class"] == "access"
        assert row["request_id"] == search.headers["x-request-id"] == record["request"]["request_id"]
        assert record["request"]["endpoint"] == "POST /v1/searches"
        # who
        who = record["who"]
        assert (who["sub"], who["name"], who["organisation"]) == (
            "user-sw.stockport",
            "Sam Walker",
            STOCKPORT,
        )
        assert who["roles"] == ["social_worker"] and who["role"] == "social_worker"
        assert (who["client"], who["jti"], who["issuer"]) == ("familyctx-cli", "jti-search-1", issuer.issuer)
        assert (row["user_sub"], row["role"], row["jti"]) == (
            "user-sw.stockport",
            "social_worker",
            "jti-search-1",
        )
        # why
        assert record["why"] == {
            "purpose": "cp_conference",
            "case_reference": "ICPC-2026/19",
            "break_glass": False,
            "break_glass_id": None,
            "break_glass_reason": None,
        }
        # whose: what was asked, and every council record shown, with NHS numbers where known
        assert record["what"]["query"] == {"nhs_number": NHS["claire"]}
        asked = [s for s in record["whose"] if s["kind"] == "searched_for"]
        assert asked == [{"kind": "searched_for", "nhs_number": NHS["claire"]}]
        returned = {
            (s["gss_code"], s["local_person_id"], s.get("nhs_number"))
            for s in record["whose"]
            if s["kind"] == "returned"
        }
        assert returned == {(STOCKPORT, "S-1003", NHS["claire"]), (LEEDS, "L-77", NHS["claire"])}
        indexed = {(s["kind"], s["gss"], s["local_person_id"], s["nhs_number"]) for s in row["subjects"]}
        assert indexed == {
            ("searched_for", None, None, NHS["claire"]),
            ("returned", STOCKPORT, "S-1003", NHS["claire"]),
            ("returned", LEEDS, "L-77", NHS["claire"]),
        }
        assert {s["family_name_key"] for s in row["subjects"] if s["kind"] == "returned"} == {"oneill"}
        # what: the hash of the exact bytes received
        assert record["what"]["response"]["sha256"] == _sha256(search.content) == row["response_sha256"]
        assert record["what"]["response"]["bytes"] == len(search.content)
        assert search.headers["content-type"] == "application/json"
        # outcome
        assert record["outcome"]["result"] == "success" and record["outcome"]["http_status"] == 200
        assert row["councils"] == {STOCKPORT: "ok", LEEDS: "ok", MANCHESTER: "ok"}
        assert (row["outcome"], row["http_status"], row["migrated"]) == ("success", 200, False)

        context = await gw.client.post(
            "/v1/family-context", json={**PURPOSE, "subject": SUBJECT}, headers=gw.auth()
        )
        assert context.status_code == 200
        rows = committed_records(audit_url)
        assert [r["seq"] for r in rows] == [0, 1]
        row, record = rows[1], rows[1]["record"]
        assert record["request"]["endpoint"] == "POST /v1/family-context"
        assert record["what"]["query"] == {"subject": SUBJECT}
        assert {"kind": "searched_for", **SUBJECT} in record["whose"]
        returned = {(s["gss_code"], s["local_person_id"]) for s in record["whose"] if s["kind"] == "returned"}
        assert {(STOCKPORT, "S-1001"), (STOCKPORT, "S-1003"), (LEEDS, "L-77"), (LEEDS, "L-78")} <= returned
        shown = context.json()["involvements"]
        assert shown and {(i["gss_code"], i["involvement_id"]) for i in shown} == {
            (i["gss_code"], i["involvement_id"]) for i in record["what"]["involvements"]
        }
        assert {(d["gss_code"], d["dataset_id"]) for d in record["what"]["datasets"]} == {
            (i["gss_code"], i["dataset_id"]) for i in shown
        }
        assert record["what"]["response"]["sha256"] == _sha256(context.content)

    report = verify_audit_log(audit_url)
    assert report.ok and report.entries == 2, report.to_dict()


async def test_the_response_bytes_are_the_models_json(issuer: TestIssuer, tmp_path: Path) -> None:
    """Serialised once in run_audited: the body is the response model's JSON, parsed back unchanged."""
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as gw:
        resp = await gw.client.post(
            "/v1/family-context", json={**PURPOSE, "subject": SUBJECT}, headers=gw.auth()
        )
    body = resp.json()
    assert (
        resp.status_code == 200
        and body["subject_person_id"]
        and body["request_id"] == resp.headers["x-request-id"]
    )
    assert resp.headers["content-length"] == str(len(resp.content))


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
    rows = committed_records(url)
    assert [(r["outcome"], r["http_status"], r["user_sub"]) for r in rows] == [
        ("denied", 403, "user-ig.stockport"),
        ("error", 404, "user-sw.stockport"),
        ("partial", 200, "user-sw.stockport"),
    ]
    # A refusal keeps what was asked for, and shows nothing (no response hash).
    assert rows[0]["record"]["what"]["query"] == {"family_name": "O'Neill"}
    assert rows[0]["record"]["whose"] == [{"kind": "searched_for", "family_name": "O'Neill"}]
    assert rows[0]["record"]["who"]["role"] is None and rows[0]["response_sha256"] is None
    # The unknown subject (its council answered NOT_FOUND) is audited as an error with what was asked.
    assert rows[1]["record"]["what"]["query"] == {
        "subject": {"gss_code": STOCKPORT, "local_person_id": "S-404"}
    }
    assert [s["kind"] for s in rows[1]["record"]["whose"]] == ["searched_for"]
    # Partial: the missing council, and why.
    councils = {c["gss_code"]: c for c in rows[2]["record"]["outcome"]["councils"]}
    assert councils["E08000002"]["state"] == "unavailable" and councils["E08000002"]["detail"]
    assert councils[STOCKPORT] == {"gss_code": STOCKPORT, "state": "ok", "detail": None}
    assert rows[2]["councils"]["E08000002"] == "unavailable"
    assert rows[2]["response_sha256"] == _sha256(partial.content)
    assert verify_audit_log(url).ok


async def test_a_repeated_request_id_is_recorded_twice(issuer: TestIssuer, tmp_path: Path) -> None:
    """X-Request-ID is the caller's: a repeated one must not fail the audit write (or a batch)."""
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    async with running_gateway(issuer, url) as gw:
        headers = {**gw.auth(), "X-Request-ID": "same-id-1"}
        first, second = await asyncio.gather(
            gw.client.post("/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=headers),
            gw.client.post("/v1/searches", json={**PURPOSE, "nhs_number": NHS["jayden"]}, headers=headers),
        )
    assert first.status_code == second.status_code == 200
    rows = committed_records(url, request_id="same-id-1")
    assert sorted(r["response_sha256"] for r in rows) == sorted(
        [_sha256(first.content), _sha256(second.content)]
    )


async def test_trace_id_of_the_current_span_is_recorded(issuer: TestIssuer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    tracer = TracerProvider().get_tracer("test")
    async with running_gateway(issuer, url) as gw:
        with tracer.start_as_current_span("client") as span:
            traced = await gw.client.post(
                "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
            )
        untraced = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
        )
    assert traced.status_code == untraced.status_code == 200
    rows = {r["request_id"]: r for r in committed_records(url)}
    expected = f"{span.get_span_context().trace_id:032x}"
    assert rows[traced.headers["x-request-id"]]["trace_id"] == expected
    assert rows[traced.headers["x-request-id"]]["record"]["request"]["trace_id"] == expected
    assert rows[untraced.headers["x-request-id"]]["trace_id"] is None


async def test_audit_write_failure_gives_503_and_no_data(issuer: TestIssuer, audit_url: str) -> None:
    async with running_gateway(issuer, audit_url) as gw:
        engine = sa.create_engine(audit_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP TABLE audit_councils"))
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
    # Nothing half-written: the batch's entries were rolled back with its index rows.
    engine = create_log_engine(audit_url)
    with engine.connect() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(audit_log_tables.entries)).scalar_one() == 0
        )
    engine.dispose()


async def test_unreachable_audit_database_fails_closed(issuer: TestIssuer, tmp_path: Path) -> None:
    # Tests run as root here, so file permissions cannot make SQLite unwritable: instead the log's engine
    # is swapped for one whose database cannot be opened (a directory that does not exist).
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as gw:
        store = gw.app.state.gateway.audit
        store.dispose()
        store.engine = store.log.engine = sa.create_engine(f"sqlite:///{tmp_path / 'gone' / 'audit.sqlite'}")
        resp = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
        )
        ready = await gw.client.get("/readyz")
    assert resp.status_code == 503
    assert resp.json()["detail"] == NO_DATA["detail"]
    assert "S-1001" not in resp.text
    assert ready.status_code == 503 and ready.json()["checks"]["audit_store"] == "failing"


async def test_tree_heads_are_signed_while_serving_and_at_shutdown(
    issuer: TestIssuer, audit_url: str, tmp_path: Path
) -> None:
    key = TreeHeadSigner.generate_key(tmp_path / "audit-signing.jwk.json")
    public = TreeHeadSigner(key, log_id="familyctx-gateway").public_jwks()
    audit = {"database_url": audit_url, "signing_key_file": key, "tree_head_interval_seconds": 0.05}
    async with running_gateway(issuer, audit_url, audit=audit) as gw:
        store = gw.app.state.gateway.audit
        first = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
        )
        assert first.status_code == 200
        for _ in range(400):  # the background task signs size 1 within a few ticks
            latest = await asyncio.to_thread(store.log.latest_signed_head)
            if latest is not None and latest.tree_size == 1:
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail("no tree head of size 1 was signed while serving")
        second = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["jayden"]}, headers=gw.auth()
        )
        assert second.status_code == 200
    # Shutdown signed the final size.
    engine = create_log_engine(audit_url)
    with engine.connect() as conn:
        heads = conn.execute(
            sa.select(audit_log_tables.tree_heads).order_by(audit_log_tables.tree_heads.c.tree_size)
        ).all()
    engine.dispose()
    assert [h.tree_size for h in heads][-1] == 2 and 1 in [h.tree_size for h in heads]
    for h in heads:
        head = head_from_row(h)
        assert head.log_id == "familyctx-gateway" and head.verify(public) is None
    report = verify_audit_log(audit_url, public_jwks=public)
    assert report.ok and report.checked_heads >= 2 and report.signatures_checked, report.to_dict()


async def test_opening_a_break_glass_grant_is_one_break_glass_record(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    reason = "Out of hours: police report of a child at risk, early help history needed now"
    async with running_gateway(issuer, url) as gw:
        opened = await gw.client.post(
            "/v1/break-glass",
            json={
                "purpose": "early_help_assessment",
                "case_reference": "EH-1",
                "reason": reason,
                "minutes": 15,
            },
            headers=gw.auth("tm.leeds"),
        )
        assert opened.status_code == 201, opened.text
        grant_id = opened.json()["break_glass_id"]
        used = await gw.client.post(
            "/v1/family-context",
            json={
                "purpose": "early_help_assessment",
                "case_reference": "EH-1",
                "subject": SUBJECT,
                "break_glass_id": grant_id,
            },
            headers=gw.auth("tm.leeds"),
        )
        assert used.status_code == 200, used.text
    (opening,) = committed_records(url, request_id=opened.headers["x-request-id"])
    assert opening["record_class"] == "break_glass" and opening["break_glass_id"] == grant_id
    grant = opening["record"]["grant"]
    assert grant["reason"] == reason and grant["break_glass_id"] == grant_id
    assert grant["councils_notified"] == [LEEDS]  # the worker's own council, at once
    assert opening["record"]["why"]["break_glass_reason"] == reason
    # The request made under the grant carries its id and reason (the grant itself is not repeated).
    using = [
        r
        for r in committed_records(url, request_id=used.headers["x-request-id"])
        if r["record_class"] == "access"
    ]
    (use,) = using
    why = use["record"]["why"]
    assert (why["break_glass"], why["break_glass_id"], why["break_glass_reason"]) == (True, grant_id, reason)
    assert "grant" not in use["record"]
    assert json.loads(json.dumps(opening["record"])) == opening["record"]
    assert verify_audit_log(url).ok
