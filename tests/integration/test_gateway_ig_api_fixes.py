"""The IG API's answers to a fresh-user tester's findings (issue 4), through the real gateway: real tokens
and Cedar policy, real mTLS councils, the real Merkle-tree audit log on SQLite and PostgreSQL.

Scope (being asked is not being involved; another council's request is shown as a partial view with a
proof of the whole record), one review per council across gateway processes, bad parameters answered
422 never 500, subject access linking names and NHS numbers, volume of lookups, /readyz detecting an
audit store that cannot take writes, and reading break-glass notifications audited as an IG read."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT

from familyctx.auditlog.heads import TreeHeadSigner
from familyctx.auditlog.merkle import verify_inclusion

S47 = {"purpose": "s47_enquiry", "case_reference": "CASE-2026-0042"}
EARLY_HELP = {"purpose": "early_help_assessment", "case_reference": "EH-2026-0007"}
STK_ONLY = {"purpose": "s47_enquiry", "case_reference": "STK-ONLY-1"}
ZOE = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}
ELLA = {"gss_code": STOCKPORT, "local_person_id": "S-2001"}
REASON = "Duty manager out of hours: police report of a child at risk, early help history needed"
NOTE = "Checked with the duty manager: police referral at 23:10, access justified and proportionate."


@asynccontextmanager
async def ig_gateway(
    issuer: TestIssuer, url: str, tmp_path: Path, **audit: Any
) -> AsyncIterator[RunningGateway]:
    """The test federation's gateway, its audit log on ``url``, tree heads signed with one key."""
    key = tmp_path / "audit-signing.jwk.json"
    if not key.exists():
        TreeHeadSigner.generate_key(key)
    async with running_gateway(
        issuer, url, audit={"database_url": url, "signing_key_file": key, **audit}
    ) as gw:
        yield gw


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with ig_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}", tmp_path) as running:
        yield running


