"""Break glass reaches only the councils asked, and says so everywhere (real gateway, real tokens, mTLS
councils verifying assertions, SQLite audit log): the worker's own council is notified when a grant is
opened, every other council the first time it is asked for data under it (once per grant and
council, before the request reaches it); the reason goes only to councils asked; answers carry
``break_glass``; opening is limited per worker per day; and the grant's fields and the notification
listing's parameters are checked strictly."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from familyctx_gateway.audit_schema import break_glass_grants
from familyctx_gateway.settings import BreakGlassSettings
from familyctx_gateway.testing.fake_council import person
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, STOCKPORT

S47 = {"purpose": "s47_enquiry", "case_reference": "CASE-BG-1"}
REASON = "Strategy discussion brought forward tonight; police report of injuries to the child"
#: A Stockport child recorded with a given name only: nothing to look relatives up by elsewhere, so a
#: family context for them asks Stockport alone.
LONE = {"gss_code": STOCKPORT, "local_person_id": "S-3001"}


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        running.servicers[STOCKPORT].data.people.append(person(STOCKPORT, "S-3001", "Robin", "", None))
        yield running


async def _open(gw: RunningGateway, user: str = "sw.stockport", **body: Any) -> Any:
    return await gw.client.post(
        "/v1/break-glass", json={**S47, "reason": REASON, **body}, headers=gw.auth(user)
    )


async def _notifications(gw: RunningGateway, council: str) -> list[dict[str, Any]]:
    resp = await gw.client.get(
        "/v1/break-glass/notifications", headers=gw.auth("ig.stockport", organisation=council)
    )
    assert resp.status_code == 200, resp.text
    return list(resp.json()["notifications"])


def _told(gw: RunningGateway, council: str) -> list[tuple[str, bool, str]]:
    """(method, break_glass, reason) of every call council ``council`` accepted."""
    return [(m, r.break_glass, r.break_glass_reason) for m, r in gw.servicers[council].calls]


async def test_a_grant_used_only_at_stockport_is_not_listed_to_leeds(gw: RunningGateway) -> None:
    grant = (await _open(gw)).json()
    assert grant["councils_notified"] == [STOCKPORT]  # the worker's own council, at opening
    assert await _notifications(gw, LEEDS) == []

    body = {**S47, "subject": LONE, "break_glass_id": grant["break_glass_id"]}
    used = await gw.client.post("/v1/family-context", json=body, headers=gw.auth())
    assert used.status_code == 200, used.text
    assert used.json()["break_glass"] == {"id": grant["break_glass_id"], "expires_at": grant["expires_at"]}

    # Only Stockport was asked for data; Leeds and Manchester were only described, without break glass.
    assert ("GetFamilyContext", True, REASON) in _told(gw, STOCKPORT)
    for other in (LEEDS, MANCHESTER):
        assert {m for m, _, _ in _told(gw, other)} <= {"Describe"}
        assert all(flag is False and reason == "" for _, flag, reason in _told(gw, other))
    assert await _notifications(gw, LEEDS) == []
    assert await _notifications(gw, MANCHESTER) == []
    stockport = await _notifications(gw, STOCKPORT)
    assert [(n["notified_because"], n["break_glass_id"]) for n in stockport] == [
        ("opened", grant["break_glass_id"]),
        ("used", grant["break_glass_id"]),
    ]
    assert stockport[0]["first_used_at"] is None and stockport[1]["first_used_at"] is not None
    assert stockport[1]["reason"] == REASON and stockport[1]["worker"]["name"] == "Sam Walker"

    # A search under the grant asks every council: each is notified once, however often it is asked.
    search = {**S47, "family_name": "Brown", "break_glass_id": grant["break_glass_id"]}
    for _ in range(2):
        assert (await gw.client.post("/v1/searches", json=search, headers=gw.auth())).status_code == 200
    for council in (LEEDS, MANCHESTER):
        notes = await _notifications(gw, council)
        assert [(n["notified_because"], n["council_gss_code"]) for n in notes] == [("used", council)]
        assert ("FindPeople", True, REASON) in _told(gw, council)
    assert len(await _notifications(gw, STOCKPORT)) == 2
    shown = await gw.client.get(f"/v1/break-glass/{grant['break_glass_id']}", headers=gw.auth())
    notified = shown.json()["councils_notified"]  # each council once; Leeds and Manchester in any order
    assert notified[0] == STOCKPORT and sorted(notified) == sorted([STOCKPORT, LEEDS, MANCHESTER])


async def test_answers_without_break_glass_say_so(gw: RunningGateway) -> None:
    search = await gw.client.post("/v1/searches", json={**S47, "family_name": "Brown"}, headers=gw.auth())
    assert search.status_code == 200 and search.json()["break_glass"] is None
    context = await gw.client.post("/v1/family-context", json={**S47, "subject": LONE}, headers=gw.auth())
    assert context.status_code == 200 and context.json()["break_glass"] is None
    assert all(not flag for c in (STOCKPORT, LEEDS, MANCHESTER) for _, flag, _ in _told(gw, c))


async def test_no_council_is_asked_when_its_notification_cannot_be_recorded(gw: RunningGateway) -> None:
    grant = (await _open(gw)).json()
    engine = sa.create_engine(gw.settings.audit_database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE break_glass_notifications"))
    engine.dispose()
    body = {**S47, "family_name": "Brown", "break_glass_id": grant["break_glass_id"]}
    resp = await gw.client.post("/v1/searches", json=body, headers=gw.auth())
    assert resp.status_code == 503
    assert all(m == "Describe" for c in (STOCKPORT, LEEDS, MANCHESTER) for m, _, _ in _told(gw, c))


async def test_opening_is_limited_per_worker_per_day(issuer: TestIssuer, tmp_path: Path) -> None:
    settings = BreakGlassSettings(max_grants_per_day=2)
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'a.sqlite'}", break_glass=settings) as gw:
        first = (await _open(gw)).json()
        assert (await _open(gw, case_reference="CASE-BG-2")).status_code == 201
        third = await _open(gw, case_reference="CASE-BG-3")
        assert third.status_code == 429
        assert third.json()["detail"].startswith("You have opened 2 break-glass grants in the last 24 hours")
        # Another may be opened once the oldest is a day old: about 24 hours from now.
        retry = int(third.headers["Retry-After"])
        assert 23 * 3600 < retry <= 24 * 3600
        # Another worker is not affected.
        assert (await _open(gw, user="tm.leeds")).status_code == 201
        # Grants older than a day no longer count.
        engine = sa.create_engine(gw.settings.audit_database_url)
        with engine.begin() as conn:
            conn.execute(
                sa.update(break_glass_grants)
                .where(break_glass_grants.c.id == first["break_glass_id"])
                .values(opened_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=25))
            )
        engine.dispose()
        assert (await _open(gw, case_reference="CASE-BG-3")).status_code == 201


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("a" * 40, "reason must say why you need access in words"),
        ("ab" * 20, "reason must say why you need access in words"),
        ("Zebedee Zebedee Zebedee Zebedee", "reason must say why you need access in words"),
        ("1 2 3 4 5 6 7 8 9 0 ! ? - - - - - - - - - -", "reason must say why you need access in at least 20"),
        (REASON[:40] + "\n" + REASON[40:], "reason must be one line of visible text"),
        (REASON[:40] + "\t" + REASON[40:], "reason must be one line of visible text"),
        (REASON[:40] + "\u202e" + REASON[40:], "reason must be one line of visible text"),  # bidi override
        (REASON[:40] + "\u200b" + REASON[40:], "reason must be one line of visible text"),  # zero width
        (REASON[:40] + "\u2028" + REASON[40:], "reason must be one line of visible text"),  # line separator
        (REASON[:40] + "\ue000" + REASON[40:], "reason must be one line of visible text"),  # private use
        (REASON[:40] + "\x1b[2J" + REASON[40:], "reason must be one line of visible text"),  # terminal escape
    ],
)
async def test_reasons_must_say_something_visibly(gw: RunningGateway, reason: str, message: str) -> None:
    resp = await _open(gw, reason=reason)
    assert resp.status_code == 422
    (error,) = resp.json()["errors"]
    assert error["field"] == "reason" and error["message"].startswith(message)
    assert reason not in resp.text


async def test_reasons_are_nfc_normalised_and_trimmed(gw: RunningGateway) -> None:
    decomposed = "Zoe\u0308 seen at A&E tonight, need the early help history"  # e + combining diaeresis
    grant = (await _open(gw, reason=f"\u00a0 {decomposed} ")).json()
    assert grant["reason"] == "Zo\u00eb seen at A&E tonight, need the early help history"


@pytest.mark.parametrize("minutes", ["10", True, 10.5, 10.0, None])
async def test_minutes_must_be_a_json_integer(gw: RunningGateway, minutes: Any) -> None:
    resp = await gw.client.post(
        "/v1/break-glass", json={**S47, "reason": REASON, "minutes": minutes}, headers=gw.auth()
    )
    if minutes is None:  # null: the default
        assert resp.status_code == 201
        return
    assert resp.status_code == 422
    (error,) = resp.json()["errors"]
    assert error == {
        "field": "minutes",
        "message": "minutes must be a whole number (a JSON integer, not text) from 1 to 60 "
        "(this gateway's break_glass.max_minutes)",
    }


@pytest.mark.parametrize("minutes", [0, 61, 10**30])
async def test_minutes_out_of_range_name_the_configured_maximum(gw: RunningGateway, minutes: int) -> None:
    resp = await _open(gw, minutes=minutes)
    assert resp.status_code == 422
    (error,) = resp.json()["errors"]
    assert (
        error["field"] == "minutes"
        and "from 1 to 60 (this gateway's break_glass.max_minutes)" in (error["message"])
    )


@pytest.mark.parametrize(
    ("params", "field", "message"),
    [
        ({"after": str(2**63)}, "after", "after must be a whole number from 0 to 9223372036854775807"),
        ({"after": "9" * 40}, "after", "after must be a whole number from 0 to 9223372036854775807"),
        ({"since": "0001-01-01T00:00:00+23:59"}, "since", "since is outside the years 0001-9999"),
        ({"since": "9999-12-31T23:59:59-23:59"}, "since", "since is outside the years 0001-9999"),
        ({"since": "1700000000"}, "since", "since must be an ISO 8601 date-time"),
        ({"since": "1700000000.5"}, "since", "since must be an ISO 8601 date-time"),
        ({"since": "2026-02-30T00:00:00Z"}, "since", "since is not a real date and time"),
        ({"since": "2026-05-01T09:00:00+24:00"}, "since", "since is not a real date and time"),
    ],
)
async def test_notification_parameters_are_422_never_500(
    gw: RunningGateway, params: dict[str, str], field: str, message: str
) -> None:
    resp = await gw.client.get(
        "/v1/break-glass/notifications", params=params, headers=gw.auth("ig.stockport")
    )
    assert resp.status_code == 422, resp.text
    (error,) = resp.json()["errors"]
    assert error["field"] == field and error["message"].startswith(message)


@pytest.mark.parametrize(
    "since", ["2026-05-01", "2026-05-01T09:00:00Z", "2026-05-01T10:00:00+01:00", "0001-01-01T00:00:00Z"]
)
async def test_iso_8601_since_values_are_accepted(gw: RunningGateway, since: str) -> None:
    await _open(gw)
    resp = await gw.client.get(
        "/v1/break-glass/notifications", params={"since": since}, headers=gw.auth("ig.stockport")
    )
    assert resp.status_code == 200 and len(resp.json()["notifications"]) == 1


async def test_opening_needs_the_workers_council(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/break-glass", json={**S47, "reason": REASON}, headers=gw.auth(organisation=None)
    )
    assert resp.status_code == 403
    assert resp.json()["detail"].startswith("Your access token names no council (organisation)")
    assert resp.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'
