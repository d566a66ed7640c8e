"""Break glass through the real gateway (real tokens, Cedar policy, mTLS councils verifying assertions,
SQLite and PostgreSQL): opening a grant, using it past a purpose restriction, every refusal (another
case, purpose or worker, an expired grant, a role break glass cannot help), the IG officers'
notifications, and the ``familyctx`` command line against the gateway served over real HTTP."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn
from familyctx_gateway.break_glass import break_glass_grants, break_glass_notifications
from familyctx_gateway.settings import BreakGlassSettings, OidcSettings
from familyctx_gateway.testing.audit import flat_records
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer, running_issuer
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, STOCKPORT

EARLY_HELP = {"purpose": "early_help_assessment", "case_reference": "EH-2026-0007"}
SUBJECT = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}
REASON = "Duty manager out of hours: police report of a child at risk, early help history needed"
COUNCILS = [STOCKPORT, LEEDS, MANCHESTER]


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        yield running


def _select(url: str, query: Any) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)  # a separate engine: sees only what was committed
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(query)]
    finally:
        engine.dispose()


def _audit(gw: RunningGateway) -> list[dict[str, Any]]:
    return flat_records(gw.settings.audit_database_url)  # index rows and the record's fields, in log order


async def _open(
    gw: RunningGateway, user: str = "tm.leeds", headers_org: str | None = None, **body: Any
) -> Any:
    claims = {"organisation": headers_org} if headers_org else {}
    return await gw.client.post(
        "/v1/break-glass", json={**EARLY_HELP, "reason": REASON, **body}, headers=gw.auth(user, **claims)
    )


def _assertions(gw: RunningGateway, method: str) -> list[Any]:
    return [r for s in gw.servicers.values() for m, r in s.calls if m == method]


async def test_open_use_and_notify(
    issuer: TestIssuer, audit_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with running_gateway(issuer, audit_url) as gw:
        # Without break glass, the team manager is refused early help (a purpose restriction).
        refused = await gw.client.post(
            "/v1/family-context", json={**EARLY_HELP, "subject": SUBJECT}, headers=gw.auth("tm.leeds")
        )
        assert refused.status_code == 403 and "open break glass" in refused.json()["detail"]

        opened = await _open(gw, minutes=15, reason=f"  {REASON}  ")
        assert opened.status_code == 201, opened.text
        grant = opened.json()
        opened_at = dt.datetime.fromisoformat(grant["opened_at"])
        assert dt.datetime.fromisoformat(grant["expires_at"]) - opened_at == dt.timedelta(minutes=15)
        assert grant["reason"] == REASON  # stripped
        assert (grant["purpose"], grant["case_reference"], grant["active"]) == (
            "early_help_assessment",
            "EH-2026-0007",
            True,
        )
        assert grant["councils_notified"] == [LEEDS]  # the worker's own council, at opening

        used = await gw.client.post(
            "/v1/family-context",
            json={**EARLY_HELP, "subject": SUBJECT, "break_glass_id": grant["break_glass_id"]},
            headers=gw.auth("tm.leeds"),
        )
        assert used.status_code == 200, used.text
        assert {p["local_person_id"] for p in used.json()["people"] for p in p["records"]} >= {"S-1001"}

        # Every council asked was told it is break glass, why, by whom and under which role.
        told = _assertions(gw, "GetFamilyContext") + _assertions(gw, "FindPeople")
        assert told and all(
            (r.break_glass, r.break_glass_reason, r.role, r.purpose, r.case_reference, r.sub)
            == (True, REASON, "team_manager", "early_help_assessment", "EH-2026-0007", "user-tm.leeds")
            for r in told
        )

        # The worker reads their grant back; nobody else can.
        mine = await gw.client.get(f"/v1/break-glass/{grant['break_glass_id']}", headers=gw.auth("tm.leeds"))
        # The family context asked Stockport (the subject), then Leeds and Manchester (relatives).
        shown = mine.json()
        assert mine.status_code == 200 and {**shown, "councils_notified": []} == {
            **grant,
            "councils_notified": [],
        }
        assert shown["councils_notified"][:2] == [LEEDS, STOCKPORT]  # each council once
        assert sorted(shown["councils_notified"]) == sorted(COUNCILS)
        theirs = await gw.client.get(f"/v1/break-glass/{grant['break_glass_id']}", headers=gw.auth())
        assert theirs.status_code == 404 and REASON not in theirs.text

    every = _audit(gw)
    # Each council's first request under the grant was recorded (its notification) before it was sent.
    first_uses = [r for r in every if r["endpoint"] == "POST /v1/family-context (break glass first use)"]
    assert len(first_uses) == 3
    expected = (True, grant["break_glass_id"], "team_manager")
    assert all((r["break_glass"], r["break_glass_id"], r["role"]) == expected for r in first_uses)
    rows = [r for r in every if r not in first_uses]
    assert [(r["endpoint"], r["outcome"], r["http_status"], r["role"], r["break_glass"]) for r in rows] == [
        ("POST /v1/family-context", "denied", 403, None, False),
        ("POST /v1/break-glass", "success", 201, "team_manager", True),
        ("POST /v1/family-context", "success", 200, "team_manager", True),
    ]
    assert [r["break_glass_id"] for r in rows] == [None, grant["break_glass_id"], grant["break_glass_id"]]
    assert rows[1]["query_terms"] == {"minutes": 15}
    assert rows[1]["purpose"] == "early_help_assessment" and rows[1]["case_reference"] == "EH-2026-0007"
    assert rows[2]["query_terms"] == {"subject": SUBJECT}  # the grant id is its own column

    (stored,) = _select(audit_url, sa.select(break_glass_grants))
    assert (
        stored["id"],
        stored["user_sub"],
        stored["user_name"],
        stored["organisation"],
        stored["reason"],
    ) == (
        grant["break_glass_id"],
        "user-tm.leeds",
        "Taylor Moss",
        LEEDS,
        REASON,
    )
    notifications = _select(
        audit_url, sa.select(break_glass_notifications).order_by(break_glass_notifications.c.id)
    )
    assert [n["council_gss_code"] for n in notifications][:1] == [LEEDS]
    assert [n["notified_because"] for n in notifications] == ["opened", "used", "used", "used"]
    assert sorted(n["council_gss_code"] for n in notifications[1:]) == sorted(COUNCILS)
    assert all(
        (n["grant_id"], n["worker_sub"], n["worker_name"], n["worker_organisation"], n["reason"])
        == (grant["break_glass_id"], "user-tm.leeds", "Taylor Moss", LEEDS, REASON)
        for n in notifications
    )
    # The written reason is in the database, never in the logs.
    assert "break glass opened" in caplog.text
    assert REASON[:30] not in caplog.text


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"case_reference": "EH-OTHER-1"}, "was opened for another case reference"),
        (
            {"purpose": "s17_assessment"},
            "was opened for the purpose early_help_assessment, not s17_assessment",
        ),
        (
            {"break_glass_id": "00000000-0000-4000-8000-000000000000"},
            "does not exist or was not opened by you",
        ),
    ],
)
async def test_a_grant_is_only_for_its_case_purpose_and_worker(
    gw: RunningGateway, change: dict[str, str], message: str
) -> None:
    grant = (await _open(gw)).json()
    body = {**EARLY_HELP, "family_name": "Brown", "break_glass_id": grant["break_glass_id"], **change}
    resp = await gw.client.post("/v1/searches", json=body, headers=gw.auth("tm.leeds"))
    assert resp.status_code == 403
    assert message in resp.json()["detail"]
    denied = _audit(gw)[-1]
    assert (denied["outcome"], denied["break_glass"], denied["break_glass_id"], denied["role"]) == (
        "denied",
        False,
        body["break_glass_id"],
        None,
    )
    assert not _assertions(gw, "FindPeople")


async def test_another_workers_grant_is_refused_as_if_it_did_not_exist(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    # Two trusted issuers: the same ``sub`` from another issuer is another worker.
    with running_issuer() as other:
        trusted = [OidcSettings(issuer=i.issuer, audience=AUDIENCE) for i in (issuer, other)]
        async with running_gateway(issuer, f"sqlite:///{tmp_path / 'a.sqlite'}", oidc=trusted) as gw:
            grant = (await _open(gw)).json()
            body = {**EARLY_HELP, "family_name": "Brown", "break_glass_id": grant["break_glass_id"]}
            for token in (issuer.token("sw.stockport"), other.token("tm.leeds")):
                resp = await gw.client.post(
                    "/v1/searches", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                assert resp.status_code == 403
                assert "does not exist or was not opened by you" in resp.json()["detail"]
            # Control: the worker who opened it, from their own issuer.
            ok = await gw.client.post("/v1/searches", json=body, headers=gw.auth("tm.leeds"))
            assert ok.status_code == 200


async def test_an_expired_grant_is_refused(gw: RunningGateway) -> None:
    grant = (await _open(gw, minutes=5)).json()
    past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    engine = sa.create_engine(gw.settings.audit_database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.update(break_glass_grants)
            .where(break_glass_grants.c.id == grant["break_glass_id"])
            .values(opened_at=past - dt.timedelta(minutes=5), expires_at=past)
        )
    engine.dispose()
    body = {**EARLY_HELP, "subject": SUBJECT, "break_glass_id": grant["break_glass_id"]}
    resp = await gw.client.post("/v1/family-context", json=body, headers=gw.auth("tm.leeds"))
    assert resp.status_code == 403
    detail = resp.json()["detail"]
    assert detail.startswith(f"That break-glass grant expired at {past.isoformat(timespec='seconds')}")
    assert "open a new one" in detail
    assert _audit(gw)[-1]["outcome"] == "denied"
    shown = await gw.client.get(f"/v1/break-glass/{grant['break_glass_id']}", headers=gw.auth("tm.leeds"))
    assert shown.json()["active"] is False


async def test_break_glass_never_passes_the_ig_officer_forbid(gw: RunningGateway) -> None:
    # IG officers may not open a grant ...
    opening = await _open(gw, user="ig.stockport")
    assert opening.status_code == 403
    assert opening.json()["detail"].startswith("Separation of duties: an account holding the ig_officer role")
    assert (_audit(gw)[-1]["endpoint"], _audit(gw)[-1]["outcome"]) == ("POST /v1/break-glass", "denied")
    # ... and even holding one (written directly here), get no family data.
    grant = (await _open(gw, user="sw.stockport")).json()
    engine = sa.create_engine(gw.settings.audit_database_url)
    with engine.begin() as conn:
        conn.execute(
            sa.update(break_glass_grants)
            .where(break_glass_grants.c.id == grant["break_glass_id"])
            .values(user_sub="user-ig.stockport")
        )
    engine.dispose()
    body = {**EARLY_HELP, "subject": SUBJECT, "break_glass_id": grant["break_glass_id"]}
    resp = await gw.client.post("/v1/family-context", json=body, headers=gw.auth("ig.stockport"))
    assert resp.status_code == 403
    assert "Separation of duties" in resp.json()["detail"]
    assert not _assertions(gw, "GetFamilyContext")


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"reason": "   too short     "}, "reason", "reason must be one line of 20-1000 characters"),
        ({"reason": "x" * 1001}, "reason", "reason must be one line of 20-1000 characters"),
        ({"reason": REASON + "\x00"}, "reason", "reason must be one line of visible text"),
        ({"minutes": 0}, "minutes", "minutes must be a whole number (a JSON integer, not text) from 1 to 60"),
        ({"minutes": 61}, "minutes", "minutes must be a whole number from 1 to 60 (this gateway's"),
        ({"purpose": "curiosity"}, "purpose", "purpose must be one of"),
    ],
)
async def test_opening_validation(gw: RunningGateway, body: dict[str, Any], field: str, message: str) -> None:
    resp = await _open(gw, **body)
    assert resp.status_code == 422
    (error,) = resp.json()["errors"]
    assert error["field"] == field and error["message"].startswith(message)
    assert _audit(gw) == []


async def test_default_minutes_respect_a_lower_maximum(issuer: TestIssuer, tmp_path: Path) -> None:
    async with running_gateway(
        issuer, f"sqlite:///{tmp_path / 'a.sqlite'}", break_glass=BreakGlassSettings(max_minutes=10)
    ) as gw:
        grant = (await _open(gw)).json()
    length = dt.datetime.fromisoformat(grant["expires_at"]) - dt.datetime.fromisoformat(grant["opened_at"])
    assert length == dt.timedelta(minutes=10)


async def test_malformed_break_glass_ids_are_422(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/searches",
        json={**EARLY_HELP, "family_name": "Brown", "break_glass_id": "x' OR 1=1"},
        headers=gw.auth(),
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == "break_glass_id"
    path = await gw.client.get("/v1/break-glass/not-a-uuid", headers=gw.auth())
    assert path.status_code == 422 and path.json()["errors"][0]["field"] == "break_glass_id"


async def test_ig_officers_see_their_own_councils_notifications(gw: RunningGateway) -> None:
    # Opening notifies the worker's own council (the Leeds manager's grant is shown as Stockport's here).
    first = (await _open(gw, headers_org=STOCKPORT)).json()
    second = (await _open(gw, user="sw.stockport", case_reference="EH-2026-0008")).json()
    stockport = await gw.client.get("/v1/break-glass/notifications", headers=gw.auth("ig.stockport"))
    assert stockport.status_code == 200
    page = stockport.json()
    assert page["next_after"] is None
    assert [(n["council_gss_code"], n["break_glass_id"]) for n in page["notifications"]] == [
        (STOCKPORT, first["break_glass_id"]),
        (STOCKPORT, second["break_glass_id"]),
    ]
    note = page["notifications"][0]
    assert note["worker"] == {"sub": "user-tm.leeds", "name": "Taylor Moss", "organisation": STOCKPORT}
    assert (note["notified_because"], note["first_used_at"]) == ("opened", None)
    assert (note["purpose"], note["case_reference"], note["reason"]) == (
        "early_help_assessment",
        "EH-2026-0007",
        REASON,
    )
    assert (note["opened_at"], note["expires_at"]) == (first["opened_at"], first["expires_at"])

    # A Leeds IG officer sees only Leeds's notifications: none, as neither grant reached Leeds.
    leeds_grant = (await _open(gw, case_reference="EH-2026-0009")).json()
    leeds = (
        await gw.client.get(
            "/v1/break-glass/notifications", headers=gw.auth("ig.stockport", organisation=LEEDS)
        )
    ).json()
    assert [(n["council_gss_code"], n["break_glass_id"]) for n in leeds["notifications"]] == [
        (LEEDS, leeds_grant["break_glass_id"])
    ]
    assert {n["id"] for n in leeds["notifications"]}.isdisjoint({n["id"] for n in page["notifications"]})

    # Paging: one at a time, following next_after.
    headers = gw.auth("ig.stockport")
    one = (await gw.client.get("/v1/break-glass/notifications", params={"limit": 1}, headers=headers)).json()
    assert [n["break_glass_id"] for n in one["notifications"]] == [first["break_glass_id"]]
    two = (
        await gw.client.get(
            "/v1/break-glass/notifications", params={"limit": 1, "after": one["next_after"]}, headers=headers
        )
    ).json()
    assert [n["break_glass_id"] for n in two["notifications"]] == [second["break_glass_id"]]
    assert two["next_after"] is None

    # since: only grants opened at or after that time.
    later = (
        await gw.client.get(
            "/v1/break-glass/notifications", params={"since": second["opened_at"]}, headers=headers
        )
    ).json()
    assert [n["break_glass_id"] for n in later["notifications"]] == [second["break_glass_id"]]
    future = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    none = await gw.client.get(
        "/v1/break-glass/notifications", params={"since": future.isoformat()}, headers=headers
    )
    assert none.json()["notifications"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "yesterday"}, "since"),
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"after": -1}, "after"),
    ],
)
async def test_notification_query_validation(gw: RunningGateway, params: dict[str, Any], field: str) -> None:
    resp = await gw.client.get(
        "/v1/break-glass/notifications", params=params, headers=gw.auth("ig.stockport")
    )
    assert resp.status_code == 422
    assert resp.json()["errors"][0]["field"] == field


async def test_an_ig_officer_without_a_council_sees_nothing(gw: RunningGateway) -> None:
    await _open(gw)
    resp = await gw.client.get(
        "/v1/break-glass/notifications", headers=gw.auth("ig.stockport", organisation=None)
    )
    assert resp.status_code == 403
    assert "names no council" in resp.json()["detail"]


async def test_audit_failure_opens_no_grant(gw: RunningGateway) -> None:
    engine = sa.create_engine(gw.settings.audit_database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE audit_events"))
    engine.dispose()
    resp = await _open(gw)
    assert resp.status_code == 503
    assert "break_glass_id" not in resp.text
    # Grant, notifications and audit record are one transaction: nothing was kept.
    assert _select(gw.settings.audit_database_url, sa.select(break_glass_grants)) == []
    assert _select(gw.settings.audit_database_url, sa.select(break_glass_notifications)) == []


async def test_unreadable_grants_fail_closed(gw: RunningGateway) -> None:
    grant = (await _open(gw)).json()
    engine = sa.create_engine(gw.settings.audit_database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE break_glass_notifications"))
        conn.execute(sa.text("DROP TABLE break_glass_grants"))
    engine.dispose()
    body = {**EARLY_HELP, "subject": SUBJECT, "break_glass_id": grant["break_glass_id"]}
    resp = await gw.client.post("/v1/family-context", json=body, headers=gw.auth("tm.leeds"))
    assert resp.status_code == 503
    assert resp.json()["detail"] == "Audit store unavailable; no data returned"
    assert not _assertions(gw, "GetFamilyContext")
    last = _audit(gw)[-1]
    assert (last["outcome"], last["http_status"], last["break_glass_id"]) == (
        "error",
        503,
        grant["break_glass_id"],
    )
    notes = await gw.client.get("/v1/break-glass/notifications", headers=gw.auth("ig.stockport"))
    assert notes.status_code == 503


# --- the command line, against the gateway served over real HTTP ---------------------------------------


@asynccontextmanager
async def _serving(gw: RunningGateway) -> AsyncIterator[str]:
    """Serve ``gw.app`` (its lifespan already running) with uvicorn on a free port, in this event loop."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(gw.app, lifespan="off", log_config=None, access_log=False))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def _cli(*args: str, token: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "familyctx.cli",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "FAMILYCTX_TOKEN": token, "COLUMNS": "250"},
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_command_line_break_glass(gw: RunningGateway) -> None:
    manager, ig = gw.issuer.token("tm.leeds"), gw.issuer.token("ig.stockport")
    async with _serving(gw) as url:
        where = ("--gateway", url)  # the worker is the token's (FAMILYCTX_TOKEN)
        code, out, err = await _cli(
            "break-glass", "open", *where, "--purpose", "early_help_assessment", "--case", "EH-CLI-1",
            "--reason", REASON, "--minutes", "20", "--json", token=manager,
        )  # fmt: skip
        assert code == 0, err
        grant = json.loads(out)
        assert grant["case_reference"] == "EH-CLI-1" and grant["active"] is True

        refused = await _cli(
            "query", "search", *where, "--family-name", "Brown", "--purpose", "early_help_assessment",
            "--case-ref", "EH-CLI-1", token=manager,
        )  # fmt: skip
        assert refused[0] == 2 and "gateway answered 403" in refused[2] and "open break glass" in refused[2]

        code, out, err = await _cli(
            "query", "family-context", *where, "--council", STOCKPORT, "--person-id", "S-1001",
            "--purpose", "early_help_assessment", "--case-ref", "EH-CLI-1",
            "--break-glass-id", grant["break_glass_id"], token=manager,
        )  # fmt: skip
        assert code == 0, err
        assert "People" in out

        code, out, err = await _cli("break-glass", "show", *where, grant["break_glass_id"], token=manager)
        assert code == 0, err
        assert grant["break_glass_id"] in out and "active" in out and STOCKPORT in out

        code, out, err = await _cli(
            "break-glass", "notifications", "--gateway", url, token=ig
        )
        assert code == 0, err
        # The grant was used for a family context at Stockport: Stockport's IG officer is told.
        assert "Break-glass notifications" in out and "EH-CLI-1" in out and "Taylor Moss (E08000035)" in out

        code, out, err = await _cli(
            "break-glass", "open", *where, "--purpose", "early_help_assessment", "--case", "EH-CLI-1",
            "--reason", "too short", token=manager,
        )  # fmt: skip
        assert code == 2 and "reason must be one line of 20-1000 characters" in err

        code, out, err = await _cli(
            "break-glass",
            "notifications",
            "--gateway",
            url,
            "--since",
            "soon",
            token=manager,
        )
        assert code == 2 and "--since must be an ISO 8601 date-time" in err
    rows = [r for r in _audit(gw) if not r["endpoint"].endswith("(break glass first use)")]
    assert [(r["endpoint"], r["outcome"], r["break_glass"]) for r in rows] == [
        ("POST /v1/break-glass", "success", True),
        ("POST /v1/searches", "denied", False),
        ("POST /v1/family-context", "success", True),
        # Reading the notifications (workers' written reasons) is an IG read, audited like the others.
        ("GET /v1/break-glass/notifications", "success", False),
    ]


