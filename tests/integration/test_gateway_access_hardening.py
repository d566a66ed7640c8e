"""Access control edge cases through the real gateway (real tokens, Cedar policy, mTLS councils verifying
assertions): role text the gateway does not know is dropped and never echoed, a token holding
ig_officer never gets family data (separation of duties), family data needs the worker's council in the
token, and every role or purpose refusal carries the RFC 6750 ``insufficient_scope`` challenge."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer
from familyctx_gateway.testing.scenario import NHS, STOCKPORT

S47 = {"purpose": "s47_enquiry", "case_reference": "CASE-2026-0042"}
SUBJECT = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}
REASON = "Strategy discussion brought forward tonight; need the early help history now"
CHALLENGE = 'Bearer error="insufficient_scope"'
#: Role text from a token that is no role of this service, with markup and a bidi override in it.
ODD_ROLE = "superuser<script>\u202eXYZ"


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        yield running


def _asked(gw: RunningGateway, method: str) -> list[tuple[str, str]]:
    """(role, organisation) of every verified assertion the councils accepted for ``method``."""
    return [(r.role, r.organisation) for s in gw.servicers.values() for m, r in s.calls if m == method]


async def test_unknown_roles_are_dropped_and_never_echoed(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mixed = gw.auth(roles=[ODD_ROLE, "social_worker", "offline_access", "default-roles-familyctx"])
    ok = await gw.client.post("/v1/searches", json={**S47, "nhs_number": NHS["zoe"]}, headers=mixed)
    assert ok.status_code == 200, ok.text
    asked = _asked(gw, "FindPeople")
    assert set(asked) == {("social_worker", STOCKPORT)}

    only_unknown = gw.auth(roles=[ODD_ROLE, "offline_access"])
    for method, path, body in (
        ("POST", "/v1/searches", {**S47, "nhs_number": NHS["zoe"]}),
        ("POST", "/v1/family-context", {**S47, "subject": SUBJECT}),
        ("POST", "/v1/break-glass", {**S47, "reason": REASON}),
        ("GET", "/v1/break-glass/notifications", None),
        ("GET", "/v1/sources", None),
    ):
        resp = await gw.client.request(method, path, json=body, headers=only_unknown)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["detail"] == "Your access token carries no role for this service"
        assert resp.headers["WWW-Authenticate"] == CHALLENGE
        assert "superuser" not in resp.text and "offline_access" not in resp.text
    assert _asked(gw, "FindPeople") == asked  # only the first, allowed, search reached the councils
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "superuser" not in text and "offline_access" not in text and "\u202e" not in text
    assert "unknown_roles=2" in text  # counted, not named


async def test_a_token_holding_ig_officer_gets_no_family_data(gw: RunningGateway) -> None:
    both = gw.auth(roles=["social_worker", "ig_officer"])
    for path, body in (
        ("/v1/searches", {**S47, "nhs_number": NHS["zoe"]}),
        ("/v1/family-context", {**S47, "subject": SUBJECT}),
        ("/v1/break-glass", {**S47, "reason": REASON}),
    ):
        resp = await gw.client.post(path, json=body, headers=both)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["detail"].startswith(
            "Separation of duties: an account holding the ig_officer role"
        )
        assert resp.headers["WWW-Authenticate"] == CHALLENGE
    assert _asked(gw, "FindPeople") == [] and _asked(gw, "GetFamilyContext") == []
    # The same token still does an IG officer's work.
    notes = await gw.client.get("/v1/break-glass/notifications", headers=both)
    assert notes.status_code == 200


async def test_family_data_needs_the_workers_council(gw: RunningGateway) -> None:
    no_council = gw.auth(organisation=None)
    for path, body in (
        ("/v1/searches", {**S47, "nhs_number": NHS["zoe"]}),
        ("/v1/family-context", {**S47, "subject": SUBJECT}),
        ("/v1/break-glass", {**S47, "reason": REASON}),
    ):
        resp = await gw.client.post(path, json=body, headers=no_council)
        assert resp.status_code == 403, (path, resp.text)
        assert resp.json()["detail"].startswith("Your access token names no council (organisation)")
        assert resp.headers["WWW-Authenticate"] == CHALLENGE
    assert _asked(gw, "FindPeople") == [] and _asked(gw, "GetFamilyContext") == []
    assert (await gw.client.get("/v1/sources", headers=no_council)).status_code == 200


async def test_role_and_purpose_refusals_carry_insufficient_scope(gw: RunningGateway) -> None:
    admin = await gw.client.post(
        "/v1/searches", json={**S47, "family_name": "Brown"}, headers=gw.auth(roles=["administrator"])
    )
    purpose = await gw.client.post(
        "/v1/searches",
        json={"purpose": "early_help_assessment", "case_reference": "EH-7", "family_name": "Brown"},
        headers=gw.auth("tm.leeds"),
    )
    audit = await gw.client.get("/v1/break-glass/notifications", headers=gw.auth())
    for resp in (admin, purpose, audit):
        assert resp.status_code == 403
        assert resp.headers["WWW-Authenticate"] == CHALLENGE