def ig(gw: RunningGateway, council: str = STOCKPORT, **claims: Any) -> dict[str, str]:
    """An IG officer of ``council``."""
    defaults = {"sub": f"user-ig.{council}", "name": f"IG Officer {council}", "organisation": council}
    return gw.auth("ig.stockport", **{**defaults, **claims})


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def get(gw: RunningGateway, path: str, headers: dict[str, str], **params: Any) -> Any:
    resp = await gw.client.get(path, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


def by_request(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["request_id"]: e for e in events}


# --- 1. scope: being asked is not being involved; other councils' parts are hidden -----------------


async def test_a_stockport_only_family_context_is_not_seen_by_leeds(gw: RunningGateway) -> None:
    # The tester's repro: a Stockport worker reads the family context of a child only Stockport holds.
    resp = await gw.client.post("/v1/family-context", json={**STK_ONLY, "subject": ELLA}, headers=gw.auth())
    assert resp.status_code == 200
    request_id = resp.headers["x-request-id"]
    mine = by_request((await get(gw, "/v1/audit/events", ig(gw)))["events"])
    record = mine[request_id]
    assert record["view"] == "full" and {c["gss_code"] for c in record["councils"]} == {
        STOCKPORT,
        LEEDS,
        MANCHESTER,
    }  # every council was asked

    for council in (LEEDS, MANCHESTER):
        officer = ig(gw, council)
        assert (await get(gw, "/v1/audit/events", officer))["events"] == []
        assert (await get(gw, "/v1/audit/events", officer, case_reference="STK-ONLY-1"))["events"] == []
        hidden = await gw.client.get(f"/v1/audit/events/{record['seq']}", headers=officer)
        assert hidden.status_code == 404
        csv_text = (await gw.client.get("/v1/audit/events.csv", headers=officer)).text
        assert request_id not in csv_text and "STK-ONLY-1" not in csv_text
        by_name = await get(
            gw,
            "/v1/audit/subject-access",
            officer,
            given_name="Ella",
            family_name="Brown",
            date_of_birth="2015-01-01",
        )
        assert by_name["events"] == [] and by_name["identities"] == []
        flags = await get(gw, "/v1/audit/flags", officer)
        assert all(f["seq"] != record["seq"] for f in flags["flags"])
        assert all(f["user_sub"] != "user-sw.stockport" for f in flags["flags"])


async def test_a_mixed_record_shows_leeds_only_its_part_with_a_proof_of_the_whole(
    issuer: TestIssuer, audit_url: str, tmp_path: Path
) -> None:
    async with ig_gateway(issuer, audit_url, tmp_path) as gw:
        # Zoë's family context returns Stockport's family and Leeds's records of her mother and brother.
        resp = await gw.client.post("/v1/family-context", json={**S47, "subject": ZOE}, headers=gw.auth())
        assert resp.status_code == 200
        request_id = resp.headers["x-request-id"]
        leeds = ig(gw, LEEDS)
        [summary] = (await get(gw, "/v1/audit/events", leeds))["events"]
        assert summary["request_id"] == request_id and summary["view"] == "partial"
        detail = await get(gw, f"/v1/audit/events/{summary['seq']}", leeds)
        full = await get(gw, f"/v1/audit/events/{summary['seq']}", ig(gw))

        # Who, when, why, outcome and the query terms; Leeds's subjects, involvements and state only.
        assert detail["payload"] is None and detail["partial_view_note"]
        assert "inclusion proof" in detail["partial_view_note"]
        record = detail["record"]["record"]
        assert (
            record["who"]["sub"] == "user-sw.stockport"
            and record["why"]["case_reference"] == S47["case_reference"]
        )
        assert record["request"]["request_id"] == request_id and record["outcome"]["result"] == "success"
        assert record["what"]["query"]["subject"] == ZOE
        assert {(s["kind"], s.get("gss_code")) for s in record["whose"]} == {
            ("searched_for", STOCKPORT),
            ("returned", LEEDS),
        }
        assert {i["gss_code"] for i in record["what"]["involvements"]} == {LEEDS}
        assert record["outcome"]["councils"] == [{"gss_code": LEEDS, "state": "ok", "detail": None}]
        assert "response" not in record["what"]
        text = str(detail)
        for hidden in ("S-1003", "S-1002", NHS["zoe"], "CPP-1", MANCHESTER, "Hill Street"):
            assert hidden not in text
        assert {s["gss_code"] for s in detail["event"]["subjects"] if s["kind"] == "returned"} == {LEEDS}

        # Integrity is still checkable: the leaf hash is the whole record's, proven against the tree head.
        assert (
            full["event"]["view"] == "full"
            and full["payload"] is not None
            and full["partial_view_note"] is None
        )
        assert detail["leaf_hash"] == full["leaf_hash"]
        assert b64(detail["leaf_hash"]) == hashlib.sha256(b"\x00" + b64(full["payload"])).digest()
        proof, head = detail["inclusion_proof"], detail["tree_head"]
        assert verify_inclusion(
            b64(detail["leaf_hash"]),
            summary["seq"],
            proof["tree_size"],
            [b64(h) for h in proof["audit_path"]],
            b64(head["root_hash"]),
        )

        # CSV and subject access give the same partial view.
        csv_text = (await gw.client.get("/v1/audit/events.csv", headers=leeds)).text
        assert "partial" in csv_text and "S-1003" not in csv_text and NHS["zoe"] not in csv_text
        report = await get(gw, "/v1/audit/subject-access", leeds, nhs_number=NHS["claire"])
        assert [e["view"] for e in report["events"]] == ["partial"] and report["partial_view_note"]
        sar_csv = await gw.client.get(
            "/v1/audit/subject-access",
            params={"nhs_number": NHS["claire"]},
            headers={**leeds, "Accept": "text/csv"},
        )
        assert sar_csv.status_code == 200 and "S-1003" not in sar_csv.text and request_id in sar_csv.text


# --- 7. subject access: names and NHS numbers; denied lookups of a person the council holds -------


async def test_denied_nhs_number_lookups_are_found_by_name_by_the_council_that_holds_the_person(
    gw: RunningGateway,
) -> None:
    # Stockport's worker finds Zoë once (the index now links her NHS number to her names and birthday).
    assert (
        await gw.client.post("/v1/searches", json={**S47, "nhs_number": NHS["zoe"]}, headers=gw.auth())
    ).status_code == 200
    # A Leeds team manager looks her up by NHS number for a purpose their role may not use: refused,
    # nothing returned.
    refused = await gw.client.post(
        "/v1/searches", json={**EARLY_HELP, "nhs_number": NHS["zoe"]}, headers=gw.auth("tm.leeds")
    )
    assert refused.status_code == 403
    request_id = refused.headers["x-request-id"]

    # Stockport holds Zoë: its IG officer sees the refused lookup (Leeds's record, partially) ...
    stockport = by_request((await get(gw, "/v1/audit/events", ig(gw), outcome="denied"))["events"])
    assert (
        stockport[request_id]["view"] == "partial" and stockport[request_id]["user"]["organisation"] == LEEDS
    )
    # ... and finds it by her names and date of birth, though it was made by NHS number only.
    by_name = await get(
        gw,
        "/v1/audit/subject-access",
        ig(gw),
        given_name="zoë",
        family_name="O NEILL",
        date_of_birth="2014-03-05",
    )
    assert request_id in by_request(by_name["events"])
    # Manchester holds no one with that NHS number: not Manchester's.
    manchester = await get(gw, "/v1/audit/events", ig(gw, MANCHESTER), outcome="denied")
    assert request_id not in by_request(manchester["events"])
    # Leeds sees its own worker's request in full.
    leeds = by_request((await get(gw, "/v1/audit/events", ig(gw, LEEDS), outcome="denied"))["events"])
    assert leeds[request_id]["view"] == "full"


# --- 4. one review per council, across gateway processes ------------------------------------------


async def test_concurrent_reviews_give_one_201_per_council_across_gateways(
    issuer: TestIssuer, audit_url: str, tmp_path: Path
) -> None:
    async with ig_gateway(issuer, audit_url, tmp_path) as one, ig_gateway(issuer, audit_url, tmp_path) as two:
        opened = await one.client.post(
            "/v1/break-glass", json={**EARLY_HELP, "reason": REASON}, headers=one.auth("tm.leeds")
        )
        assert opened.status_code == 201
        grant_id = opened.json()["break_glass_id"]
        used = await two.client.post(
            "/v1/family-context",
            json={**EARLY_HELP, "subject": ZOE, "break_glass_id": grant_id},
            headers=two.auth("tm.leeds"),
        )
        assert used.status_code == 200  # Stockport is now notified too ("used")
        path = f"/v1/audit/break-glass/{grant_id}/review"

        async def review(gw: RunningGateway, council: str, n: int) -> tuple[str, int]:
            headers = ig(gw, council, sub=f"user-ig.{council}.{n}")
            resp = await gw.client.post(path, json={"note": NOTE}, headers=headers)
            return council, resp.status_code

        async def search(gw: RunningGateway) -> tuple[str, int]:
            resp = await gw.client.post(
                "/v1/searches", json={**S47, "nhs_number": NHS["zoe"]}, headers=gw.auth()
            )
            return "search", resp.status_code

        calls = [
            review(gw, council, n) for n in range(4) for gw in (one, two) for council in (LEEDS, STOCKPORT)
        ]
        calls += [search(gw) for gw in (one, two) for _ in range(3)]
        results = await asyncio.gather(*calls)
        for council in (LEEDS, STOCKPORT):
            statuses = sorted(status for who, status in results if who == council)
            assert statuses == [201] + [409] * 7, (council, statuses)
        assert {status for who, status in results if who == "search"} == {200}  # others never failed

        engine = sa.create_engine(audit_url)
        try:
            with engine.connect() as conn:
                rows = (
                    conn.execute(sa.text("SELECT reviewer_organisation FROM audit_reviews")).scalars().all()
                )
        finally:
            engine.dispose()
        assert sorted(rows) == sorted([LEEDS, STOCKPORT])
        done = await get(one, "/v1/audit/break-glass", ig(one, LEEDS), status="reviewed")
        [grant] = done["grants"]
        assert len(grant["reviews"]) == 1


# --- 5 and 15. bad parameters: 422 naming the parameter, never a 500 -------------------------------

BAD = [
    ("/v1/audit/events", {"cursor": "²"}, "cursor"),
    ("/v1/audit/events", {"cursor": "١٢٣"}, "cursor"),  # Arabic-Indic digits
    ("/v1/audit/events", {"cursor": "9223372036854775808"}, "cursor"),  # 2^63
    ("/v1/audit/events", {"cursor": "99999999999999999999"}, "cursor"),
    ("/v1/audit/events", {"cursor": "-1"}, "cursor"),
    ("/v1/audit/break-glass", {"cursor": "²"}, "cursor"),
    ("/v1/audit/break-glass", {"cursor": "9223372036854775808"}, "cursor"),
    ("/v1/audit/events", {"cursor": "7" * 5000}, "cursor"),  # past max_length (200)
    ("/v1/audit/break-glass", {"cursor": "7" * 5000}, "cursor"),
    ("/v1/audit/proofs/consistency", {"from": "1" * 5000}, "from"),
    ("/v1/audit/proofs/consistency", {"from": "0", "to": "1" * 5000}, "to"),
    ("/v1/audit/proofs/consistency", {"from": "²"}, "from"),
    ("/v1/audit/proofs/consistency", {"from": "0", "to": "١"}, "to"),
    ("/v1/audit/proofs/consistency", {"from": "9223372036854775808"}, "from"),
    ("/v1/audit/proofs/consistency", {"from": "0", "to": "99999999999999999999"}, "to"),
    ("/v1/audit/events", {"from": "9999-12-31T23:59:59-23:00"}, "from"),
    ("/v1/audit/events", {"to": "0001-01-01T00:00:00+05:00"}, "to"),
    ("/v1/audit/events.csv", {"from": "9999-12-31T23:59:59-23:00"}, "from"),
    ("/v1/audit/flags", {"to": "0001-01-01T00:00:00+05:00"}, "to"),
    ("/v1/audit/flags", {"from": "9999-12-31T23:59:59-23:00"}, "from"),
    ("/v1/audit/events", {"user": "user-sw\x00.stockport"}, "user"),
    ("/v1/audit/events", {"case_reference": "CASE\x00-1"}, "case_reference"),
    (
        "/v1/audit/events",
        {"given_name": "!!", "family_name": "Neill", "date_of_birth": "2014-03-05"},
        "given_name",
    ),
    (
        "/v1/audit/events",
        {"given_name": "--", "family_name": "Neill", "date_of_birth": "2014-03-05"},
        "given_name",
    ),
    (
        "/v1/audit/events",
        {"given_name": "Zoe", "family_name": "123", "date_of_birth": "2014-03-05"},
        "family_name",
    ),
    (
        "/v1/audit/subject-access",
        {"given_name": "Zoe", "family_name": "@@", "date_of_birth": "2014-03-05"},
        "family_name",
    ),
]


@pytest.mark.parametrize(("path", "params", "field"), BAD)
async def test_bad_parameters_are_422_naming_the_parameter(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture, path: str, params: dict[str, str], field: str
) -> None:
    caplog.set_level(logging.DEBUG)
    resp = await gw.client.get(path, params=params, headers=ig(gw))
    assert resp.status_code == 422, resp.text
    assert resp.json()["errors"][0]["field"] == field
    gateway_records = [r for r in caplog.records if r.name.startswith(("familyctx", "uvicorn", "fastapi"))]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in gateway_records)
    assert "Traceback" not in logged and not any(r.exc_info for r in gateway_records)
    for value in params.values():
        if len(value) > 2:
            assert value not in logged and value not in resp.text


