"""Gateway to adapter trust, in-process but over real sockets: mutual TLS with a development PKI, and a
signed requester assertion per call that each fake council verifies (audience = its GSS code).

What each council was told is what it verified, not what the gateway meant to send. Councils the
gateway must not trust (a server certificate from another CA, a wrong TLS name), a gateway the councils
must not trust (client certificate from another CA) and a council refusing the gateway's keys each end
in an explicit source state, never a 500, while the other councils answer.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from familyctx_gateway.adapter_trust import ClientTls
from familyctx_gateway.settings import AdapterTarget, AdapterTlsSettings
from familyctx_gateway.testing.fake_council import (
    CouncilData,
    CouncilTrust,
    FakeAdapterService,
    start_council,
)
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer
from familyctx_gateway.testing.pki import ASSERTION_ISSUER, foreign_pki, session_pki
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT

from familyctx.trust.assertion import AssertionVerifier, Requester
from familyctx.trust.pki import adapter_dns_name

PURPOSE = {"purpose": "s47_enquiry", "case_reference": "CASE-2026-0042"}
SUBJECT = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}
BRADFORD = "E08000032"
SCENARIO = (STOCKPORT, LEEDS, MANCHESTER)


def _audit(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.sqlite'}"


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, _audit(tmp_path)) as running:
        yield running


def _expected(
    request_id: str, *, purpose: str = "s47_enquiry", case_reference: str = "CASE-2026-0042"
) -> Requester:
    # sw.stockport of the test issuer (testing/issuer.py): a Stockport social worker using the CLI client.
    return Requester(
        sub="user-sw.stockport",
        name="Sam Walker",
        organisation=STOCKPORT,
        role="social_worker",
        client="familyctx-cli",
        purpose=purpose,
        case_reference=case_reference,
        break_glass=False,
        break_glass_reason="",
        request_id=request_id,
    )


async def test_every_council_verifies_an_assertion_of_the_worker_signed_for_itself(
    gw: RunningGateway,
) -> None:
    resp = await gw.client.post(
        "/v1/searches",
        json={**PURPOSE, "nhs_number": NHS["claire"]},
        headers={**gw.auth(), "X-Request-ID": "rid-trust-1"},
    )
    assert resp.status_code == 200, resp.text
    assert gw.pki is not None
    jwks = json.loads(gw.pki.assertion_jwks.read_text())
    for code in SCENARIO:
        servicer = gw.servicers[code]
        assert servicer.calls == [("FindPeople", _expected("rid-trust-1"))]
        token = servicer.metadata[-1]["x-familyctx-assertion"]
        # The audience is this council: its own verifier accepted it, and no other council's would.
        assert AssertionVerifier(jwks, issuer=ASSERTION_ISSUER, audience=code).verify(token).audience == code
        for other in (c for c in SCENARIO if c != code):
            with pytest.raises(ValueError, match="wrong_audience"):
                AssertionVerifier(jwks, issuer=ASSERTION_ISSUER, audience=other).verify(token)
        assert servicer.refusals == []


async def test_family_context_calls_all_carry_the_purpose_and_case_reference(gw: RunningGateway) -> None:
    body = {"purpose": "cp_conference", "case_reference": "CP-77", "subject": SUBJECT}
    resp = await gw.client.post(
        "/v1/family-context", json=body, headers={**gw.auth(), "X-Request-ID": "rid-trust-2"}
    )
    assert resp.status_code == 200, resp.text
    expected = _expected("rid-trust-2", purpose="cp_conference", case_reference="CP-77")
    methods = set()
    for code in SCENARIO:
        for method, requester in gw.servicers[code].calls:
            methods.add(method)
            assert requester == expected, (code, method)
    assert {"Describe", "FindPeople", "GetFamilyContext"} <= methods


async def test_sources_describe_is_signed_for_the_caller_without_a_purpose(gw: RunningGateway) -> None:
    resp = await gw.client.get("/v1/sources", headers={**gw.auth(), "X-Request-ID": "rid-trust-3"})
    assert resp.status_code == 200, resp.text
    assert {s["state"] for s in resp.json()["sources"]} == {"ok"}
    for code in SCENARIO:
        assert gw.servicers[code].calls == [
            ("Describe", _expected("rid-trust-3", purpose="", case_reference=""))
        ]


async def test_jwks_endpoint_publishes_public_keys_only_and_they_verify_the_assertions(
    gw: RunningGateway,
) -> None:
    resp = await gw.client.get("/.well-known/jwks.json")
    assert resp.status_code == 200
    assert resp.headers["cache-control"] == "public, max-age=300"
    assert resp.headers["content-type"].startswith("application/jwk-set+json")
    jwks = resp.json()
    [key] = jwks["keys"]
    assert key["kty"] == "EC" and key["crv"] == "P-256" and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key), "private key material published"
    assert gw.pki is not None
    private = json.loads(gw.pki.assertion_key.read_text())
    assert private["d"] not in resp.text
    # The published keys are the ones adapters need: a real call's assertion verifies with them.
    search = await gw.client.post("/v1/searches", json={**PURPOSE, "family_name": "Brown"}, headers=gw.auth())
    assert search.status_code == 200
    token = gw.servicers[LEEDS].metadata[-1]["x-familyctx-assertion"]
    assert AssertionVerifier(jwks, issuer=ASSERTION_ISSUER, audience=LEEDS).verify(token).requester.role


async def test_jwks_endpoint_publishes_a_rotation_key_beside_the_signing_key(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    next_key = foreign_pki().assertion_jwks
    gw_assertion = {"issuer": ASSERTION_ISSUER, "signing_key_file": session_pki().assertion_key}
    async with running_gateway(
        issuer, _audit(tmp_path), assertion={**gw_assertion, "additional_jwks_files": [next_key]}
    ) as gw:
        resp = await gw.client.get("/.well-known/jwks.json")
    kids = [k["kid"] for k in resp.json()["keys"]]
    signing = json.loads(session_pki().assertion_key.read_text())["kid"]
    rotated = json.loads(next_key.read_text())["keys"][0]["kid"]
    assert kids == [signing, rotated]
    assert all("d" not in k for k in resp.json()["keys"])


# --- councils and gateways that must not be trusted ---------------------------------------------


async def _search_with(
    issuer: TestIssuer, tmp_path: Path, trust: CouncilTrust, **target: Any
) -> tuple[dict[str, Any], FakeAdapterService]:
    """Search a federation of the scenario councils plus Bradford, which serves and verifies as ``trust``
    says and is configured with ``target`` overrides (e.g. ``tls_server_name``)."""
    async with AsyncExitStack() as stack:
        address, bradford = await stack.enter_async_context(
            start_council(CouncilData(BRADFORD, "Bradford"), trust)
        )
        extra = AdapterTarget(gss_code=BRADFORD, name="Bradford", address=address, **target)
        gw = await stack.enter_async_context(running_gateway(issuer, _audit(tmp_path), extra_targets=[extra]))
        resp = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
        )
        assert resp.status_code == 200, resp.text
        return resp.json(), bradford


def _states(body: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
    return {s["gss_code"]: (s["state"], s["detail"]) for s in body["sources"]}


HANDSHAKE = (
    "adapter not reachable: the mutual TLS handshake failed (certificate not trusted, wrong name, or the "
    "adapter refused the gateway's client certificate)"
)


async def test_a_council_whose_certificate_is_from_another_ca_is_unavailable_and_never_asked(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    trust = CouncilTrust(session_pki(), ASSERTION_ISSUER, server_pki=foreign_pki())
    body, bradford = await _search_with(issuer, tmp_path, trust)
    states = _states(body)
    assert states[BRADFORD] == ("unavailable", HANDSHAKE)
    assert {code: states[code][0] for code in SCENARIO} == dict.fromkeys(SCENARIO, "ok")
    assert [r["local_person_id"] for c in body["candidates"] for r in c["records"]] == ["S-1001"]
    # The handshake failed before any request: the impostor saw no assertion at all.
    assert bradford.metadata == [] and bradford.calls == []


async def test_tls_server_name_override_is_checked_against_the_certificate(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    trust = CouncilTrust(session_pki(), ASSERTION_ISSUER)
    body, bradford = await _search_with(issuer, tmp_path, trust, tls_server_name=adapter_dns_name(BRADFORD))
    assert _states(body)[BRADFORD] == ("ok", None)
    assert [m for m, _ in bradford.calls] == ["FindPeople"]
    # Bradford's certificate names Bradford's adapter, not Stockport's: refused by the gateway.
    body, bradford = await _search_with(issuer, tmp_path, trust, tls_server_name=adapter_dns_name(STOCKPORT))
    assert _states(body)[BRADFORD] == ("unavailable", HANDSHAKE)
    assert bradford.calls == []


async def test_a_council_that_refuses_the_gateways_assertion_is_refused_and_the_rest_answer(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    # Bradford trusts another gateway's keys: our assertions carry an unknown kid there.
    other_keys = json.loads(foreign_pki().assertion_jwks.read_text())
    trust = CouncilTrust(session_pki(), ASSERTION_ISSUER, jwks=other_keys)
    body, bradford = await _search_with(issuer, tmp_path, trust)
    states = _states(body)
    assert states[BRADFORD] == (
        "refused",
        "Bradford's adapter refused the gateway's credentials (certificate or assertion): ask the "
        "federation's operators",
    )
    assert {code: states[code][0] for code in SCENARIO} == dict.fromkeys(SCENARIO, "ok")
    assert bradford.refusals == [("FindPeople", "unknown_key")]
    assert bradford.calls == []


async def test_a_gateway_with_a_client_certificate_from_another_ca_reaches_no_council(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    impostor = foreign_pki()
    tls = AdapterTlsSettings(
        ca_file=session_pki().ca_cert, cert_file=impostor.gateway_cert, key_file=impostor.gateway_key
    )
    async with running_gateway(issuer, _audit(tmp_path), adapter_tls=tls) as gw:
        resp = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
        )
        assert resp.status_code == 200, resp.text
        # The council drops the connection; depending on when the TLS alert arrives the gateway sees a
        # closed socket or a failed handshake. Either way the detail points at the certificate.
        states = _states(resp.json())
        assert {code: state for code, (state, _) in states.items()} == dict.fromkeys(SCENARIO, "unavailable")
        assert all("gateway's client certificate" in (detail or "") for _, detail in states.values()), states
        assert resp.json()["candidates"] == []
        assert all(s.metadata == [] for s in gw.servicers.values()), "no request got past the handshake"


def test_client_tls_refuses_a_key_that_is_not_the_certificates(tmp_path: Path) -> None:
    from familyctx_gateway.errors import GatewayConfigError

    pki = session_pki()
    mixed = AdapterTlsSettings(
        ca_file=pki.ca_cert, cert_file=pki.gateway_cert, key_file=pki.adapter_key(LEEDS)
    )
    with pytest.raises(GatewayConfigError) as err:
        ClientTls.load(mixed)
    assert err.value.problems == [
        f"adapter_tls.key_file: {pki.adapter_key(LEEDS)} is not the key of {pki.gateway_cert}"
    ]
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("hello")
    with pytest.raises(GatewayConfigError) as err:
        ClientTls.load(
            AdapterTlsSettings(ca_file=not_pem, cert_file=pki.gateway_cert, key_file=pki.gateway_key)
        )
    assert err.value.problems == [f"adapter_tls.ca_file: {not_pem} is not a PEM certificate"]
