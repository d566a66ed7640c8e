"""Bearer token validation with real keys, a real JWKS endpoint and really signed (or forged) JWTs."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import USERS, TestIssuer, running_issuer
from familyctx_gateway.testing.scenario import NHS
from joserfc.jwk import ECKey, RSAKey

SEARCH = {"purpose": "s17_assessment", "case_reference": "CASE-1", "nhs_number": NHS["zoe"]}


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        yield running


def _rogue_rsa(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid})


def _forged_tokens(issuer: TestIssuer) -> dict[str, str]:
    now = int(time.time())
    return {
        "expired": issuer.token(exp=now - 3600, iat=now - 7200, nbf=now - 7200),
        "not yet valid": issuer.token(nbf=now + 3600, iat=now),
        "issued in the future": issuer.token(iat=now + 3600),
        "unknown key": issuer.token(key=_rogue_rsa("rogue-1")),
        "known kid, wrong key": issuer.token(key=_rogue_rsa("rsa-1")),
        "alg none": issuer.unsigned_token(),
        "HS256 with the public key": issuer.hs256_with_public_key(),
        "wrong audience": issuer.token(aud="some-other-api"),
        "wrong issuer": issuer.token(iss="http://127.0.0.1:1"),
        "no kid": issuer.token(header={"kid": None}),
        "no expiry": issuer.token(exp=None),
        "no subject": issuer.token(sub=None),
        "alg outside the allowlist (RS512)": issuer.token(alg="RS512", key=_rogue_rsa("rsa-1")),
        "garbage": "not.a.jwt",
        "tampered payload": issuer.token()[:-10] + "AAAAAAAAAA",
    }


async def test_no_token_is_401_with_rfc6750_challenge(gw: RunningGateway) -> None:
    resp = await gw.client.post("/v1/searches", json=SEARCH)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    resp = await gw.client.post("/v1/searches", json=SEARCH, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert resp.status_code == 401


async def test_every_forged_or_invalid_token_is_401_without_personal_data(gw: RunningGateway) -> None:
    for reason, token in _forged_tokens(gw.issuer).items():
        resp = await gw.client.post("/v1/searches", json=SEARCH, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401, reason
        assert resp.headers["www-authenticate"] == 'Bearer error="invalid_token"', reason
        body = resp.json()
        assert body["detail"] == "A valid bearer access token is required", reason
        for value in (NHS["zoe"], "Zoë", "O'Neill", USERS["sw.stockport"]["name"], "S-1001"):
            assert value not in resp.text, reason


async def test_rs256_and_es256_tokens_within_leeway_are_accepted(gw: RunningGateway) -> None:
    now = int(time.time())
    for token in (
        gw.issuer.token(),
        gw.issuer.token(alg="ES256"),
        gw.issuer.token(exp=now - 30),  # expired 30 s ago: inside the 60 s leeway for clock skew
    ):
        resp = await gw.client.post("/v1/searches", json=SEARCH, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 200, resp.text


async def test_rotated_key_is_fetched_once_on_unknown_kid(gw: RunningGateway) -> None:
    issuer = gw.issuer
    fetched_before = issuer.jwks_requests
    new_key = ECKey.generate_key("P-256", parameters={"kid": "ec-2", "alg": "ES256"})
    issuer.published.append(new_key)
    resp = await gw.client.post(
        "/v1/searches",
        json=SEARCH,
        headers={"Authorization": f"Bearer {issuer.token(key=new_key, alg='ES256')}"},
    )
    assert resp.status_code == 200
    assert issuer.jwks_requests == fetched_before + 1
    # A burst of unknown kids does not hammer the issuer: refreshes are rate-limited.
    for n in range(3):
        token = issuer.token(key=_rogue_rsa(f"rogue-{n}"))
        resp = await gw.client.post("/v1/searches", json=SEARCH, headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 401
    assert issuer.jwks_requests == fetched_before + 1


async def test_last_good_keys_are_kept_when_the_issuer_fails(gw: RunningGateway) -> None:
    gw.issuer.failing = True
    assert await gw.app.state.gateway.jwks.refresh(force=True)  # refresh failed, keys still loaded
    resp = await gw.client.post("/v1/searches", json=SEARCH, headers=gw.auth())
    assert resp.status_code == 200
    assert (await gw.client.get("/readyz")).status_code == 200


async def test_rotation_removes_keys_the_issuer_no_longer_publishes(gw: RunningGateway) -> None:
    token = gw.issuer.token()
    gw.issuer.published.remove(gw.issuer.rsa)
    await gw.app.state.gateway.jwks.refresh(force=True)
    resp = await gw.client.post("/v1/searches", json=SEARCH, headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 401


async def test_gateway_is_not_ready_until_keys_load(issuer: TestIssuer, tmp_path: Path) -> None:
    issuer.failing = True
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'a.sqlite'}") as gw:
        resp = await gw.client.get("/readyz")
        assert resp.status_code == 503
        assert resp.json()["checks"]["jwks"] == "not loaded"
        resp = await gw.client.post("/v1/searches", json=SEARCH, headers=gw.auth())
        assert resp.status_code == 401  # no keys: the token cannot be verified (never a 5xx)
        assert resp.headers["www-authenticate"] == 'Bearer error="invalid_token"'
        issuer.failing = False
        assert await gw.app.state.gateway.jwks.refresh(force=True)
        assert (await gw.client.get("/readyz")).status_code == 200
