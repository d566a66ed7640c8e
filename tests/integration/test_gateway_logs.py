"""The gateway's log lines, captured from the real app: route templates (never raw paths) and the request
id on every line a user's report may need to be traced to, token rejections included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer
from joserfc.jwk import RSAKey

SEARCH = {"purpose": "s17_assessment", "case_reference": "CASE-1", "family_name": "Smith"}
FAKE_NHS_NUMBER = "9992641517"


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        yield running


def _lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger]


async def test_unmatched_path_is_logged_as_a_placeholder_never_raw(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    resp = await gw.client.get(
        f"/Siobhan-ONeill-{FAKE_NHS_NUMBER}?dob=1990-07-21", headers={"X-Request-ID": "rid-unmatched"}
    )
    assert resp.status_code == 404
    access = _lines(caplog, "familyctx_gateway.access")
    assert len(access) == 1
    assert access[0].startswith(
        "request request_id=rid-unmatched method=GET endpoint=<unmatched> status=404 latency_ms="
    )
    # Every line the gateway wrote (httpx's own line is the test client's, not the gateway's).
    written = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("familyctx_gateway"))
    for value in (FAKE_NHS_NUMBER, "Siobhan", "1990-07-21"):
        assert value not in written


async def test_matched_requests_log_the_route_template(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    await gw.client.post("/v1/searches", json=SEARCH, headers={**gw.auth(), "X-Request-ID": "rid-ok"})
    # Refused by the body limit before routing, and a method the route does not allow: still named.
    await gw.client.post(
        "/v1/searches", content=b"x" * 70_000, headers={**gw.auth(), "X-Request-ID": "rid-big"}
    )
    await gw.client.request(FAKE_NHS_NUMBER, "/v1/sources", headers={"X-Request-ID": "rid-odd-method"})
    access = _lines(caplog, "familyctx_gateway.access")
    assert any("request_id=rid-ok method=POST endpoint=/v1/searches status=200" in a for a in access), access
    assert any("request_id=rid-big method=POST endpoint=/v1/searches status=413" in a for a in access), access
    assert any(
        "request_id=rid-odd-method method=<other> endpoint=/v1/sources status=405" in a for a in access
    )
    assert FAKE_NHS_NUMBER not in "\n".join(access)


async def test_token_rejections_carry_the_request_id(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    rogue = RSAKey.generate_key(2048, parameters={"kid": "rogue-log"})
    cases = {
        "rid-garbage": ("Bearer not.a.jwt", "reason=DecodeError"),
        "rid-unknown-kid": (f"Bearer {gw.issuer.token(key=rogue)}", "reason=unknown_kid"),
        "rid-wrong-audience": (f"Bearer {gw.issuer.token(aud='another-api')}", "reason="),
        "rid-no-token": ("", "reason=no_bearer_token"),
    }
    for request_id, (authorization, _reason) in cases.items():
        headers = {"X-Request-ID": request_id}
        if authorization:
            headers["Authorization"] = authorization
        resp = await gw.client.post("/v1/searches", json=SEARCH, headers=headers)
        assert resp.status_code == 401
        assert resp.json()["request_id"] == request_id
    rejected = _lines(caplog, "familyctx_gateway.auth")
    for request_id, (_authorization, reason) in cases.items():
        assert any(
            line.startswith(f"token rejected request_id={request_id} {reason}") for line in rejected
        ), (request_id, rejected)
