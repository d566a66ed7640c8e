"""Key cache ages and issuer settings, with a controlled monotonic clock (no sleeps), a real JWKS
endpoint on 127.0.0.1 port 0 and really signed tokens; settings in both YAML shapes."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from familyctx_gateway.auth import TokenValidator
from familyctx_gateway.errors import GatewayConfigError, InvalidToken
from familyctx_gateway.jwks import TrustedIssuers
from familyctx_gateway.settings import OidcSettings, load_settings
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer, running_issuer
from joserfc.jwk import RSAKey


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _trusted(issuer: TestIssuer, http: httpx.AsyncClient, clock: Clock, **settings: float) -> TrustedIssuers:
    oidc = OidcSettings(
        issuer=issuer.issuer,
        audience=AUDIENCE,
        jwks_cache_seconds=300,
        max_cached_key_age_seconds=3600,
        jwks_refresh_min_interval_seconds=30,
        **settings,
    )
    return TrustedIssuers([oidc], http=http, clock=clock)


async def test_last_good_keys_serve_until_max_age_then_tokens_are_refused(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    clock = Clock()
    trusted = _trusted(issuer, http, clock)
    validator = TokenValidator(trusted)
    assert await trusted.refresh(force=True)
    issuer.failing = True
    clock.now += 1800  # due for refresh; the fetch fails; the keys are 30 minutes old: still used
    assert (await validator.validate(issuer.token())).sub == "user-sw.stockport"
    clock.now += 1801  # older than max_cached_key_age_seconds
    with pytest.raises(InvalidToken):
        await validator.validate(issuer.token())
    assert not trusted.loaded
    issuer.failing = False
    clock.now += 1  # with no usable keys, a request may fetch again after one second
    assert (await validator.validate(issuer.token())).sub == "user-sw.stockport"
    assert trusted.loaded


async def test_keys_are_refetched_when_older_than_the_cache_time(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    clock = Clock()
    trusted = _trusted(issuer, http, clock)
    validator = TokenValidator(trusted)
    await trusted.refresh(force=True)
    token = issuer.token()
    issuer.published.remove(issuer.rsa)  # e.g. a compromised key withdrawn by the provider
    await validator.validate(token)  # within jwks_cache_seconds: cached keys, no fetch
    before = issuer.jwks_requests
    clock.now += 301
    with pytest.raises(InvalidToken):
        await validator.validate(token)
    assert issuer.jwks_requests == before + 1


async def test_unknown_kid_fetches_are_rate_limited_per_issuer(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    clock = Clock()
    trusted = _trusted(issuer, http, clock)
    validator = TokenValidator(trusted)
    await trusted.refresh(force=True)
    before = issuer.jwks_requests
    for n in range(5):
        with pytest.raises(InvalidToken):
            await validator.validate(issuer.token(key=RSAKey.generate_key(2048, parameters={"kid": f"r{n}"})))
    assert issuer.jwks_requests == before + 1
    clock.now += 30
    with pytest.raises(InvalidToken):
        await validator.validate(issuer.token(key=RSAKey.generate_key(2048, parameters={"kid": "r9"})))
    assert issuer.jwks_requests == before + 2


async def test_configured_jwks_uri_is_used_without_discovery(
    issuer: TestIssuer, http: httpx.AsyncClient
) -> None:
    oidc = OidcSettings(
        issuer="https://login.example/realms/x", audience=AUDIENCE, jwks_uri=f"{issuer.issuer}/jwks"
    )
    trusted = TrustedIssuers([oidc], http=http)
    assert await trusted.refresh(force=True)
    principal = await TokenValidator(trusted).validate(issuer.token(iss="https://login.example/realms/x"))
    assert principal.issuer == "https://login.example/realms/x"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_hostile_unverified_parts_are_401_not_500(issuer: TestIssuer, http: httpx.AsyncClient) -> None:
    validator = TokenValidator(_trusted(issuer, http, Clock()))
    header = _b64(json.dumps({"alg": "RS256", "kid": "rsa-1", "typ": "at+jwt"}).encode())
    for token in (
        f"{header}.{_b64(b'[' * 5000 + b']' * 5000)}.AA",  # payload nested too deep to parse
        f"{_b64(b'[' * 5000 + b']' * 5000)}.{_b64(b'{}')}.AA",
        f"{header}.{_b64(b'[1]')}.AA",  # payload not an object
        f"{header}.{_b64(json.dumps({'iss': 5}).encode())}.AA",
        "\u00e9.\u00e9.\u00e9",
        issuer.token() + "A" * 17000,  # over the size limit
    ):
        with pytest.raises(InvalidToken):
            await validator.validate(token)


# --- settings: one issuer or a list ----------------------------------------------------------------


def test_single_issuer_mapping_and_list_both_load(tmp_path: Path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text('oidc: {issuer: "http://127.0.0.1:9000", audience: familyctx-gateway}\n')
    assert [o.issuer for o in load_settings(one).oidc] == ["http://127.0.0.1:9000"]
    many = tmp_path / "many.yaml"
    many.write_text(
        "oidc:\n"
        '  - {issuer: "https://a.example", audience: gw}\n'
        '  - {issuer: "https://kc.example/realms/leeds", audience: gw, token_profile: keycloak,\n'
        "     roles_claim: resource_access.familyctx-gateway.roles, organisations: [E08000035],\n"
        "     max_cached_key_age_seconds: 600, jwks_cache_seconds: 60}\n"
    )
    settings = load_settings(many)
    assert [(o.issuer, o.token_profile) for o in settings.oidc] == [
        ("https://a.example", "rfc9068"),
        ("https://kc.example/realms/leeds", "keycloak"),
    ]
    assert settings.oidc[1].organisations == ["E08000035"]


@pytest.mark.parametrize(
    ("oidc", "problem"),
    [
        (
            "{issuer: a, audience: b, algorithms: [HS256]}",
            "oidc.algorithms: only asymmetric algorithms are allowed, got ['HS256']",
        ),
        (
            "[{issuer: a, audience: b}, {issuer: c, audience: d, algorithms: [none]}]",
            "oidc[1].algorithms: only asymmetric algorithms are allowed, got ['none']",
        ),
        ("[{issuer: a, audience: b}, {issuer: a, audience: d}]", "oidc: each issuer may be configured once"),
        ("[]", "oidc: List should have at least 1 item after validation, not 0"),
        (
            "{issuer: a, audience: b, token_profile: id_token}",
            "oidc.token_profile: Input should be 'rfc9068' or 'keycloak'",
        ),
        (
            "{issuer: a, audience: b, roles_claim: 'realm_access..roles'}",
            "oidc.roles_claim: must be a claim name or a dotted path such as realm_access.roles",
        ),
        (
            "{issuer: a, audience: b, jwks_cache_seconds: 7200}",
            "oidc: jwks_cache_seconds must not exceed max_cached_key_age_seconds",
        ),
    ],
)
def test_bad_issuer_settings_say_which_field(tmp_path: Path, oidc: str, problem: str) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text(f"oidc: {oidc}\n")
    with pytest.raises(GatewayConfigError) as err:
        load_settings(config)
    assert err.value.problems == [problem]


def test_nested_env_override_cannot_silently_replace_a_list_of_issuers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("oidc: [{issuer: a, audience: b}, {issuer: c, audience: d}]\n")
    monkeypatch.setenv("FAMILYCTX_GATEWAY_OIDC__AUDIENCE", "x")
    with pytest.raises(GatewayConfigError) as err:
        load_settings(config)
    assert "FAMILYCTX_GATEWAY_OIDC to the whole list as JSON" in err.value.problems[0]
