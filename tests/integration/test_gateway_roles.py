"""Roles and purposes through the real gateway: real tokens, real Cedar policy, real mTLS councils that
verify the gateway's assertions, real SQLite audit file. What each role may call, the one role a
request is made under (audited, and the role the councils are told), purpose refusals, and a
deployment's own policy file (a broken one stops the gateway)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from familyctx_gateway.app import create_app
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.settings import GatewaySettings, OidcSettings
from familyctx_gateway.testing.audit import flat_records
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer
from familyctx_gateway.testing.scenario import LEEDS, NHS, STOCKPORT

S47 = {"purpose": "s47_enquiry", "case_reference": "CASE-2026-0042"}
SUBJECT = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}
REASON = "Strategy discussion brought forward tonight; need the early help history now"


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        yield running


def _rows(gw: RunningGateway) -> list[dict[str, Any]]:
    return flat_records(gw.settings.audit_database_url)  # index rows and the record's fields, in log order


def _headers(gw: RunningGateway, roles: list[str], organisation: str | None = STOCKPORT) -> dict[str, str]:
    return gw.auth("sw.stockport", roles=roles, organisation=organisation)


def _council_roles(gw: RunningGateway, method: str) -> set[tuple[str, str]]:
    """(role, purpose) of every verified assertion the councils received for ``method``."""
    return {
        (requester.role, requester.purpose)
        for servicer in gw.servicers.values()
        for called, requester in servicer.calls
        if called == method
    }


#: role -> expected status of: search, family context, sources, notifications, opening break glass.
ROLE_TABLE = {
    "social_worker": (200, 200, 200, 403, 201),
    "team_manager": (200, 200, 200, 403, 201),
    "ig_officer": (403, 403, 200, 200, 403),
    "administrator": (403, 403, 200, 403, 403),
    "service_client": (403, 403, 200, 403, 403),
}


@pytest.mark.parametrize("role", sorted(ROLE_TABLE))
async def test_what_each_role_may_call(gw: RunningGateway, role: str) -> None:
    headers = _headers(gw, [role], organisation=None if role == "service_client" else STOCKPORT)
    # Sources first: Describe answers are cached, and a family context also asks for them.
    sources = (await gw.client.get("/v1/sources", headers=headers)).status_code
    statuses = (
        (
            await gw.client.post("/v1/searches", json={**S47, "nhs_number": NHS["zoe"]}, headers=headers)
        ).status_code,
        (
            await gw.client.post("/v1/family-context", json={**S47, "subject": SUBJECT}, headers=headers)
        ).status_code,
        sources,
        (await gw.client.get("/v1/break-glass/notifications", headers=headers)).status_code,
        (
            await gw.client.post("/v1/break-glass", json={**S47, "reason": REASON}, headers=headers)
        ).status_code,
    )
    assert statuses == ROLE_TABLE[role]
    rows = _rows(gw)
    notes = "GET /v1/break-glass/notifications"
    data = [r for r in rows if r["endpoint"] not in ("POST /v1/break-glass", notes)]
    # Reading break-glass notifications is an audited IG read, refusals included.
    assert [r["outcome"] for r in rows if r["endpoint"] == notes] == [
        "success" if ROLE_TABLE[role][3] == 200 else "denied"
    ]
    allowed = ROLE_TABLE[role][0] == 200
    assert [(r["outcome"], r["role"]) for r in data] == [
        ("success", role) if allowed else ("denied", None)
    ] * 2
    assert all(r["roles"] == [role] and r["break_glass"] is False for r in data)
    # The councils were only asked for people under a role the gateway authorised, with the purpose.
    assert _council_roles(gw, "FindPeople") == ({(role, "s47_enquiry")} if allowed else set())
    # The sources listing (Describe) is signed for the caller's authorised role, without a purpose.
    assert (role, "") in _council_roles(gw, "Describe")


async def test_refusal_messages_say_what_and_why(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/searches", json={**S47, "family_name": "Brown"}, headers=gw.auth("ig.stockport")
    )
    assert resp.status_code == 403
    assert resp.json()["detail"].startswith("Separation of duties: an account holding the ig_officer role")
    admin_search = await gw.client.post(
        "/v1/searches", json={**S47, "family_name": "Brown"}, headers=_headers(gw, ["administrator"])
    )
    assert admin_search.json()["detail"].startswith(
        "Your role (administrator) may not search for people for any purpose"
    )
    admin = await gw.client.get("/v1/break-glass/notifications", headers=_headers(gw, ["administrator"]))
    assert admin.json()["detail"] == "Your role (administrator) may not list break-glass notifications"


async def test_team_manager_purpose_restriction(gw: RunningGateway) -> None:
    early_help = {"purpose": "early_help_assessment", "case_reference": "EH-7"}
    refused = await gw.client.post(
        "/v1/family-context", json={**early_help, "subject": SUBJECT}, headers=gw.auth("tm.leeds")
    )
    assert refused.status_code == 403
    detail = refused.json()["detail"]
    assert detail.startswith(
        "Your role (team_manager) may not read a family context for the purpose early_help_assessment."
    )
    assert "break glass" in detail
    allowed = await gw.client.post(
        "/v1/family-context",
        json={**S47, "purpose": "cla_review", "subject": SUBJECT},
        headers=gw.auth("tm.leeds"),
    )
    assert allowed.status_code == 200, allowed.text
    rows = _rows(gw)
    assert [(r["outcome"], r["http_status"], r["purpose"], r["role"]) for r in rows] == [
        ("denied", 403, "early_help_assessment", None),
        ("success", 200, "cla_review", "team_manager"),
    ]
    assert _council_roles(gw, "GetFamilyContext") == {("team_manager", "cla_review")}
    # A social worker may use early help.
    worker = await gw.client.post(
        "/v1/searches", json={**early_help, "family_name": "Brown"}, headers=gw.auth()
    )
    assert worker.status_code == 200


async def test_a_worker_with_two_roles_is_served_under_the_first_permitted(gw: RunningGateway) -> None:
    # (A token that also holds ig_officer gets no family data at all: test_gateway_access_hardening.py.)
    headers = _headers(gw, ["administrator", "team_manager", "social_worker"])
    resp = await gw.client.post(
        "/v1/searches",
        json={**S47, "purpose": "early_help_assessment", "nhs_number": NHS["zoe"]},
        headers=headers,
    )
    assert resp.status_code == 200
    (row,) = _rows(gw)
    assert row["role"] == "social_worker"
    assert row["roles"] == ["administrator", "team_manager", "social_worker"]
    assert _council_roles(gw, "FindPeople") == {("social_worker", "early_help_assessment")}


STRICT_POLICY = """
// Only section 47 enquiries, and only for social workers.
@id("social-workers-request-family-data")
permit (principal, action in Action::"request_family_data", resource)
when { context.role == "social_worker" };

