"""Identity from real providers (issue 3): the token cases one test each, Keycloak-shaped and RFC 9068
tokens, several issuers at once, JWKS rotation, a shared fetch under concurrency and provider outages.

Every token is really signed (joserfc), every key comes from a real JWKS endpoint on 127.0.0.1 port 0
(:func:`running_issuer`), and every request goes through the real gateway app with its lifespan.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from familyctx_gateway.settings import OidcSettings
from familyctx_gateway.testing.audit import flat_records
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer, running_issuer
from familyctx_gateway.testing.scenario import NHS
from joserfc.jwk import ECKey

SEARCH = {"purpose": "s17_assessment", "case_reference": "CASE-1", "nhs_number": NHS["zoe"]}
INVALID = 'Bearer error="invalid_token"'


@pytest.fixture
def issuers() -> Iterator[tuple[TestIssuer, TestIssuer]]:
    with ExitStack() as stack:
        yield stack.enter_context(running_issuer()), stack.enter_context(running_issuer())


@pytest.fixture
def issuer(issuers: tuple[TestIssuer, TestIssuer]) -> TestIssuer:
    return issuers[0]


def _audit_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'audit.sqlite'}"


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, _audit_url(tmp_path)) as running:
        yield running


async def _search(gw: RunningGateway, token: str) -> httpx.Response:
    return await gw.client.post("/v1/searches", json=SEARCH, headers={"Authorization": f"Bearer {token}"})


async def _assert_refused(gw: RunningGateway, token: str) -> None:
    resp = await _search(gw, token)
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == INVALID


def _keycloak_claims(**overrides: Any) -> dict[str, Any]:
    """Claims as Keycloak puts them in an access token: roles under realm_access / resource_access,
    the client in ``azp`` only, and a ``typ: Bearer`` claim."""
    return {
        "roles": None,
        "client_id": None,
        "typ": "Bearer",
        "azp": "familyctx-cli",
        "realm_access": {"roles": ["social_worker", "offline_access", "default-roles-familyctx"]},
        "resource_access": {"familyctx-gateway": {"roles": ["team_manager"]}, "account": {"roles": ["x"]}},
        "aud": [AUDIENCE, "account"],
        **overrides,
    }


# --- the token cases of issue 3, one test each ---------------------------------------------------


async def test_alg_none_is_refused(gw: RunningGateway) -> None:
    await _assert_refused(gw, gw.issuer.unsigned_token())


async def test_hs256_signed_with_the_providers_public_key_is_refused(gw: RunningGateway) -> None:
    await _assert_refused(gw, gw.issuer.hs256_with_public_key())


async def test_expired_beyond_the_leeway_is_refused(gw: RunningGateway) -> None:
    now = int(time.time())
    await _assert_refused(gw, gw.issuer.token(iat=now - 600, nbf=now - 600, exp=now - 120))


async def test_expired_within_the_leeway_is_accepted(gw: RunningGateway) -> None:
    now = int(time.time())
    resp = await _search(gw, gw.issuer.token(iat=now - 600, nbf=now - 600, exp=now - 30))
    assert resp.status_code == 200, resp.text


async def test_iat_two_seconds_in_the_future_is_accepted_but_not_beyond_the_leeway(
    gw: RunningGateway,
) -> None:
    now = int(time.time())
    resp = await _search(gw, gw.issuer.token(iat=now + 2, nbf=now + 2))
    assert resp.status_code == 200, resp.text
    await _assert_refused(gw, gw.issuer.token(iat=now + 120, nbf=now))


async def test_unknown_kid_after_key_rotation_is_accepted_after_exactly_one_refresh(
    gw: RunningGateway,
) -> None:
    issuer = gw.issuer
    new_key = ECKey.generate_key("P-256", parameters={"kid": "ec-rotated", "alg": "ES256", "use": "sig"})
    issuer.published = [new_key]  # the provider rotates: the old keys are gone, a new one is published
    before = issuer.jwks_requests
    resp = await _search(gw, issuer.token(key=new_key, alg="ES256"))
    assert resp.status_code == 200, resp.text
    assert issuer.jwks_requests == before + 1
    resp = await _search(gw, issuer.token(key=new_key, alg="ES256"))  # now cached: no further fetch
    assert resp.status_code == 200
    assert issuer.jwks_requests == before + 1


async def test_concurrent_requests_with_an_unknown_kid_share_one_fetch(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    oidc = [OidcSettings(issuer=issuer.issuer, audience=AUDIENCE, http_timeout_seconds=120)]
    # Eight searches at once by one worker: above the default per-worker limit (4), so raise it.
    async with running_gateway(
        issuer, _audit_url(tmp_path), oidc=oidc, limits={"max_in_flight_per_user": 8}
    ) as gw:
        keys = gw.app.state.gateway.jwks.get(issuer.issuer)
        new_key = ECKey.generate_key("P-256", parameters={"kid": "ec-new", "alg": "ES256"})
        issuer.published.append(new_key)
        issuer.jwks_gate = threading.Event()  # the JWKS endpoint holds its answer until released
        before = issuer.jwks_requests
        tokens = [issuer.token(key=new_key, alg="ES256") for _ in range(8)]
        requests = [asyncio.create_task(_search(gw, token)) for token in tokens]
        try:
            async with asyncio.timeout(60):
                # One request is fetching (held by the issuer); the other seven wait for its result. A
                # condition across a server thread and tasks, polled until true (bounded by the timeout).
                while not (issuer.jwks_requests == before + 1 and keys.waiting == len(tokens) - 1):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
        finally:
            issuer.jwks_gate.set()
        responses = await asyncio.gather(*requests)
    assert [r.status_code for r in responses] == [200] * len(tokens)
    assert issuer.jwks_requests == before + 1


async def test_jwks_down_with_cached_keys_is_accepted(issuer: TestIssuer, tmp_path: Path) -> None:
    # Keys count as due for refresh at once, so the request really tries the (failing) provider.
    oidc = [
        OidcSettings(
            issuer=issuer.issuer,
            audience=AUDIENCE,
            jwks_cache_seconds=0.001,
            jwks_refresh_min_interval_seconds=0,
        )
    ]
    async with running_gateway(issuer, _audit_url(tmp_path), oidc=oidc) as gw:
        issuer.failing = True
        resp = await _search(gw, issuer.token())
        assert resp.status_code == 200, resp.text
        assert gw.app.state.gateway.jwks.loaded  # last good keys kept (for max_cached_key_age_seconds)


async def test_jwks_down_with_no_cached_keys_is_401_not_500(issuer: TestIssuer, tmp_path: Path) -> None:
    issuer.failing = True
    async with running_gateway(issuer, _audit_url(tmp_path)) as gw:
        await _assert_refused(gw, issuer.token())
        assert (await gw.client.get("/readyz")).status_code == 503


async def test_wrong_issuer_is_refused(gw: RunningGateway) -> None:
    # Really signed with the trusted issuer's key, but naming an issuer that is not configured.
    await _assert_refused(gw, gw.issuer.token(iss="https://login.elsewhere.example/realms/familyctx"))


async def test_wrong_audience_is_refused(gw: RunningGateway) -> None:
    await _assert_refused(gw, gw.issuer.token(aud="some-other-api"))


async def test_no_roles_is_403_on_every_endpoint(gw: RunningGateway) -> None:
    for claims in ({"roles": None}, {"roles": []}):
        token = gw.issuer.token(**claims)
        for method, path in (("POST", "/v1/searches"), ("GET", "/v1/sources")):
            resp = await gw.client.request(
                method,
                path,
                json=SEARCH if method == "POST" else None,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert resp.status_code == 403, (claims, path, resp.text)
            assert resp.headers["www-authenticate"] == 'Bearer error="insufficient_scope"'
            assert resp.json()["detail"] == "Your access token carries no role for this service"
    # The refused searches are audited as denied (one record each), like any other refusal of a
    # known caller; the sources listing holds no personal data and is not audited.
    outcomes = [(r["outcome"], r["http_status"]) for r in flat_records(gw.settings.audit_database_url)]
    assert sorted(outcomes) == [("denied", 403), ("denied", 403)]
    await _assert_refused(gw, gw.issuer.token(roles="social_worker"))  # malformed: not a list


# --- token shapes of real providers ------------------------------------------------------------


@pytest.mark.parametrize(
    ("roles_claim", "header_typ"),
    [("realm_access.roles", "JWT"), ("resource_access.familyctx-gateway.roles", None)],
)
async def test_keycloak_shaped_token_is_accepted_when_configured(
    issuer: TestIssuer, tmp_path: Path, roles_claim: str, header_typ: str | None
) -> None:
    oidc = [
        OidcSettings(
            issuer=issuer.issuer, audience=AUDIENCE, token_profile="keycloak", roles_claim=roles_claim
        )
    ]
    async with running_gateway(issuer, _audit_url(tmp_path), oidc=oidc) as gw:
        token = issuer.token(header={"typ": header_typ}, **_keycloak_claims(jti="kc-jti-1"))
        resp = await _search(gw, token)
        assert resp.status_code == 200, resp.text
        # Keycloak's ID and refresh tokens are JWT-typed too; their typ claim gives them away.
        await _assert_refused(gw, issuer.token(header={"typ": "JWT"}, **_keycloak_claims(typ="ID")))
        await _assert_refused(gw, issuer.token(header={"typ": "logout+jwt"}, **_keycloak_claims()))
    (record,) = flat_records(_audit_url(tmp_path))
    row = SimpleNamespace(**record)
    # Keycloak's own roles (offline_access, default-roles-...) are no roles of this service: dropped.
    expected_roles = ["team_manager"] if roles_claim.startswith("resource") else ["social_worker"]
    assert (row.client, row.jti, row.roles) == ("familyctx-cli", "kc-jti-1", expected_roles)


async def test_keycloak_shaped_token_is_refused_by_an_rfc9068_issuer(gw: RunningGateway) -> None:
    # typ JWT where RFC 9068 section 4 requires at+jwt (roles at the default claim, to isolate typ).
    await _assert_refused(
        gw, gw.issuer.token(header={"typ": "JWT"}, **_keycloak_claims(roles=["social_worker"]))
    )
    await _assert_refused(gw, gw.issuer.token(header={"typ": None}))


async def test_rfc9068_at_jwt_with_client_id_is_accepted_and_audited(
    gw: RunningGateway, tmp_path: Path
) -> None:
    token = gw.issuer.token(header={"typ": "application/at+jwt"}, azp=None, client_id="case-tool", jti="at-1")
    resp = await _search(gw, token)
    assert resp.status_code == 200, resp.text
    (record,) = flat_records(_audit_url(tmp_path))
    row = SimpleNamespace(**record)
    assert (row.client, row.jti) == ("case-tool", "at-1")
    await _assert_refused(gw, gw.issuer.token(client_id=None))  # client_id is required (RFC 9068 2.2)
    await _assert_refused(gw, gw.issuer.token(client_id="case-tool", azp="another-client"))


# --- several issuers at once ---------------------------------------------------------------------


async def test_two_issuers_each_accepted_and_cross_signed_tokens_refused(
    issuers: tuple[TestIssuer, TestIssuer], tmp_path: Path
) -> None:
    a, b = issuers
    oidc = [
        OidcSettings(issuer=a.issuer, audience=AUDIENCE),
        OidcSettings(
            issuer=b.issuer,
            audience="leeds-gateway",
            token_profile="keycloak",
            roles_claim="realm_access.roles",
            organisations=["E08000035"],
        ),
    ]
    async with running_gateway(a, _audit_url(tmp_path), oidc=oidc) as gw:
        assert (await _search(gw, a.token())).status_code == 200
        from_b = b.token("tm.leeds", header={"typ": "JWT"}, **_keycloak_claims(aud="leeds-gateway"))
        assert (await _search(gw, from_b)).status_code == 200
        # Same kid ("rsa-1") at both issuers: only issuer A's own key may sign A's tokens.
        await _assert_refused(gw, a.token(key=b.rsa))
        await _assert_refused(
            gw, b.token("tm.leeds", key=a.rsa, header={"typ": "JWT"}, **_keycloak_claims(aud="leeds-gateway"))
        )
        # Each issuer has its own audience, and B may vouch only for Leeds (E08000035).
        await _assert_refused(gw, a.token(aud="leeds-gateway"))
        await _assert_refused(
            gw, b.token("sw.stockport", header={"typ": "JWT"}, **_keycloak_claims(aud="leeds-gateway"))
        )
        assert gw.app.state.gateway.jwks.loaded


async def test_one_providers_outage_affects_only_its_own_tokens(
    issuers: tuple[TestIssuer, TestIssuer], tmp_path: Path
) -> None:
    a, b = issuers
    b.failing = True  # council B's provider is down from the start: its keys never load
    oidc = [
        OidcSettings(issuer=a.issuer, audience=AUDIENCE),
        OidcSettings(issuer=b.issuer, audience=AUDIENCE),
    ]
    async with running_gateway(a, _audit_url(tmp_path), oidc=oidc) as gw:
        assert (await gw.client.get("/readyz")).status_code == 200
        assert (await _search(gw, a.token())).status_code == 200
        await _assert_refused(gw, b.token())