async def test_command_line_hints_follow_the_gateways_answer(gw: RunningGateway) -> None:
    """A 404 from ``break-glass show`` says no grant of yours has that id; a 403 that refuses a grant
    (another case, purpose or worker, expired) shows the gateway's reason and does not blame the role;
    a refusal of the role itself still says so."""
    manager, worker, ig = (gw.issuer.token(u) for u in ("tm.leeds", "sw.stockport", "ig.stockport"))
    not_found = "no break-glass grant of yours has that id"
    not_role = "it is the break-glass grant that was refused, not your role"
    role = "your role may not make this request"
    async with _serving(gw) as url:
        where = ("--gateway", url)  # the worker is the token's (FAMILYCTX_TOKEN)
        code, out, err = await _cli(
            "break-glass", "open", *where, "--purpose", "early_help_assessment", "--case", "EH-CLI-2",
            "--reason", REASON, "--json", token=manager,
        )  # fmt: skip
        assert code == 0, err
        grant = json.loads(out)["break_glass_id"]

        for who, token, grant_id in (
            ("tm.leeds", manager, "6f1c2a3b-0000-4000-8000-000000000000"),  # nobody's
            ("sw.stockport", worker, grant),  # another worker's
        ):
            code, _, err = await _cli(
                "break-glass", "show", "--gateway", url, grant_id, token=token
            )
            assert code == 2 and "gateway answered 404: You have no break-glass grant with that id" in err
            assert not_found in err and "search again" not in err

        family = ("--council", STOCKPORT, "--person-id", "S-1001", "--break-glass-id", grant)
        refusals = [
            # (who, token, purpose, case reference, what the gateway says)
            ("tm.leeds", manager, "early_help_assessment", "EH-OTHER", "opened for another case reference"),
            ("tm.leeds", manager, "s47_enquiry", "EH-CLI-2", "opened for the purpose early_help_assessment"),
            (
                "sw.stockport",
                worker,
                "early_help_assessment",
                "EH-CLI-2",
                "does not exist or was not opened by you",
            ),
        ]
        for who, token, purpose, case, says in refusals:
            code, _, err = await _cli(
                "query", "family-context", "--gateway", url, *family,
                "--purpose", purpose, "--case-ref", case, token=token,
            )  # fmt: skip
            assert code == 2 and "gateway answered 403: That break-glass grant" in err and says in err, err
            assert not_role in err and role not in err

        past = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
        engine = sa.create_engine(gw.settings.audit_database_url)
        with engine.begin() as conn:
            conn.execute(
                sa.update(break_glass_grants)
                .where(break_glass_grants.c.id == grant)
                .values(opened_at=past - dt.timedelta(minutes=5), expires_at=past)
            )
        engine.dispose()
        code, _, err = await _cli(
            "query", "search", *where, "--family-name", "Brown", "--purpose", "early_help_assessment",
            "--case-ref", "EH-CLI-2", "--break-glass-id", grant, token=manager,
        )  # fmt: skip
        assert code == 2 and "That break-glass grant expired at" in err
        assert not_role in err and role not in err

        # Control: the role itself refused (separation of duties) still says it is the role.
        code, _, err = await _cli(
            "query", "family-context", "--gateway", url, "--council", STOCKPORT,
            "--person-id", "S-1001", "--purpose", "s47_enquiry", "--case-ref", "EH-CLI-2", token=ig,
        )  # fmt: skip
        assert code == 2 and "gateway answered 403: Separation of duties" in err
        assert role in err and not_role not in err
