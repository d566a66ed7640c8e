"""(c) Bad tokens against the live gateway: 401, a WWW-Authenticate challenge, and no personal data."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import pytest
from e2e_support import Gateway, personal_data
from familyctx_oidc.keys import SIGNING_KEY_FILE
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from familyctx.demo import Federation


def _provider_key(federation: Federation) -> RSAKey:
    """The live provider's own private signing key, read from its state directory (0600)."""
    return RSAKey.import_key(json.loads((federation.layout.oidc_state_dir / SIGNING_KEY_FILE).read_text()))


def _claims(federation: Federation, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": federation.issuer, "aud": "familyctx-gateway", "sub": "sw.stockport", "iat": now, "nbf": now,
        "exp": now + 600, "jti": uuid.uuid4().hex, "azp": "familyctx-cli", "client_id": "familyctx-cli",
        "scope": "familyctx", "name": "Sam Walker", "preferred_username": "sw.stockport",
        "roles": ["social_worker"], "organisation": "E08000007", "organisation_name": "Stockport",
    }
    claims.update(overrides)
    return claims


def _sign(key: RSAKey, claims: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode({"alg": "RS256", "typ": "at+jwt", "kid": kid or key.kid}, claims, key)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(federation: Federation) -> dict[str, str | None]:
    key = _provider_key(federation)
    stranger = RSAKey.generate_key(2048, parameters={"alg": "RS256", "use": "sig"}, auto_kid=True)
    now = int(time.time())
    claims = _claims(federation)
    return {
        "no token": None,
        "not a jwt": "not-a-token",
        "expired": _sign(key, _claims(federation, iat=now - 7200, nbf=now - 7200, exp=now - 3600)),
        "not yet valid": _sign(key, _claims(federation, nbf=now + 3600, exp=now + 7200)),
        "unknown key": _sign(stranger, claims),
        "unknown key reusing the provider's kid": _sign(stranger, claims, kid=key.kid),
        "alg none": f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': key.kid})}.{_b64(claims)}.",
        "HS256 keyed with the public key": jwt.encode(
            {"alg": "HS256", "kid": key.kid}, claims,
            OctKey.import_key(json.dumps(key.as_dict(private=False)).encode()), algorithms=["HS256"],
        ),
        "wrong audience": _sign(key, _claims(federation, aud="some-other-api")),
        "wrong issuer": _sign(key, _claims(federation, iss="http://127.0.0.1:1")),
        "tampered payload": _tamper(_sign(key, claims)),
    }


def _tamper(token: str) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims["roles"] = ["administrator"]
    return f"{header}.{_b64(claims)}.{signature}"


CASES = ["no token", "not a jwt", "expired", "not yet valid", "unknown key",
         "unknown key reusing the provider's kid", "alg none", "HS256 keyed with the public key",
         "wrong audience", "wrong issuer", "tampered payload"]


@pytest.mark.parametrize("case", CASES)
def test_bad_token_is_401_without_personal_data(
    case: str, federation: Federation, gateway: Gateway, scenario: dict[str, Any]
) -> None:
    token = _bad_tokens(federation)[case]
    response = gateway.family_context(scenario["child"], token=token)
    assert response.status_code == 401, f"{case}: {response.status_code} {response.text[:200]}"
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.text
    for value in personal_data(scenario):
        assert value not in body, f"{case}: personal data in the 401 body"
    assert set(response.json()) <= {"detail", "errors", "request_id"}


def test_bad_token_on_search_is_401(
    federation: Federation, gateway: Gateway, scenario: dict[str, Any]
) -> None:
    child = scenario["child"]
    response = gateway.post(
        "/v1/searches",
        {"purpose": "s47_enquiry", "case_reference": "C-1", "family_name": child["family_name"]},
        token=_bad_tokens(federation)["expired"],
    )
    assert response.status_code == 401
    assert child["family_name"] not in response.text


def test_a_token_minted_like_the_provider_does_is_accepted(
    federation: Federation, gateway: Gateway, scenario: dict[str, Any]
) -> None:
    """Control for the cases above: the same construction with valid claims passes."""
    token = _sign(_provider_key(federation), _claims(federation))
    response = gateway.family_context(scenario["child"], token=token)
    assert response.status_code == 200
