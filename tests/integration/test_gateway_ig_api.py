"""The IG API (/v1/audit) through the real gateway: real tokens and Cedar policy, real mTLS councils,
the real Merkle-tree audit log on SQLite and PostgreSQL. Workers search and read family context; IG
officers then ask the questions IG officers ask (who looked at this child, what did this worker do,
which break glass needs review, is the log intact) and every answer is checked against what happened."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
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

from familyctx.auditlog.heads import SignedTreeHead, TreeHeadSigner
from familyctx.auditlog.merkle import verify_consistency, verify_inclusion

S47 = {"purpose": "s47_enquiry", "case_reference": "CASE-2026-0042"}
EARLY_HELP = {"purpose": "early_help_assessment", "case_reference": "EH-2026-0007"}
ZOE = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}
REASON = "Duty manager out of hours: police report of a child at risk, early help history needed"
NOTE = "Checked with the duty manager: police referral at 23:10, access justified and proportionate."


@asynccontextmanager
async def ig_gateway(
    issuer: TestIssuer, url: str, tmp_path: Path, **audit: Any
) -> AsyncIterator[RunningGateway]:
    """The test federation's gateway, its audit log on ``url``, tree heads signed with a new key."""
    key = tmp_path / "audit-signing.jwk.json"
    if not key.exists():
        TreeHeadSigner.generate_key(key)
    settings = {"database_url": url, "signing_key_file": key, **audit}
    async with running_gateway(issuer, url, audit=settings) as gw:
        yield gw


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with ig_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}", tmp_path) as running:
        yield running


def public_jwks(gw: RunningGateway) -> dict[str, Any]:
    key = gw.settings.audit.signing_key_file
    assert key is not None
    return TreeHeadSigner(key, log_id="familyctx-gateway").public_jwks()


def ig(gw: RunningGateway, council: str = STOCKPORT, **claims: Any) -> dict[str, str]:
    """An IG officer of ``council`` (Stockport: Indra Gill; Leeds: Lee Ingram)."""
    if council == STOCKPORT:
        return gw.auth("ig.stockport", **claims)
    defaults = {"sub": f"user-ig.{council}", "name": "Lee Ingram", "organisation": council}
    return gw.auth("ig.stockport", **{**defaults, **claims})


def b64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def get(gw: RunningGateway, path: str, headers: dict[str, str], **params: Any) -> Any:
    resp = await gw.client.get(path, params=params, headers=headers)
    assert resp.status_code == 200, resp.text
    return resp.json()


async def workers_at_work(gw: RunningGateway) -> dict[str, str]:
    """A Stockport social worker searches for Zoë by NHS number and reads her family context, and is
    then refused a search (a break-glass id that does not exist: a Stockport-only record, no council
    asked); a Leeds team manager searches for a Brown. Returns the request ids by name."""
    ids = {}
    search = await gw.client.post("/v1/searches", json={**S47, "nhs_number": NHS["zoe"]}, headers=gw.auth())
    context = await gw.client.post("/v1/family-context", json={**S47, "subject": ZOE}, headers=gw.auth())
    refused = await gw.client.post(
        "/v1/searches",
        json={**S47, "family_name": "Brown", "break_glass_id": "00000000-0000-4000-8000-000000000000"},
        headers=gw.auth(),
    )
    browns = await gw.client.post(
        "/v1/searches", json={**S47, "family_name": "Brown"}, headers=gw.auth("tm.leeds")
    )
    assert [r.status_code for r in (search, context, refused, browns)] == [200, 200, 403, 200]
    for name, resp in (("search", search), ("context", context), ("refused", refused), ("browns", browns)):
        ids[name] = resp.headers["x-request-id"]
    ids["context_sha256"] = hashlib.sha256(context.content).hexdigest()
    return ids