@id("social-workers-purposes")
@break_glass("may_override")
forbid (principal, action in Action::"request_family_data", resource)
when { context.role == "social_worker" }
unless { context.purpose == "s47_enquiry" };

@id("sources")
permit (principal, action == Action::"list_sources", resource);
"""


async def test_a_deployment_policy_file_replaces_the_default(issuer: TestIssuer, tmp_path: Path) -> None:
    policy = tmp_path / "strict.cedar"
    policy.write_text(STRICT_POLICY, encoding="utf-8")
    async with running_gateway(
        issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}", access_policy_file=policy
    ) as gw:
        ok = await gw.client.post("/v1/searches", json={**S47, "nhs_number": NHS["zoe"]}, headers=gw.auth())
        conference = await gw.client.post(
            "/v1/searches",
            json={**S47, "purpose": "cp_conference", "nhs_number": NHS["zoe"]},
            headers=gw.auth(),
        )
        manager = await gw.client.post(
            "/v1/searches", json={**S47, "nhs_number": NHS["zoe"]}, headers=gw.auth("tm.leeds")
        )
        opening = await gw.client.post("/v1/break-glass", json={**S47, "reason": REASON}, headers=gw.auth())
    assert ok.status_code == 200
    assert conference.status_code == 403 and "for the purpose cp_conference" in conference.json()["detail"]
    assert manager.status_code == 403 and "team_manager" in manager.json()["detail"]
    # This policy grants nobody open_break_glass.
    assert opening.status_code == 403 and "may not open break glass" in opening.json()["detail"]


def test_a_broken_policy_stops_the_gateway_at_start(issuer: TestIssuer, tmp_path: Path) -> None:
    policy = tmp_path / "broken.cedar"
    policy.write_text(STRICT_POLICY.replace("context.purpose ==", "context.porpoise =="), encoding="utf-8")
    settings = GatewaySettings(
        audit_database_url=f"sqlite:///{tmp_path / 'audit.sqlite'}",
        oidc=[OidcSettings(issuer=issuer.issuer, audience=AUDIENCE)],
        access_policy_file=policy,
    )
    with pytest.raises(GatewayConfigError) as error:
        create_app(settings)
    assert error.value.source == f"access policy {policy}"
    assert error.value.problems[0].startswith("policy social-workers-purposes (line 7): attribute `porpoise`")


def test_gateway_serve_with_a_broken_policy_exits_2_naming_file_and_line(tmp_path: Path) -> None:
    policy = tmp_path / "broken.cedar"
    policy.write_text(STRICT_POLICY.replace("unless {", "unless (", 1), encoding="utf-8")
    config = tmp_path / "gateway.yaml"
    config.write_text(
        f"audit_database_url: sqlite:///{tmp_path / 'audit.sqlite'}\n"
        'oidc: {issuer: "http://127.0.0.1:1", audience: "familyctx-gateway"}\n'
        f"access_policy_file: {policy}\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "familyctx.cli", "gateway", "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert f"access policy {policy}: policy at line 7: Cedar syntax error" in result.stderr
    assert not (tmp_path / "audit.sqlite").exists()


async def test_leeds_and_stockport_ig_officers_exist_in_the_test_tokens(gw: RunningGateway) -> None:
    # An IG officer of another council reads notifications too (their own council's).
    headers = gw.auth("ig.stockport", organisation=LEEDS)
    resp = await gw.client.get("/v1/break-glass/notifications", headers=headers)
    assert resp.status_code == 200 and resp.json() == {"notifications": [], "next_after": None}
