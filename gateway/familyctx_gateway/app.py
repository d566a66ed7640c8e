"""The composition root: :func:`create_app` builds the FastAPI application from :class:`GatewaySettings`.

Nothing connects at import. At startup (lifespan) the app opens one gRPC channel per configured
adapter, creates the audit schema, and tries once to load every trusted issuer's JWKS; at shutdown it
closes them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from familyctx_gateway.adapter_client import Federation, TransportFactory
from familyctx_gateway.api.routes import family_context, health, searches, sources
from familyctx_gateway.audit import AuditStore
from familyctx_gateway.auth import TokenValidator, TrustedIssuers
from familyctx_gateway.errors import install_error_handlers
from familyctx_gateway.observability import RequestContextMiddleware, configure_logging, setup_tracing
from familyctx_gateway.settings import GatewaySettings

__all__ = ["GatewayContext", "create_app"]


@dataclass
class GatewayContext:
    """What request handlers need, built once per process in the lifespan (see api/deps.py)."""

    settings: GatewaySettings
    federation: Federation
    audit: AuditStore
    jwks: TrustedIssuers
    tokens: TokenValidator


def create_app(
    settings: GatewaySettings,
    *,
    transport_factory: TransportFactory | None = None,
    oidc_http: httpx.AsyncClient | None = None,
) -> FastAPI:
    """Build the gateway application.

    ``transport_factory`` replaces the gRPC transport per adapter (default: a ``grpc.aio`` channel);
    ``oidc_http`` replaces the HTTP client used for OIDC discovery and JWKS (default: a new httpx client).
    """
    configure_logging(settings.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = oidc_http or httpx.AsyncClient()  # each issuer sets its own timeout per request
        audit = AuditStore(settings.audit_database_url)
        audit.create_schema()
        federation = Federation.open(settings.adapters, transport_factory)
        jwks = TrustedIssuers(settings.oidc, http=http)
        await jwks.refresh(force=True)  # best effort: an issuer may start after the gateway
        app.state.gateway = GatewayContext(settings, federation, audit, jwks, TokenValidator(jwks))
        try:
            yield
        finally:
            await federation.close()
            audit.dispose()
            if oidc_http is None:
                await http.aclose()

    app = FastAPI(
        title="Family Context gateway",
        version="0.1.0",
        description="Live family context across councils: search, link and merge, with every access audited.",
        lifespan=lifespan,
    )
    install_error_handlers(app, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(searches.router, prefix="/v1")
    app.include_router(family_context.router, prefix="/v1")
    app.include_router(sources.router, prefix="/v1")
    setup_tracing(app)
    return app