async def test_flags_to_in_the_first_week_of_year_one_is_not_an_error(gw: RunningGateway) -> None:
    report = await get(gw, "/v1/audit/flags", ig(gw), to="0001-01-02T00:00:00Z")
    assert report["flags"] == [] and report["from"].startswith("0001-01-01")


@pytest.mark.parametrize(
    ("method", "path", "params"),
    [
        ("GET", "/v1/audit/events", {"usr": "user-sw.stockport"}),
        ("GET", "/v1/audit/events.csv", {"record_class": "access", "councl": STOCKPORT}),
        ("GET", "/v1/audit/subject-access", {"nhs": NHS["zoe"]}),
        ("GET", "/v1/audit/flags", {"since": "2026-05-01T00:00:00Z"}),
        ("GET", "/v1/audit/tree-head", {"size": "3"}),
        ("GET", "/v1/audit/events/0", {"verbose": "1"}),
        ("GET", "/v1/audit/proofs/consistency", {"from": "0", "new": "1"}),
        ("GET", "/v1/audit/break-glass", {"state": "reviewed"}),
        ("POST", "/v1/audit/break-glass/00000000-0000-4000-8000-000000000000/review", {"force": "1"}),
    ],
)
async def test_unknown_parameters_are_refused_not_ignored(
    gw: RunningGateway, method: str, path: str, params: dict[str, str]
) -> None:
    body = {"json": {"note": NOTE}} if method == "POST" else {}
    resp = await gw.client.request(method, path, params=params, headers=ig(gw), **body)
    assert resp.status_code == 422, resp.text
    detail = resp.json()["detail"]
    unknown = [name for name in params if name not in {"record_class", "from"}]
    assert detail.startswith("Unknown query parameter(s): " + ", ".join(sorted(unknown)))
    assert "This endpoint takes:" in detail
    for value in params.values():
        if len(value) > 3:
            assert value not in resp.text
    # Nothing was searched, so nothing was read or audited as read.
    audited = await get(gw, "/v1/audit/events", ig(gw, sub="user-ig.other"), record_class="ig_access")
    assert [e["endpoint"] for e in audited["events"]] == []


