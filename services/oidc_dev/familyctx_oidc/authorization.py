"""The token endpoint: Authlib's RFC 6749 AuthorizationServer, bridged to Starlette.

Grants: resource-owner password (RFC 6749 section 4.3) for the public ``familyctx-cli`` client and
client credentials (section 4.4) for ``familyctx-service``. Access tokens are RFC 9068 JWTs (header
``typ: at+jwt``, RS256, ``kid``) made by Authlib's :class:`JWTBearerTokenGenerator`, with the claims
of interfaces.md. Errors are RFC 6749 section 5.2 JSON bodies (``invalid_request``,
``invalid_client``, ``invalid_grant``, ``unsupported_grant_type``, ``unauthorized_client``).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from authlib.oauth2.rfc6749 import (
    AuthorizationServer,
    JsonRequest,
    OAuth2Payload,
    OAuth2Request,
    grants,
)
from authlib.oauth2.rfc6749.errors import InvalidGrantError, InvalidRequestError, UnauthorizedClientError
from authlib.oauth2.rfc6749.util import extract_basic_authorization
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from joserfc.jwk import KeySet, RSAKey
from starlette.responses import JSONResponse

from familyctx_oidc.directory import DEFAULT_SCOPE, DEMO_PASSWORD, DEMO_USERS, DemoClient, DemoUser

__all__ = ["DevAuthorizationServer", "FormRequest", "parse_form_body"]


def parse_form_body(body: bytes) -> dict[str, str]:
    """Parse an ``application/x-www-form-urlencoded`` body (RFC 6749 appendix B).

    Raises :class:`InvalidRequestError` when it is not UTF-8 or a parameter is repeated (section 3.2).
    """
    try:
        parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError as exc:
        raise InvalidRequestError("The request body must be UTF-8 form-encoded.") from exc
    repeated = sorted(name for name, values in parsed.items() if len(values) > 1)
    if repeated:
        raise InvalidRequestError(f"Parameters must not be repeated: {', '.join(repeated)}.")
    return {name: values[0] for name, values in parsed.items()}


class _FormPayload(OAuth2Payload):  # type: ignore[misc]
    def __init__(self, form: dict[str, str]) -> None:
        self._form = form

    @property
    def data(self) -> dict[str, str]:
        return self._form

    @property
    def datalist(self) -> dict[str, list[str]]:
        return {name: [value] for name, value in self._form.items()}


class FormRequest(OAuth2Request):  # type: ignore[misc]
    """An already-read token request: method, URL, headers (case-insensitive mapping, as Authlib reads
    ``Authorization`` by its canonical name) and the parsed form body."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], form: dict[str, str]) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self.payload = _FormPayload(form)
        self._form = form

    @property
    def args(self) -> dict[str, str]:
        return {}

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _GrantTypeFirst:
    """Refuse a registered client that may not use this grant with ``unauthorized_client`` (RFC 6749
    section 5.2) before authenticating it, instead of Authlib's ``invalid_client`` for an auth method
    the grant does not list. Unknown clients and bad secrets still get ``invalid_client``."""

    GRANT_TYPE: str
    request: OAuth2Request
    server: DevAuthorizationServer

    def authenticate_token_endpoint_client(self) -> DemoClient:
        basic_id, _ = extract_basic_authorization(self.request.headers)
        client_id = basic_id or self.request.form.get("client_id")
        client = self.server.query_client(client_id) if client_id else None
        if client is not None and not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(
                f"The client {client.client_id!r} may not use the {self.GRANT_TYPE!r} grant "
                f"(allowed: {', '.join(client.grant_types)})."
            )
        result: DemoClient = super().authenticate_token_endpoint_client()  # type: ignore[misc]
        return result


class _PasswordGrant(_GrantTypeFirst, grants.ResourceOwnerPasswordCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["none"]

    def authenticate_user(self, username: str, password: str) -> DemoUser:
        user = DEMO_USERS.get(username)
        if user is None or password != DEMO_PASSWORD:
            # RFC 6749 section 5.2: invalid resource owner credentials are invalid_grant.
            raise InvalidGrantError("Unknown demo user or wrong password (development password: 'demo').")
        return user


class _ClientCredentialsGrant(_GrantTypeFirst, grants.ClientCredentialsGrant):  # type: ignore[misc]
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]


class _AccessTokenGenerator(JWTBearerTokenGenerator):  # type: ignore[misc]
    """RFC 9068 access tokens carrying the claims the gateway reads (interfaces.md)."""

    def __init__(self, *, issuer: str, audience: str, key: RSAKey, lifetime_seconds: int) -> None:
        super().__init__(issuer=issuer, alg="RS256", expires_generator=lifetime_seconds)
        self._audience = audience
        self._keys = KeySet([key])

    def get_jwks(self) -> KeySet:
        return self._keys

    def get_audiences(self, client: DemoClient, user: DemoUser | None, scope: str | None) -> str:
        return self._audience

    def get_extra_claims(
        self, client: DemoClient, grant_type: str, user: DemoUser | None, scope: str | None
    ) -> dict[str, Any]:
        claims: dict[str, Any] = {"azp": client.get_client_id(), "nbf": int(time.time())}
        if user is None:
            claims.update(
                name=client.get_client_id(),
                preferred_username=client.get_client_id(),
                roles=list(client.roles),
            )
        else:
            claims.update(
                name=user.name,
                preferred_username=user.username,
                roles=list(user.roles),
                organisation=user.organisation,
                organisation_name=user.organisation_name,
            )
        return claims


class DevAuthorizationServer(AuthorizationServer):  # type: ignore[misc]
    """Authlib authorization server for the demo clients; only the token endpoint is offered.

    ``clients``: registrations by client id. The only scope is ``familyctx`` (others: ``invalid_scope``).
    Tokens are not stored (self-contained JWTs).
    """

    def __init__(
        self,
        *,
        clients: dict[str, DemoClient],
        issuer: str,
        audience: str,
        key: RSAKey,
        lifetime_seconds: int,
    ) -> None:
        super().__init__(scopes_supported=[DEFAULT_SCOPE])
        self._clients = clients
        self.register_grant(_PasswordGrant)
        self.register_grant(_ClientCredentialsGrant)
        self.register_token_generator(
            "default",
            _AccessTokenGenerator(
                issuer=issuer, audience=audience, key=key, lifetime_seconds=lifetime_seconds
            ),
        )

    def query_client(self, client_id: str) -> DemoClient | None:
        return self._clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        return None

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    def create_oauth2_request(self, request: FormRequest) -> FormRequest:
        return request

    def create_json_request(self, request: JsonRequest) -> JsonRequest:
        return request

    def handle_response(self, status: int, body: Any, headers: Any) -> JSONResponse:
        extra = dict(headers or [])
        extra.pop("Content-Type", None)
        # RFC 6749 section 5.1: token responses must not be cached.
        extra.setdefault("Cache-Control", "no-store")
        extra.setdefault("Pragma", "no-cache")
        return JSONResponse(body, status_code=status, headers=extra)
