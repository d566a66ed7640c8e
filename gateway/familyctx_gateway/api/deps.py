"""Request dependencies as ``Annotated`` aliases: the gateway context, the request id, the principal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from familyctx_gateway.auth import Principal, reject_token

if TYPE_CHECKING:
    from familyctx_gateway.app import GatewayContext

__all__ = ["CurrentPrincipal", "Gateway", "RequestId"]

_bearer = HTTPBearer(auto_error=False, description="Access token (JWT) from the council's OIDC provider")


def get_gateway(request: Request) -> GatewayContext:
    return request.app.state.gateway  # type: ignore[no-any-return]


def get_request_id(request: Request) -> str:
    return str(request.state.request_id)


Gateway = Annotated["GatewayContext", Depends(get_gateway)]
RequestId = Annotated[str, Depends(get_request_id)]


async def get_principal(
    gateway: Gateway,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The validated caller (RFC 6750 bearer token). Raises InvalidToken (401) when absent or invalid."""
    if credentials is None or not credentials.credentials:
        reject_token("no_bearer_token")
    return await gateway.tokens.validate(credentials.credentials)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
