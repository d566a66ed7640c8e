"""Run the real gateway app (lifespan included) against fake councils and a test issuer, in-process.

HTTP goes through ``httpx.AsyncClient`` with an ASGI transport into the real FastAPI app; its adapters
are real gRPC servers on loopback reached over mutual TLS (a development PKI per test process, see
:mod:`familyctx_gateway.testing.pki`), each verifying the gateway's signed assertions; its keys come
from a real HTTP JWKS endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from familyctx.trust.pki import DevPki
from familyctx_gateway.app import create_app
from familyctx_gateway.settings import (
    AdapterTarget,
    AdapterTlsSettings,
    AssertionSettings,
    GatewaySettings,
    OidcSettings,
)
from familyctx_gateway.testing.fake_council import (
    CouncilTrust,
    FakeAdapterService,
    start_broken_council,
    start_council,
    start_sleeping_council,
    unreachable_address,
)
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer
from familyctx_gateway.testing.pki import ASSERTION_ISSUER, session_pki
from familyctx_gateway.testing.scenario import councils

__all__ = ["RunningGateway", "gateway_trust_settings", "running_gateway"]


def gateway_trust_settings(pki: DevPki) -> dict[str, Any]:
    """``assertion`` and ``adapter_tls`` settings of a gateway whose identity is ``pki``'s."""
    return {
        "assertion": AssertionSettings(issuer=ASSERTION_ISSUER, signing_key_file=pki.assertion_key),
        "adapter_tls": AdapterTlsSettings(
            ca_file=pki.ca_cert, cert_file=pki.gateway_cert, key_file=pki.gateway_key
        ),
    }


@dataclass
class RunningGateway:
    app: FastAPI
    client: httpx.AsyncClient
    settings: GatewaySettings
    issuer: TestIssuer
    servicers: dict[str, FakeAdapterService] = field(default_factory=dict)
    #: The federation's development PKI (CA, certificates, assertion keys).
    pki: DevPki | None = None

    def auth(self, user: str = "sw.stockport", **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.issuer.token(user, **claims)}"}


@asynccontextmanager
async def running_gateway(
    issuer: TestIssuer,
    audit_database_url: str,
    *,
    sleeping: bool = False,
    unreachable: bool = False,
    broken: bool = False,
    deadline_ms: int = 3000,
    slow_deadline_ms: int = 400,
    oidc: list[OidcSettings] | None = None,
    pki: DevPki | None = None,
    extra_targets: list[AdapterTarget] | None = None,
    **settings: Any,
) -> AsyncIterator[RunningGateway]:
    """The three scenario councils, optionally a sleeping one (Bolton E08000001) and an unreachable one
    (Bury E08000002), a broken one (Wigan E08000010), behind a gateway whose lifespan is running.

    ``oidc``: the trusted issuers (default: ``issuer`` alone). ``pki``: the federation's PKI (default:
    :func:`~familyctx_gateway.testing.pki.session_pki`): councils serve its adapter certificates and
    verify its assertion keys; the gateway uses its client certificate and signing key.
    ``extra_targets``: more adapters to configure (e.g. councils a test started itself). ``settings``
    override any other gateway setting (``assertion``, ``adapter_tls`` included)."""
    pki = pki or session_pki()
    trust = CouncilTrust(pki, ASSERTION_ISSUER)
    async with AsyncExitStack() as stack:
        targets, servicers = [], {}
        for code, data in councils().items():
            address, servicer = await stack.enter_async_context(start_council(data, trust))
            servicers[code] = servicer
            targets.append(
                AdapterTarget(gss_code=code, name=data.name, address=address, deadline_ms=deadline_ms)
            )
        if sleeping:
            address = await stack.enter_async_context(start_sleeping_council("E08000001", trust))
            targets.append(
                AdapterTarget(
                    gss_code="E08000001", name="Bolton", address=address, deadline_ms=slow_deadline_ms
                )
            )
        if unreachable:
            address = stack.enter_context(unreachable_address())
            targets.append(
                AdapterTarget(gss_code="E08000002", name="Bury", address=address, deadline_ms=deadline_ms)
            )
        if broken:
            address = await stack.enter_async_context(start_broken_council("E08000010", trust))
            targets.append(
                AdapterTarget(gss_code="E08000010", name="Wigan", address=address, deadline_ms=deadline_ms)
            )
        targets.extend(extra_targets or [])
        # Tests start on a fresh database: the schema is migrated at start-up whatever the database.
        audit = settings.pop("audit", {"database_url": audit_database_url})
        if isinstance(audit, dict):
            audit = {"auto_migrate": True, **audit}
        settings["audit"] = audit
        gateway_settings = GatewaySettings(
            audit_database_url=audit_database_url,
            oidc=oidc or [OidcSettings(issuer=issuer.issuer, audience=AUDIENCE)],
            adapters=targets,
            **{**gateway_trust_settings(pki), **settings},
        )
        app = create_app(gateway_settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test")
        )
        yield RunningGateway(app, client, gateway_settings, issuer, servicers, pki)
