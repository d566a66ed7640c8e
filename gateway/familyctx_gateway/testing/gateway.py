"""Run the real gateway app (lifespan included) against fake councils and a test issuer, in-process.

HTTP goes through ``httpx.AsyncClient`` with an ASGI transport into the real FastAPI app; its adapters
are real gRPC servers on loopback and its keys come from a real HTTP JWKS endpoint.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from familyctx_gateway.app import create_app
from familyctx_gateway.settings import AdapterTarget, GatewaySettings, OidcSettings
from familyctx_gateway.testing.fake_council import (
    FakeAdapterService,
    start_broken_council,
    start_council,
    start_sleeping_council,
    unreachable_address,
)
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer
from familyctx_gateway.testing.scenario import councils

__all__ = ["RunningGateway", "running_gateway"]


@dataclass
class RunningGateway:
    app: FastAPI
    client: httpx.AsyncClient
    settings: GatewaySettings
    issuer: TestIssuer
    servicers: dict[str, FakeAdapterService] = field(default_factory=dict)

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
    **settings: Any,
) -> AsyncIterator[RunningGateway]:
    """The three scenario councils, optionally a sleeping one (Bolton E08000001) and an unreachable one
    (Bury E08000002), a broken one (Wigan E08000010), behind a gateway whose lifespan is running.

    ``oidc``: the trusted issuers (default: ``issuer`` alone)."""
    async with AsyncExitStack() as stack:
        targets, servicers = [], {}
        for code, data in councils().items():
            address, servicer = await stack.enter_async_context(start_council(data))
            servicers[code] = servicer
            targets.append(
                AdapterTarget(gss_code=code, name=data.name, address=address, deadline_ms=deadline_ms)
            )
        if sleeping:
            address = await stack.enter_async_context(start_sleeping_council())
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
            address = await stack.enter_async_context(start_broken_council())
            targets.append(
                AdapterTarget(gss_code="E08000010", name="Wigan", address=address, deadline_ms=deadline_ms)
            )
        gateway_settings = GatewaySettings(
            audit_database_url=audit_database_url,
            oidc=oidc or [OidcSettings(issuer=issuer.issuer, audience=AUDIENCE)],
            adapters=targets,
            **settings,
        )
        app = create_app(gateway_settings)
        await stack.enter_async_context(app.router.lifespan_context(app))
        client = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway.test")
        )
        yield RunningGateway(app, client, gateway_settings, issuer, servicers)
