"""The composition root: :func:`create_app` builds the FastAPI application from :class:`GatewaySettings`.

Nothing connects at import. :func:`create_app` reads the trust material the settings name (the
gateway's mTLS client identity and the assertion signing key) and the record-linkage model
(``linkage.model_path``, else the packaged one); a missing or unusable file raises
:class:`~familyctx_gateway.errors.GatewayConfigError` there, before anything serves. At startup
(lifespan) the app opens the council registry (:mod:`familyctx_gateway.registry`: the ``registry_file``,
watched for changes, or the inline ``adapters``) with one mutual-TLS gRPC channel per adapter (connected
on first use), starts the health watch of every adapter (:mod:`familyctx_gateway.health`), brings the
audit schema to
the current Alembic revision (``audit.auto_migrate``) or refuses to start when it is not there, starts
the audit log's group-commit writer and tree-head signing, and tries once to load every trusted
issuer's JWKS; at shutdown it stops the watches and closes them (queued audit records are committed, a
last tree head signed).
Searches and family-context requests each hold an in-flight slot (``limits``, see
:mod:`familyctx_gateway.limits`); past a limit they are answered 429 with ``Retry-After``. Graceful
shutdown (SIGTERM: ``/readyz`` answers 503 at once, new requests are refused with 503, requests in
progress finish within ``listen.shutdown_grace_seconds``, then the lifespan closes channels and the
audit store) is :mod:`familyctx_gateway.stopping` and the server's part: ``familyctx gateway serve``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Depends, FastAPI

from familyctx.linkage import Linker
from familyctx.trust.assertion import AssertionSigner
from familyctx_gateway.access import AccessPolicy
from familyctx_gateway.adapter_client import (
    AdapterTransport,
    Federation,
    TransportFactory,
    grpc_transport_factory,
)
from familyctx_gateway.adapter_trust import ClientTls, load_signer, published_jwks
from familyctx_gateway.api.routes import audit as ig_audit
from familyctx_gateway.api.routes import break_glass, family_context, health, keys, searches, sources
from familyctx_gateway.api.schemas import ErrorResponse
from familyctx_gateway.audit import AuditStore, load_tree_head_signer
from familyctx_gateway.auth import TokenValidator, TrustedIssuers
from familyctx_gateway.break_glass import BreakGlassStore
from familyctx_gateway.break_glass_use import BreakGlassUses
from familyctx_gateway.errors import GatewayConfigError, install_error_handlers
from familyctx_gateway.health import HealthWatch
from familyctx_gateway.limits import InFlightLimits, family_context_slot, search_slot
from familyctx_gateway.linkage import load_linker
from familyctx_gateway.observability import RequestContextMiddleware, configure_logging, setup_tracing
from familyctx_gateway.registry import CouncilRegistry
from familyctx_gateway.settings import AdapterTarget, GatewaySettings
from familyctx_gateway.stopping import StoppingAnswers, mark_stopping, shutdown_state

__all__ = ["GatewayContext", "StoppingAnswers", "create_app", "mark_stopping"]


@dataclass
class GatewayContext:
    """What request handlers need, built once per process in the lifespan (see api/deps.py).

    ``councils``: the council registry; :attr:`federation` is its current snapshot, which a request
    reads once, when it starts, and keeps."""

    settings: GatewaySettings
    councils: CouncilRegistry
    audit: AuditStore
    jwks: TrustedIssuers
    tokens: TokenValidator
    #: Signs each adapter call's requester assertion (None only when no adapter is configured).
    signer: AssertionSigner | None = None
    #: The public JWK Set served at ``/.well-known/jwks.json`` (the signer's key and rotation keys).
    assertion_jwks: dict[str, Any] = field(default_factory=lambda: {"keys": []})
    #: The gateway access policy (roles x purposes; familyctx_gateway/access.py).
    access: AccessPolicy = field(default_factory=AccessPolicy.load)
    #: Record linkage: the model and thresholds of ``settings.linkage``, loaded once per process.
    linker: Linker = field(default_factory=Linker)
    #: Data requests in progress, per worker and in total (``settings.limits``).
    limits: InFlightLimits = field(init=False)
    #: Break-glass grants and notifications, kept on the audit database.
    grants: BreakGlassStore = field(init=False)
    #: Notifies each council the first time it is asked for data under a grant.
    grant_uses: BreakGlassUses = field(init=False)

    def __post_init__(self) -> None:
        self.limits = InFlightLimits.from_settings(self.settings.limits)
        self.grants = BreakGlassStore(self.audit.engine, self.audit)
        self.grant_uses = BreakGlassUses(self.grants)

    @property
    def federation(self) -> Federation:
        """The councils' adapters now (a snapshot: councils added or removed later are not in it)."""
        return self.councils.federation


