"""``GET /healthz`` (live: the process answers) and ``GET /readyz`` (ready: audit store and token keys).

Readiness never depends on a council: one council down must not take the gateway out of service.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from familyctx_gateway.api.deps import Gateway

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "not ready"}})
async def readyz(gateway: Gateway) -> JSONResponse:
    audit_ok = await gateway.audit.ready()
    keys_ok = gateway.jwks.loaded or await gateway.jwks.refresh()
    ready = audit_ok and keys_ok
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "checks": {
                "audit_store": "ok" if audit_ok else "failing",
                "jwks": "ok" if keys_ok else "not loaded",
            },
        },
        status_code=200 if ready else 503,
    )