def by_request(events: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {e["request_id"]: e for e in events}


# --- who looked at this child ---------------------------------------------------------------------


async def test_who_looked_at_this_child(
    issuer: TestIssuer, audit_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with ig_gateway(issuer, audit_url, tmp_path) as gw:
        ids = await workers_at_work(gw)
        report = await get(gw, "/v1/audit/subject-access", ig(gw), nhs_number=NHS["zoe"])
        found = by_request(report["events"])
        assert set(found) == {ids["search"], ids["context"]}
        assert [e["seq"] for e in report["events"]] == sorted(
            (e["seq"] for e in report["events"]), reverse=True
        )
        assert {"gss_code": STOCKPORT, "local_person_id": "S-1001"} in report["identities"]
        assert report["truncated"] is False
        context = found[ids["context"]]
        assert context["user"] == {
            "sub": "user-sw.stockport",
            "name": "Sam Walker",
            "organisation": STOCKPORT,
            "role": "social_worker",
            "client": "familyctx-cli",
        }
        assert (context["purpose"], context["case_reference"], context["outcome"]) == (
            "s47_enquiry",
            "CASE-2026-0042",
            "success",
        )
        assert context["endpoint"] == "POST /v1/family-context"
        assert context["response_sha256"] == ids["context_sha256"]
        kinds = {(s["kind"], s["gss_code"], s["local_person_id"]) for s in context["subjects"]}
        assert {("searched_for", STOCKPORT, "S-1001"), ("returned", STOCKPORT, "S-1001")} <= kinds

        # The same person by name and date of birth, spelt another way.
        named = await get(
            gw,
            "/v1/audit/subject-access",
            ig(gw),
            given_name="ZOE",
            family_name="O Neill",
            date_of_birth="2014-03-05",
        )
        assert {ids["search"], ids["context"]} <= set(by_request(named["events"]))
        assert named["subject"]["family_name_key"] == "oneill"

        # As CSV, for a subject access request: the same records.
        resp = await gw.client.get(
            "/v1/audit/subject-access",
            params={"nhs_number": NHS["zoe"]},
            headers={**ig(gw), "Accept": "text/csv"},
        )
        assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(resp.text)))
        assert {r["request_id"] for r in rows} >= {ids["search"], ids["context"]}
        assert ids["browns"] not in {r["request_id"] for r in rows}

        # Leeds's IG officer: Leeds was asked both times, but only the family context returned Leeds's
        # data (Zoë's mother, and a probable record of her brother). Leeds cannot link Zoë's NHS number to
        # it (Stockport's part is hidden from Leeds); her mother's NHS number finds Leeds's part of it.
        leeds = await get(gw, "/v1/audit/subject-access", ig(gw, LEEDS), nhs_number=NHS["zoe"])
        assert leeds["events"] == [] and leeds["identities"] == []
        mother = await get(gw, "/v1/audit/subject-access", ig(gw, LEEDS), nhs_number=NHS["claire"])
        [part] = mother["events"]
        assert part["request_id"] == ids["context"] and part["view"] == "partial"
        assert mother["partial_view_note"] and "inclusion proof" in mother["partial_view_note"]
        assert {
            (s["gss_code"], s["local_person_id"]) for s in part["subjects"] if s["kind"] == "returned"
        } == {
            (LEEDS, "L-77"),
            (LEEDS, "L-78"),
        }
        assert [c["gss_code"] for c in part["councils"]] == [LEEDS] and part["response_sha256"] is None
        assert mother["identities"] == [{"gss_code": LEEDS, "local_person_id": "L-77"}]

    # No personal data in the gateway's logs: NHS numbers and names asked about stay in the audit database.
    gateway_log = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("familyctx"))
    assert "subject-access" in gateway_log
    assert NHS["zoe"] not in gateway_log and "Neill" not in gateway_log and "oneill" not in gateway_log


# --- what did this worker do ----------------------------------------------------------------------