async def test_a_name_folds_to_the_index_keys(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/searches",
        json={**S47, "given_name": "Zoe", "family_name": "@ONeill", "date_of_birth": "2014-03-05"},
        headers=gw.auth(),
    )
    assert resp.status_code == 200
    found = await get(
        gw, "/v1/audit/events", ig(gw), given_name="ZOE", family_name="@O'Neill", date_of_birth="2014-03-05"
    )
    assert resp.headers["x-request-id"] in by_request(found["events"])
    [searched] = [s for s in found["events"][0]["subjects"] if s["kind"] == "searched_for"]
    assert searched["family_name_key"] == "@oneill"  # the same key the index holds


# --- 8. volume counts lookups ---------------------------------------------------------------------


async def test_many_lookups_that_found_nothing_are_flagged(issuer: TestIssuer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    async with ig_gateway(issuer, url, tmp_path, flag_daily_records=3) as gw:
        for nhs_number in ("9990000050", "9990000069", "9990000077", "9990000085"):  # nobody holds them
            resp = await gw.client.post(
                "/v1/searches", json={**S47, "nhs_number": nhs_number}, headers=gw.auth()
            )
            assert resp.status_code == 200 and resp.json()["candidates"] == []
        report = await get(gw, "/v1/audit/flags", ig(gw))
        [volume] = [f for f in report["flags"] if f["kind"] == "volume"]
        assert (volume["user_sub"], volume["threshold"]) == ("user-sw.stockport", 3)
        assert (volume["lookups"], volume["count"]) == (4, 0)


# --- 12. /readyz: an audit store that cannot take writes is not ready -------------------------------


async def test_readyz_fails_while_the_sqlite_audit_store_is_write_locked(gw: RunningGateway) -> None:
    assert (await gw.client.get("/readyz")).status_code == 200
    path = sa.make_url(gw.settings.audit.database_url).database
    assert path is not None
    holder = sqlite3.connect(path, isolation_level=None, timeout=5)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        resp = await gw.client.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["checks"]["audit_store"] == "failing"
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert (await gw.client.get("/readyz")).status_code == 200


async def test_readyz_fails_while_the_postgresql_audit_store_is_read_only(
    issuer: TestIssuer, postgres_url: str, tmp_path: Path
) -> None:
    async with ig_gateway(issuer, postgres_url, tmp_path) as gw:
        assert (await gw.client.get("/readyz")).status_code == 200
        name = postgres_url.rsplit("/", 1)[1]
        admin = sa.create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")

        def read_only(on: bool) -> None:
            with admin.connect() as conn:
                conn.execute(
                    sa.text(f'ALTER DATABASE "{name}" SET default_transaction_read_only = {str(on).lower()}')
                )
                conn.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :n AND pid <> pg_backend_pid()"
                    ),
                    {"n": name},
                )

        try:
            read_only(True)
            resp = await gw.client.get("/readyz")
            assert resp.status_code == 503 and resp.json()["checks"]["audit_store"] == "failing"
        finally:
            read_only(False)
            admin.dispose()
        assert (await gw.client.get("/readyz")).status_code == 200


