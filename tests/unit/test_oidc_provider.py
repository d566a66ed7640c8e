"""The development OIDC provider, in process over ASGI: real RSA signing, real RFC 6749 errors."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from familyctx_oidc import NonLoopbackBindError, OidcSettings, SigningKeyError, create_app
from familyctx_oidc.keys import SIGNING_KEY_FILE
from joserfc import jwt
from joserfc.jwk import KeySet

ISSUER = "http://127.0.0.1:9000"
CLI = "familyctx-cli"
SERVICE = ("familyctx-service", "familyctx-service-dev-secret")
PW = {"grant_type": "password", "username": "sw.stockport", "password": "demo"}


@pytest.fixture
def settings(tmp_path: Path) -> OidcSettings:
    return OidcSettings(host="127.0.0.1", port=9000, state_dir=tmp_path / "oidc")


@pytest.fixture
async def client(settings: OidcSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        yield http


async def _password_token(client: httpx.AsyncClient, username: str, password: str = "demo") -> httpx.Response:
    return await client.post(
        "/token",
        data={"grant_type": "password", "username": username, "password": password, "client_id": CLI},
    )


async def _keys(client: httpx.AsyncClient) -> KeySet:
    return KeySet.import_key_set((await client.get("/jwks.json")).json())


async def test_discovery_document_points_at_this_issuer(client: httpx.AsyncClient) -> None:
    response = await client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == ISSUER
    assert doc["jwks_uri"] == f"{ISSUER}/jwks.json"
    assert doc["token_endpoint"] == f"{ISSUER}/token"
    assert set(doc["grant_types_supported"]) == {"password", "client_credentials"}
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["subject_types_supported"] == ["public"]
    assert (await client.get("/.well-known/oauth-authorization-server")).json() == doc


async def test_jwks_publishes_one_public_rsa_signing_key(client: httpx.AsyncClient) -> None:
    body = (await client.get("/jwks.json")).json()
    assert len(body["keys"]) == 1
    key = body["keys"][0]
    assert key["kty"] == "RSA" and key["use"] == "sig" and key["alg"] == "RS256" and key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys()
    assert len(KeySet.import_key_set(body).keys[0].raw_value.public_numbers().n.to_bytes(256, "big")) == 256


@pytest.mark.parametrize(
    ("username", "roles", "organisation", "name"),
    [
        ("sw.stockport", ["social_worker"], "E08000007", "Sam Walker"),
        ("tm.leeds", ["team_manager"], "E08000035", "Taylor Moss"),
        ("ig.stockport", ["ig_officer"], "E08000007", "Indra Gill"),
        ("ig.leeds", ["ig_officer"], "E08000035", "Lee Ng"),
        ("admin.stockport", ["administrator"], "E08000007", "Alex Price"),
    ],
)
async def test_password_grant_issues_rfc9068_access_token(
    client: httpx.AsyncClient, username: str, roles: list[str], organisation: str, name: str
) -> None:
    response = await _password_token(client, username)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert "refresh_token" not in body or body["refresh_token"]

    token = jwt.decode(body["access_token"], await _keys(client), algorithms=["RS256"])
    assert token.header["typ"] == "at+jwt"
    assert token.header["alg"] == "RS256"
    assert token.header["kid"] == (await client.get("/jwks.json")).json()["keys"][0]["kid"]
    claims = token.claims
    assert claims["iss"] == ISSUER
    assert claims["aud"] == "familyctx-gateway"
    assert claims["sub"] == username
    assert claims["preferred_username"] == username
    assert claims["azp"] == claims["client_id"] == "familyctx-cli"
    assert claims["roles"] == roles
    assert claims["organisation"] == organisation
    assert claims["name"] == name
    assert claims["organisation_name"] in {"Stockport", "Leeds"}
    assert claims["exp"] - claims["iat"] == 900
    assert claims["iat"] <= claims["nbf"] <= claims["iat"] + 1
    assert len(claims["jti"]) >= 16
    jwt.JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER}, aud={"essential": True, "value": "familyctx-gateway"}
    ).validate(claims)


async def test_each_token_has_its_own_jti(client: httpx.AsyncClient) -> None:
    keys = await _keys(client)
    jtis = {
        jwt.decode((await _password_token(client, "sw.stockport")).json()["access_token"], keys).claims["jti"]
        for _ in range(3)
    }
    assert len(jtis) == 3


@pytest.mark.parametrize(("username", "password"), [("sw.stockport", "wrong"), ("nobody", "demo")])
async def test_bad_user_credentials_are_invalid_grant(
    client: httpx.AsyncClient, username: str, password: str
) -> None:
    response = await _password_token(client, username, password)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "access_token" not in response.json()


async def test_client_credentials_for_service_client(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token", data={"grant_type": "client_credentials"}, auth=SERVICE
    )
    assert response.status_code == 200
    claims = jwt.decode(response.json()["access_token"], await _keys(client)).claims
    assert claims["sub"] == "familyctx-service"
    assert claims["azp"] == "familyctx-service"
    assert claims["roles"] == ["service_client"]
    assert claims["aud"] == "familyctx-gateway"
    assert "organisation" not in claims


async def test_client_credentials_with_secret_in_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/token",
        data={"grant_type": "client_credentials", "client_id": "familyctx-service",
              "client_secret": "familyctx-service-dev-secret"},
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("data", "auth", "status", "error"),
    [
        ({"grant_type": "client_credentials"}, ("familyctx-service", "wrong"), 401, "invalid_client"),
        ({"grant_type": "client_credentials", "client_id": CLI}, None, 400, "unauthorized_client"),
        (PW, None, 400, "invalid_client"),
        ({**PW, "client_id": "who"}, None, 400, "invalid_client"),
        ({"grant_type": "authorization_code", "code": "x", "client_id": "familyctx-cli"}, None, 400,
         "unsupported_grant_type"),
        ({"client_id": "familyctx-cli"}, None, 400, "unsupported_grant_type"),
        ({"grant_type": "password", "client_id": CLI, "password": "demo"}, None, 400, "invalid_request"),
        ({**PW, "client_id": CLI, "scope": "admin"}, None, 400, "invalid_scope"),
    ],
)
async def test_token_endpoint_errors_follow_rfc6749_5_2(
    client: httpx.AsyncClient, data: dict[str, str], auth: tuple[str, str] | None, status: int, error: str
) -> None:
    response = await client.post("/token", data=data, auth=auth)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


@pytest.mark.parametrize(
    ("data", "auth"),
    [
        ({**PW, "client_id": "familyctx-service"}, None),  # no secret: still the grant type is the fault
        (PW, SERVICE),  # HTTP Basic with the right secret
        ({**PW, "client_id": SERVICE[0], "client_secret": SERVICE[1]}, None),  # secret in the body
    ],
)
async def test_service_client_asking_for_password_grant_is_unauthorized_client(
    client: httpx.AsyncClient, data: dict[str, str], auth: tuple[str, str] | None
) -> None:
    """RFC 6749 section 5.2: a registered client not allowed this grant type gets unauthorized_client."""
    response = await client.post("/token", data=data, auth=auth)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "unauthorized_client"
    description = body["error_description"]
    assert "familyctx-service" in description and "client_credentials" in description
    assert "access_token" not in body


async def test_repeated_parameters_and_wrong_content_type_are_invalid_request(
    client: httpx.AsyncClient,
) -> None:
    repeated = await client.post(
        "/token",
        content=b"grant_type=password&grant_type=client_credentials&client_id=familyctx-cli",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert repeated.status_code == 400 and repeated.json()["error"] == "invalid_request"
    as_json = await client.post("/token", json={"grant_type": "password"})
    assert as_json.status_code == 400 and as_json.json()["error"] == "invalid_request"


async def test_signing_key_survives_restart_with_owner_only_permissions(settings: OidcSettings) -> None:
    first = create_app(settings)
    second = create_app(settings)
    assert first.state.signing_kid == second.state.signing_kid
    mode = stat.S_IMODE((settings.state_dir / SIGNING_KEY_FILE).stat().st_mode)
    assert mode == 0o600


def test_group_readable_signing_key_is_refused(settings: OidcSettings) -> None:
    create_app(settings)
    os.chmod(settings.state_dir / SIGNING_KEY_FILE, 0o644)
    with pytest.raises(SigningKeyError, match="chmod 600"):
        create_app(settings)


def test_corrupt_signing_key_is_refused(settings: OidcSettings) -> None:
    settings.state_dir.mkdir(parents=True)
    path = settings.state_dir / SIGNING_KEY_FILE
    path.write_text("not json")
    os.chmod(path, 0o600)
    with pytest.raises(SigningKeyError, match="delete it"):
        create_app(settings)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "example.org", "::"])
def test_non_loopback_address_is_refused_without_the_flag(host: str, tmp_path: Path) -> None:
    with pytest.raises(NonLoopbackBindError, match="loopback"):
        OidcSettings(host=host, state_dir=tmp_path).check_bind_address()
    OidcSettings(host=host, state_dir=tmp_path, allow_non_loopback=True).check_bind_address()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "::1", "localhost"])
def test_loopback_addresses_are_allowed(host: str, tmp_path: Path) -> None:
    OidcSettings(host=host, state_dir=tmp_path).check_bind_address()


def test_issuer_defaults_to_listen_address_and_drops_trailing_slash(tmp_path: Path) -> None:
    assert OidcSettings(port=9123, state_dir=tmp_path).effective_issuer() == "http://127.0.0.1:9123"
    assert OidcSettings(issuer="http://idp.test:1/", state_dir=tmp_path).effective_issuer() == "http://idp.test:1"