def _mutual_tls_transports(settings: GatewaySettings) -> TransportFactory:
    """Mutual-TLS channels with ``adapter_tls``; without it, any adapter is a configuration error."""
    if settings.adapter_tls is not None:
        return grpc_transport_factory(ClientTls.load(settings.adapter_tls))

    def refuse(target: AdapterTarget) -> AdapterTransport:
        raise GatewayConfigError("gateway settings", ["adapter_tls: is required to call adapters"])

    return refuse


def create_app(
    settings: GatewaySettings,
    *,
    transport_factory: TransportFactory | None = None,
    oidc_http: httpx.AsyncClient | None = None,
) -> FastAPI:
    """Build the gateway application.

    ``transport_factory`` replaces the gRPC transport per adapter (default: a mutual-TLS ``grpc.aio``
    channel with ``settings.adapter_tls``); ``oidc_http`` replaces the HTTP client used for OIDC
    discovery and JWKS (default: a new httpx client). Raises
    :class:`~familyctx_gateway.errors.GatewayConfigError` when a file named by ``adapter_tls`` or
    ``assertion`` cannot be read or used, the council registry (``registry_file``) is missing or
    invalid, the access policy (``access_policy_file``) is invalid, or the linkage model
    (``linkage.model_path``) cannot be loaded.
    """
    configure_logging(settings.log_level)
    access = AccessPolicy.load(settings.access_policy_file)  # a broken policy stops the gateway here
    linker = load_linker(settings.linkage)  # so does a broken linkage model
    signer = load_signer(settings.assertion) if settings.assertion is not None else None
    audit_signer = load_tree_head_signer(settings.audit)  # an unusable key stops the gateway here
    assertion_jwks = published_jwks(settings, signer)
    factory = transport_factory or _mutual_tls_transports(settings)
    CouncilRegistry.check(settings)  # so does a missing or invalid registry file

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        http = oidc_http or httpx.AsyncClient()  # each issuer sets its own timeout per request
        audit = AuditStore(settings.audit, signer=audit_signer)
        try:
            await asyncio.to_thread(audit.prepare)  # SchemaNotCurrent: run `familyctx gateway migrate`
            councils = CouncilRegistry.open(settings, factory, signer=signer)  # channels connect on first use
        except BaseException:
            audit.dispose()
            raise
        await audit.start()
        watch = HealthWatch(
            poll_seconds=settings.health_poll_seconds, describe_cache_seconds=settings.describe_cache_seconds
        )
        councils.on_change = lambda federation: watch.sync(list(federation.clients.values()))
        watch.sync(list(councils.federation.clients.values()))
        await councils.start()
        jwks = TrustedIssuers(settings.oidc, http=http)
        await jwks.refresh(force=True)  # best effort: an issuer may start after the gateway
        app.state.gateway = GatewayContext(
            settings,
            councils,
            audit,
            jwks,
            TokenValidator(jwks),
            signer,
            assertion_jwks,
            access=access,
            linker=linker,
        )
        try:
            yield
        finally:
            await watch.stop()
            await councils.close()
            await audit.close()  # commits what is queued, signs a last tree head
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
    # Inside the request context (request id, access log line): while the server stops, a new request
    # and one cut short by the end of the grace period are answered 503 there (familyctx_gateway/
    # stopping.py), never a bare 500; it also counts the requests in progress the server drains.
    app.add_middleware(
        StoppingAnswers, state=shutdown_state(app), retry_after_seconds=settings.limits.retry_after_seconds
    )
    app.add_middleware(RequestContextMiddleware, max_body_bytes=settings.max_body_bytes)
    app.include_router(health.router)
    app.include_router(keys.router)
    # Only the two data routes are limited (limits.py); health, JWKS, sources and the IG API are not.
    limited: dict[int | str, dict[str, Any]] = {429: {"model": ErrorResponse}}
    app.include_router(searches.router, prefix="/v1", dependencies=[Depends(search_slot)], responses=limited)
    app.include_router(
        family_context.router, prefix="/v1", dependencies=[Depends(family_context_slot)], responses=limited
    )
    app.include_router(sources.router, prefix="/v1")
    app.include_router(break_glass.router, prefix="/v1")
    app.include_router(ig_audit.router, prefix="/v1")  # the IG API, /v1/audit (IG officers)
    setup_tracing(app)
    return app
