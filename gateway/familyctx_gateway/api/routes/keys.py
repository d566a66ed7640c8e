"""``GET /.well-known/jwks.json``: the public keys adapters verify the gateway's requester assertions with.

An RFC 7517 JWK Set holding public key material only: the current signing key and, during a key
rotation, the keys named in ``assertion.additional_jwks_files``. No authentication (public keys), and
cacheable for five minutes, so that an adapter fetching it by ``jwks_url`` picks a new key up soon.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from familyctx_gateway.api.deps import Gateway

router = APIRouter(tags=["keys"])

#: Seconds a JWK Set may be cached (Cache-Control max-age).
JWKS_MAX_AGE_SECONDS = 300


@router.get(
    "/.well-known/jwks.json",
    responses={200: {"description": "JWK Set (RFC 7517) of the assertion signing keys, public parts only"}},
)
async def assertion_jwks(gateway: Gateway) -> JSONResponse:
    """The gateway's public assertion keys (ES256, each with a ``kid``) as an RFC 7517 JWK Set."""
    return JSONResponse(
        gateway.assertion_jwks,
        media_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE_SECONDS}"},
    )