async def test_what_did_this_worker_do(gw: RunningGateway) -> None:
    ids = await workers_at_work(gw)
    mine = await get(gw, "/v1/audit/events", ig(gw), user="user-sw.stockport", record_class="access")
    assert [e["request_id"] for e in mine["events"]] == [ids["refused"], ids["context"], ids["search"]]
    assert mine["next_cursor"] is None
    first = mine["events"][-1]["occurred_at"]
    last = mine["events"][0]["occurred_at"]
    window = await get(gw, "/v1/audit/events", ig(gw), user="user-sw.stockport", to=last)
    assert ids["refused"] not in by_request(window["events"])  # "to" is exclusive
    since = await get(gw, "/v1/audit/events", ig(gw), user="user-sw.stockport", **{"from": first})
    assert ids["search"] in by_request(since["events"])

    denied = await get(gw, "/v1/audit/events", ig(gw), user="user-sw.stockport", outcome="denied")
    assert [(e["request_id"], e["http_status"], e["user"]["role"]) for e in denied["events"]] == [
        (ids["refused"], 403, None)
    ]
    # Councils: the requesting one, or one asked.
    asked_manchester = await get(gw, "/v1/audit/events", ig(gw), council=MANCHESTER, record_class="access")
    assert ids["refused"] not in by_request(asked_manchester["events"])
    assert ids["search"] in by_request(asked_manchester["events"])

    # Cursor paging: one at a time, newest first, the same three.
    seen, cursor = [], None
    for _ in range(5):
        params: dict[str, Any] = {"user": "user-sw.stockport", "record_class": "access", "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = await get(gw, "/v1/audit/events", ig(gw), **params)
        seen += [e["request_id"] for e in page["events"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [ids["refused"], ids["context"], ids["search"]]


async def test_a_leeds_ig_officer_cannot_see_a_stockport_only_record(gw: RunningGateway) -> None:
    ids = await workers_at_work(gw)
    stockport = by_request((await get(gw, "/v1/audit/events", ig(gw), record_class="access"))["events"])
    refused = stockport[ids["refused"]]
    assert refused["councils"] == []  # nobody was asked: a Stockport-only record

    leeds = by_request((await get(gw, "/v1/audit/events", ig(gw, LEEDS), record_class="access"))["events"])
    assert ids["refused"] not in leeds
    # Leeds's worker's search (in full), the family context that returned Leeds's data (Leeds's part);
    # not the search for Zoë, which asked Leeds but returned nothing of Leeds's.
    assert set(leeds) == {ids["context"], ids["browns"]}
    assert (leeds[ids["browns"]]["view"], leeds[ids["context"]]["view"]) == ("full", "partial")
    hidden = await gw.client.get(f"/v1/audit/events/{refused['seq']}", headers=ig(gw, LEEDS))
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "No audit record with that seq that your council may see"
    csv_rows = (await gw.client.get("/v1/audit/events.csv", headers=ig(gw, LEEDS))).text
    assert ids["refused"] not in csv_rows
    shown = await gw.client.get(f"/v1/audit/events/{refused['seq']}", headers=ig(gw))
    assert shown.status_code == 200


# --- one record and the log's integrity -----------------------------------------------------------


async def test_a_record_in_full_with_its_inclusion_proof(
    issuer: TestIssuer, audit_url: str, tmp_path: Path
) -> None:
    async with ig_gateway(issuer, audit_url, tmp_path) as gw:
        ids = await workers_at_work(gw)
        events = by_request((await get(gw, "/v1/audit/events", ig(gw)))["events"])
        seq = events[ids["context"]]["seq"]
        detail = await get(gw, f"/v1/audit/events/{seq}", ig(gw))
        payload = b64(detail["payload"])
        leaf = hashlib.sha256(b"\x00" + payload).digest()
        assert b64(detail["leaf_hash"]) == leaf
        assert detail["record"]["record"]["request"]["request_id"] == ids["context"]
        assert detail["record"]["record"]["what"]["response"]["sha256"] == ids["context_sha256"]
        proof, head = detail["inclusion_proof"], detail["tree_head"]
        assert proof["seq"] == seq and proof["tree_size"] == head["tree_size"] > seq
        assert proof["root_hash"] == head["root_hash"]
        path = [b64(h) for h in proof["audit_path"]]
        assert verify_inclusion(leaf, seq, proof["tree_size"], path, b64(head["root_hash"]))
        assert not verify_inclusion(
            hashlib.sha256(b"\x00other").digest(), seq, proof["tree_size"], path, b64(head["root_hash"])
        )
        # The head is signed by the gateway's tree-head key.
        assert SignedTreeHead.from_json(head).verify(public_jwks(gw)) is None

        missing = await gw.client.get("/v1/audit/events/999999", headers=ig(gw))
        assert missing.status_code == 404


async def test_check_the_log_has_not_been_altered(gw: RunningGateway) -> None:
    await workers_at_work(gw)
    old = await get(gw, "/v1/audit/tree-head", ig(gw))
    assert SignedTreeHead.from_json(old).verify(public_jwks(gw)) is None
    assert old["log_id"] == "familyctx-gateway" and old["tree_size"] >= 4
    await workers_at_work(gw)
    new = await get(gw, "/v1/audit/tree-head", ig(gw))
    assert new["tree_size"] > old["tree_size"]
    proof = await get(
        gw, "/v1/audit/proofs/consistency", ig(gw), **{"from": old["tree_size"], "to": new["tree_size"]}
    )
    assert (proof["old_size"], proof["new_size"]) == (old["tree_size"], new["tree_size"])
    assert (proof["old_root"], proof["new_root"]) == (old["root_hash"], new["root_hash"])
    path = [b64(h) for h in proof["consistency_path"]]
    assert verify_consistency(
        old["tree_size"], new["tree_size"], b64(old["root_hash"]), b64(new["root_hash"]), path
    )
    # Without "to": against the latest signed head.
    latest = await get(gw, "/v1/audit/proofs/consistency", ig(gw), **{"from": old["tree_size"]})
    assert latest["old_root"] == old["root_hash"] and latest["new_size"] >= new["tree_size"]

    for params, field in (
        ({"from": 5, "to": 3}, "to"),
        ({"from": 1, "to": 10**9}, "to"),
        ({"from": "x"}, "from"),
    ):
        bad = await gw.client.get("/v1/audit/proofs/consistency", params=params, headers=ig(gw))
        assert bad.status_code == 422, bad.text
        assert bad.json()["errors"][0]["field"] == field


# --- break glass review ---------------------------------------------------------------------------


async def test_review_a_break_glass(gw: RunningGateway, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    opened = await gw.client.post(
        "/v1/break-glass", json={**EARLY_HELP, "reason": REASON}, headers=gw.auth("tm.leeds")
    )
    assert opened.status_code == 201, opened.text
    grant_id = opened.json()["break_glass_id"]
    used = await gw.client.post(
        "/v1/family-context",
        json={**EARLY_HELP, "subject": ZOE, "break_glass_id": grant_id},
        headers=gw.auth("tm.leeds"),
    )
    assert used.status_code == 200

    # Leeds was notified when its worker opened the grant; Leeds's IG officer reviews it.
    leeds = ig(gw, LEEDS)
    queue = await get(gw, "/v1/audit/break-glass", leeds)
    assert queue["status"] == "unreviewed"
    [item] = queue["grants"]
    assert (item["break_glass_id"], item["worker_name"], item["worker_organisation"], item["reason"]) == (
        grant_id,
        "Taylor Moss",
        LEEDS,
        REASON,
    )
    assert "opened" in item["notified_because"]
    # What was done under it: every record naming the grant (opening it, the councils' first-use
    # notifications, the family context).
    assert item["reviews"] == []
    under = await get(gw, "/v1/audit/events", leeds, break_glass=True)
    assert item["requests"] == sorted(e["seq"] for e in under["events"] if e["break_glass_id"] == grant_id)
    opened_rec = await get(gw, f"/v1/audit/events/{item['requests'][0]}", leeds)
    used_rec = await get(gw, f"/v1/audit/events/{item['requests'][-1]}", leeds)
    assert opened_rec["event"]["record_class"] == "break_glass"
    assert opened_rec["event"]["request_id"] == opened.headers["x-request-id"]
    assert used_rec["event"]["request_id"] == used.headers["x-request-id"]
    assert used_rec["event"]["break_glass"] is True

    review_path = f"/v1/audit/break-glass/{grant_id}/review"
    short = await gw.client.post(review_path, json={"note": "ok"}, headers=leeds)
    assert short.status_code == 422
    assert short.json()["errors"] == [
        {
            "field": "note",
            "message": "note must be 10-2000 characters (after trimming spaces) saying what you checked and "
            "concluded, without control characters other than line breaks and tabs",
        }
    ]
    reviewed = await gw.client.post(review_path, json={"note": f"  {NOTE}\n"}, headers=leeds)
    assert reviewed.status_code == 201, reviewed.text
    [review] = reviewed.json()["reviews"]
    assert (review["reviewer_name"], review["reviewer_organisation"], review["note"]) == (
        "Lee Ingram",
        LEEDS,
        NOTE,
    )
    again = await gw.client.post(review_path, json={"note": NOTE}, headers=leeds)
    assert again.status_code == 409

    assert (await get(gw, "/v1/audit/break-glass", leeds))["grants"] == []
    done = await get(gw, "/v1/audit/break-glass", leeds, status="reviewed")
    assert [g["break_glass_id"] for g in done["grants"]] == [grant_id]

    # Each council reviews for itself: Stockport, asked for data under the grant, still has it to review.
    stockport = await get(gw, "/v1/audit/break-glass", ig(gw))
    assert [(g["break_glass_id"], g["notified_because"], g["reviews"]) for g in stockport["grants"]] == [
        (grant_id, ["used"], [])
    ]

    # The review is itself a record of the audit log, with its note.
    record = await get(gw, f"/v1/audit/events/{review['seq']}", leeds)
    assert record["event"]["record_class"] == "ig_access"
    assert record["record"]["record"]["review"] == {"break_glass_id": grant_id, "note": NOTE}

    unknown = await gw.client.post(
        "/v1/audit/break-glass/00000000-0000-4000-8000-000000000000/review",
        json={"note": NOTE},
        headers=leeds,
    )
    assert unknown.status_code == 404

    # Nobody reviews their own break glass (should a policy ever let one account do both).
    own = await gw.client.post(review_path, json={"note": NOTE}, headers=ig(gw, sub="user-tm.leeds"))
    assert own.status_code == 403 and "your own break-glass access" in own.json()["detail"]
    # The worker's reason and the reviewer's note are in the audit database, never in the logs.
    assert "break glass reviewed" in caplog.text
    assert REASON[:30] not in caplog.text and NOTE[:30] not in caplog.text


# --- the IG API is for IG officers, and is itself audited ------------------------------------------

ENDPOINTS = [
    ("GET", "/v1/audit/events", "GET /v1/audit/events"),
    ("GET", "/v1/audit/events.csv", "GET /v1/audit/events.csv"),
    ("GET", "/v1/audit/events/0", "GET /v1/audit/events/{seq}"),
    ("GET", f"/v1/audit/subject-access?nhs_number={NHS['zoe']}", "GET /v1/audit/subject-access"),
    ("GET", "/v1/audit/flags", "GET /v1/audit/flags"),
    ("GET", "/v1/audit/tree-head", "GET /v1/audit/tree-head"),
    ("GET", "/v1/audit/proofs/consistency?from=0", "GET /v1/audit/proofs/consistency"),
    ("GET", "/v1/audit/break-glass", "GET /v1/audit/break-glass"),
    (
        "POST",
        "/v1/audit/break-glass/00000000-0000-4000-8000-000000000000/review",
        "POST /v1/audit/break-glass/{break_glass_id}/review",
    ),
]


@pytest.mark.parametrize(
    "roles", [["social_worker"], ["team_manager"], ["administrator"], ["service_client"], []]
)
async def test_every_endpoint_refuses_every_other_role(gw: RunningGateway, roles: list[str]) -> None:
    await workers_at_work(gw)
    headers = gw.auth("sw.stockport", sub="user-nosy", roles=roles)
    for method, path, _ in ENDPOINTS:
        body = {"json": {"note": NOTE}} if method == "POST" else {}
        resp = await gw.client.request(method, path, headers=headers, **body)
        assert resp.status_code == 403, (path, resp.text)
        assert NHS["zoe"] not in resp.text and "O'Neill" not in resp.text
    # Every refusal is audited (class ig_access, outcome denied), for IG officers to see.
    refusals = await get(gw, "/v1/audit/events", ig(gw), user="user-nosy", limit=50)
    assert sorted(e["endpoint"] for e in refusals["events"]) == sorted(label for *_, label in ENDPOINTS)
    assert {(e["record_class"], e["outcome"], e["http_status"]) for e in refusals["events"]} == {
        ("ig_access", "denied", 403)
    }


async def test_an_ig_officer_must_belong_to_a_council(gw: RunningGateway) -> None:
    resp = await gw.client.get("/v1/audit/events", headers=ig(gw, organisation=None))
    assert resp.status_code == 403 and "names no council" in resp.json()["detail"]


async def test_ig_reads_are_audited_and_visible_to_other_ig_officers(gw: RunningGateway) -> None:
    await workers_at_work(gw)
    read = await get(gw, "/v1/audit/subject-access", ig(gw), nhs_number=NHS["zoe"])
    colleague = ig(gw, sub="user-ig.colleague", name="Chris Cole")
    audited = await get(gw, "/v1/audit/events", colleague, record_class="ig_access", user="user-ig.stockport")
    [record] = audited["events"]
    assert (record["endpoint"], record["user"]["name"], record["outcome"]) == (
        "GET /v1/audit/subject-access",
        "Indra Gill",
        "success",
    )
    # Which records the IG officer read is in the record itself.
    detail = await get(gw, f"/v1/audit/events/{record['seq']}", colleague)
    query = detail["record"]["record"]["what"]["query"]
    assert query["records_read"] == [e["seq"] for e in read["events"]]
    assert query["nhs_number"] == NHS["zoe"]
    # And an IG officer's look-up of a person shows in that person's subject access report.
    again = await get(gw, "/v1/audit/subject-access", colleague, nhs_number=NHS["zoe"])
    assert record["request_id"] in by_request(again["events"])


# --- flags ----------------------------------------------------------------------------------------


async def test_flags_for_review(issuer: TestIssuer, tmp_path: Path) -> None:
    async with ig_gateway(issuer, f"sqlite:///{tmp_path / 'a.sqlite'}", tmp_path, flag_daily_records=2) as gw:
        # A worker called O'Neill looks up Zoë O'Neill, then her family.
        relative = gw.auth("sw.stockport", name="Sam O'Neill")
        first = await gw.client.post("/v1/searches", json={**S47, "nhs_number": NHS["zoe"]}, headers=relative)
        second = await gw.client.post("/v1/family-context", json={**S47, "subject": ZOE}, headers=relative)
        other = await gw.client.post(
            "/v1/searches", json={**S47, "family_name": "Brown"}, headers=gw.auth("tm.leeds")
        )
        assert [r.status_code for r in (first, second, other)] == [200, 200, 200]
        report = await get(gw, "/v1/audit/flags", ig(gw))
        flags: dict[str, list[dict[str, Any]]] = {}
        for flag in report["flags"]:
            flags.setdefault(flag["kind"], []).append(flag)
        events = by_request((await get(gw, "/v1/audit/events", ig(gw)))["events"])
        seq = {
            name: events[r.headers["x-request-id"]]["seq"]
            for name, r in (("first", first), ("second", second), ("other", other))
        }

        assert {f["seq"] for f in flags["shared_family_name"]} == {seq["first"], seq["second"]}
        assert all(
            s["family_name_key"] == "oneill" for f in flags["shared_family_name"] for s in f["subjects"]
        )
        new_refs = {(f["user_sub"], f["seq"]) for f in flags["new_case_reference"]}
        assert ("user-sw.stockport", seq["first"]) in new_refs and (
            "user-sw.stockport",
            seq["second"],
        ) not in new_refs
        assert ("user-tm.leeds", seq["other"]) in new_refs
        [busy] = [f for f in flags["volume"] if f["user_sub"] == "user-sw.stockport"]
        assert busy["count"] > 2 and busy["threshold"] == 2 and report["daily_records_threshold"] == 2
        assert any("address" in reason for reason in report["not_checked"])

        for params, field in (
            ({"from": "2026-05-02T00:00:00Z", "to": "2026-05-01T00:00:00Z"}, "to"),
            ({"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        ):
            bad = await gw.client.get("/v1/audit/flags", params=params, headers=ig(gw))
            assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == field


# --- CSV export -----------------------------------------------------------------------------------


async def test_csv_export_is_safe_to_open_in_a_spreadsheet(gw: RunningGateway) -> None:
    evil = gw.auth("sw.stockport", name='=HYPERLINK("http://evil.example","click")')
    resp = await gw.client.post("/v1/searches", json={**S47, "family_name": "Brown"}, headers=evil)
    assert resp.status_code == 200
    await workers_at_work(gw)
    export = await gw.client.get("/v1/audit/events.csv", params={"record_class": "access"}, headers=ig(gw))
    assert export.status_code == 200
    assert export.headers["content-type"] == "text/csv; charset=utf-8"
    assert export.headers["content-disposition"].startswith('attachment; filename="audit-events-')
    rows = list(csv.DictReader(io.StringIO(export.text)))
    listed = await get(gw, "/v1/audit/events", ig(gw), record_class="access")
    assert [int(r["seq"]) for r in rows] == [e["seq"] for e in listed["events"]]
    [row] = [r for r in rows if r["request_id"] == resp.headers["x-request-id"]]
    assert row["user_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert all(not cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r.values())


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"from": "2026-13-01"}, "from", "from is not a real date and time"),
        ({"from": "1714550400"}, "from", "from must be an ISO 8601 date-time"),
        ({"from": "2026-05-02T00:00:00Z", "to": "2026-05-01T00:00:00Z"}, "to", "to must be later than from"),
        ({"given_name": "Zoe"}, "family_name", "family_name is required with the other names"),
        ({"nhs_number": "1234567890"}, "nhs_number", "nhs_number is not a valid NHS number"),
        (
            {"given_name": "Zoe", "family_name": "Neill", "date_of_birth": "05/03/2014"},
            "date_of_birth",
            "date_of_birth must be a date in the form YYYY-MM-DD",
        ),
        ({"given_name": "'", "family_name": "Neill", "date_of_birth": "2014-03-05"}, "given_name", "letter"),
        ({"outcome": "maybe"}, "outcome", "outcome must be one of: success, partial, denied, error"),
        ({"council": "Leeds"}, "council", "E followed by 8 digits"),
        ({"cursor": "abc"}, "cursor", "cursor must be the next_cursor of the previous page"),
        ({"limit": "0"}, "limit", "limit must be a whole number from 1 to 200"),
        ({"purpose": "curiosity"}, "purpose", "purpose must be one of"),
        ({"break_glass": "perhaps"}, "break_glass", "break_glass must be true or false"),
        ({"record_class": "secret"}, "record_class", "record_class must be one of"),
    ],
)
async def test_bad_filters_are_refused_with_a_clear_message(
    gw: RunningGateway, params: dict[str, str], field: str, message: str
) -> None:
    resp = await gw.client.get("/v1/audit/events", params=params, headers=ig(gw))
    assert resp.status_code == 422, resp.text
    errors = resp.json()["errors"]
    assert errors[0]["field"] == field and message in errors[0]["message"]
    for value in params.values():
        if len(value) > 3:
            assert value not in resp.text  # the value sent is never echoed


async def test_subject_access_needs_a_person(gw: RunningGateway) -> None:
    resp = await gw.client.get("/v1/audit/subject-access", headers=ig(gw))
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "nhs_number"


# --- fail closed ----------------------------------------------------------------------------------


async def test_no_audit_answer_without_its_ig_access_record(
    issuer: TestIssuer, postgres_url: str, tmp_path: Path
) -> None:
    async with ig_gateway(issuer, postgres_url, tmp_path) as gw:
        await workers_at_work(gw)
        name = postgres_url.rsplit("/", 1)[1]
        admin = sa.create_engine(postgres_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                conn.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": name},
                )
            for path in ("/v1/audit/events", f"/v1/audit/subject-access?nhs_number={NHS['zoe']}"):
                resp = await gw.client.get(path, headers=ig(gw))
                assert resp.status_code == 503
                body = resp.json()
                assert (body["detail"], body["errors"]) == ("Audit store unavailable; no data returned", [])
                assert set(body) == {"detail", "errors", "request_id"}
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            admin.dispose()


_REFUSE_IG_ACCESS = {
    "sqlite": [
        "CREATE TRIGGER refuse_ig_access BEFORE INSERT ON audit_entries "
        "WHEN NEW.record_class = 'ig_access' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_ig_access() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ "
        "LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_ig_access BEFORE INSERT ON audit_entries FOR EACH ROW "
        "WHEN (NEW.record_class = 'ig_access') EXECUTE FUNCTION refuse_ig_access()",
    ],
}


async def test_a_read_whose_record_cannot_be_committed_returns_nothing(
    issuer: TestIssuer, audit_url: str, tmp_path: Path
) -> None:
    # The database answers reads but refuses to store ig_access records (a trigger): every IG answer
    # is 503 with no data, though the data could be read.
    async with ig_gateway(issuer, audit_url, tmp_path) as gw:
        ids = await workers_at_work(gw)
        engine = sa.create_engine(audit_url)
        try:
            with engine.begin() as conn:
                for statement in _REFUSE_IG_ACCESS[engine.dialect.name]:
                    conn.execute(sa.text(statement))
            for method, path, _ in ENDPOINTS:
                body = {"json": {"note": NOTE}} if method == "POST" else {}
                resp = await gw.client.request(method, path, headers=ig(gw), **body)
                assert resp.status_code == 503, (path, resp.text)
                assert resp.json()["detail"] == "Audit store unavailable; no data returned"
                assert ids["context"] not in resp.text and "S-1001" not in resp.text
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "DROP TRIGGER refuse_ig_access"
                        + (" ON audit_entries" if engine.dialect.name == "postgresql" else "")
                    )
                )
            assert (await gw.client.get("/v1/audit/events", headers=ig(gw))).status_code == 200
        finally:
            engine.dispose()


async def test_a_record_left_as_text_by_a_hand_edit_is_shown_without_its_record(
    gw: RunningGateway, tmp_path: Path
) -> None:
    ids = await workers_at_work(gw)
    seq = by_request((await get(gw, "/v1/audit/events", ig(gw)))["events"])[ids["search"]]["seq"]
    with sqlite3.connect(tmp_path / "audit.sqlite") as conn:  # what `sqlite3` at a shell can do
        edit = "UPDATE audit_entries SET payload = REPLACE(CAST(payload AS TEXT), 'success', 'error')"
        assert conn.execute(edit + " WHERE seq = ?", (seq,)).rowcount == 1
    detail = await get(gw, f"/v1/audit/events/{seq}", ig(gw))  # 200, not a 500
    # the stored text is shown as it is; it is not what was hashed, so no record is decoded from it
    assert detail["record"] is None and detail["redacted_at"] is None and b"error" in b64(detail["payload"])