# --- 16. reading break-glass notifications is an audited IG read ------------------------------------


async def test_reading_break_glass_notifications_is_an_ig_read(gw: RunningGateway) -> None:
    opened = await gw.client.post(
        "/v1/break-glass", json={**EARLY_HELP, "reason": REASON}, headers=gw.auth("tm.leeds")
    )
    assert opened.status_code == 201
    leeds = ig(gw, LEEDS)
    notes = await get(gw, "/v1/break-glass/notifications", leeds, limit=10)
    assert [n["reason"] for n in notes["notifications"]] == [REASON]
    audited = await get(
        gw, "/v1/audit/events", ig(gw, LEEDS, sub="user-ig.colleague"), record_class="ig_access"
    )
    [record] = [e for e in audited["events"] if e["endpoint"] == "GET /v1/break-glass/notifications"]
    assert (record["user"]["sub"], record["outcome"]) == (f"user-ig.{LEEDS}", "success")
    detail = await get(gw, f"/v1/audit/events/{record['seq']}", ig(gw, LEEDS, sub="user-ig.colleague"))
    assert detail["record"]["record"]["what"]["query"] == {"limit": 10, "count": 1}

    # A worker is refused, and the refusal is audited too.
    refused = await gw.client.get("/v1/break-glass/notifications", headers=gw.auth("sw.stockport"))
    assert refused.status_code == 403
    denied = await get(gw, "/v1/audit/events", ig(gw), user="user-sw.stockport", outcome="denied")
    assert [e["endpoint"] for e in denied["events"]] == ["GET /v1/break-glass/notifications"]

    # Fail closed: when the read's record cannot be committed, no reason leaves the gateway.
    engine = sa.create_engine(gw.settings.audit.database_url)
    try:
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "CREATE TRIGGER refuse_ig_access BEFORE INSERT ON audit_entries "
                    "WHEN NEW.record_class = 'ig_access' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
        resp = await gw.client.get("/v1/break-glass/notifications", headers=leeds)
        assert resp.status_code == 503 and REASON[:20] not in resp.text
    finally:
        engine.dispose()
