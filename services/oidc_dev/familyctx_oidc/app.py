"""ASGI application of the development OIDC provider (Starlette).

Endpoints: ``/.well-known/openid-configuration`` (OpenID Connect Discovery 1.0 section 3; the same
document at ``/.well-known/oauth-authorization-server``, RFC 8414), ``/jwks.json`` (RFC 7517 JWK Set),
``POST /token`` (RFC 6749 section 3.2), ``/healthz``. There is no authorization endpoint (no
browser flow), so ``authorization_endpoint`` is omitted as RFC 8414 section 2 allows when no
supported grant type uses it.
"""

from __future__ import annotations

import logging
from typing import Any

from authlib.oauth2.rfc6749.errors import InvalidRequestError, OAuth2Error
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from familyctx_oidc.authorization import DevAuthorizationServer, FormRequest, parse_form_body
from familyctx_oidc.directory import DEFAULT_SCOPE, demo_clients
from familyctx_oidc.keys import SIGNING_ALGORITHM, load_or_create_signing_key, public_jwks
from familyctx_oidc.settings import OidcSettings

logger = logging.getLogger("familyctx_oidc")

#: Claims carried by access tokens (interfaces.md), advertised in the discovery document.
CLAIMS_SUPPORTED = [
    "iss", "aud", "sub", "exp", "iat", "nbf", "jti", "azp", "client_id", "scope", "name",
    "preferred_username", "roles", "organisation", "organisation_name",
]  # fmt: skip


def discovery_document(issuer: str) -> dict[str, Any]:
    """Provider metadata (OpenID Connect Discovery 1.0 section 3 / RFC 8414 section 2) for ``issuer``."""
    return {
        "issuer": issuer,
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks.json",
        "grant_types_supported": ["password", "client_credentials"],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "scopes_supported": [DEFAULT_SCOPE],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [SIGNING_ALGORITHM],
        "claims_supported": CLAIMS_SUPPORTED,
        "service_documentation": "docs/demo.md (development provider: never use in production)",
    }


def create_app(settings: OidcSettings) -> Starlette:
    """Build the provider for ``settings``: loads or creates the signing key in ``settings.state_dir``.

    Raises :class:`familyctx_oidc.SigningKeyError` when the stored key is unusable.
    """
    issuer = settings.effective_issuer()
    key = load_or_create_signing_key(settings.state_dir)
    server = DevAuthorizationServer(
        clients=demo_clients(settings.service_client_secret),
        issuer=issuer,
        audience=settings.audience,
        key=key,
        lifetime_seconds=settings.access_token_lifetime_seconds,
    )
    metadata = discovery_document(issuer)
    jwks = public_jwks(key)

    async def openid_configuration(request: Request) -> Response:
        return JSONResponse(metadata, headers={"Cache-Control": "public, max-age=300"})

    async def jwks_document(request: Request) -> Response:
        return JSONResponse(jwks, headers={"Cache-Control": "public, max-age=300"})

    async def token(request: Request) -> Response:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        try:
            if content_type != "application/x-www-form-urlencoded":
                raise InvalidRequestError("Send the token request as application/x-www-form-urlencoded.")
            form = parse_form_body(await request.body())
            oauth_request = FormRequest(request.method, str(request.url), request.headers, form)
        except OAuth2Error as error:
            return server.handle_error_response(None, error)  # type: ignore[no-any-return]
        response = server.create_token_response(oauth_request)
        # Log the outcome without credentials or the token itself.
        logger.info(
            "token request grant_type=%s client_id=%s status=%s",
            form.get("grant_type", "-")[:40],
            form.get("client_id", "-")[:40],
            response.status_code,
        )
        return response  # type: ignore[no-any-return]

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route("/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
            Route("/.well-known/oauth-authorization-server", openid_configuration, methods=["GET"]),
            Route("/jwks.json", jwks_document, methods=["GET"]),
            Route("/token", token, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.state.settings = settings
    app.state.signing_kid = key.kid
    return app
