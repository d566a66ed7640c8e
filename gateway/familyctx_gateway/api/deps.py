"""Request dependencies as ``Annotated`` aliases (the gateway context, the request id, the principal),
and what turns an authorised principal into the requester the councils are told about."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from familyctx.trust.assertion import Requester
from familyctx_gateway.access import Authorisation
from familyctx_gateway.auth import NoRoles, Principal, reject_token

if TYPE_CHECKING:
    from familyctx_gateway.app import GatewayContext

__all__ = ["AnyRolePrincipal", "CurrentPrincipal", "Gateway", "RequestId", "authorise", "requester_for"]

_bearer = HTTPBearer(auto_error=False, description="Access token (JWT) from the council's OIDC provider")


# ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in its thread pool, a hop to a worker
# thread and back (about 0.6 ms each on the benchmark machine, more under load) for a dictionary lookup.
async def get_gateway(request: Request) -> GatewayContext:
    return request.app.state.gateway  # type: ignore[no-any-return]


async def get_request_id(request: Request) -> str:
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


async def get_principal_with_a_role(principal: CurrentPrincipal) -> Principal:
    """The caller, who must hold at least one role here. Raises NoRoles (403) otherwise.

    Endpoints that return personal data check roles inside ``run_audited`` instead, so that the
    refusal is audited.
    """
    if not principal.roles:
        raise NoRoles()
    return principal


AnyRolePrincipal = Annotated[Principal, Depends(get_principal_with_a_role)]


def requester_for(
    principal: Principal,
    authorisation: Authorisation,
    *,
    request_id: str,
    case_reference: str = "",
) -> Requester:
    """The :class:`~familyctx.trust.assertion.Requester` the councils are told about (in the assertion).

    ``role``, ``purpose`` ("" for Describe) and break glass come from ``authorisation``: the one role
    the gateway policy authorised, and, under a break-glass grant, ``break_glass`` with the grant's
    written reason (for the councils' own break-glass rules; never logged).
    """
    grant = authorisation.grant
    return Requester(
        sub=principal.sub,
        name=principal.name,
        organisation=principal.organisation,
        role=authorisation.role,
        client=principal.client,
        purpose=authorisation.purpose,
        case_reference=case_reference,
        break_glass=grant is not None,
        break_glass_reason=grant.reason if grant is not None else "",
        request_id=request_id,
    )


def authorise(
    gateway: GatewayContext, principal: Principal, action: str, *, purpose: str | None = None
) -> Authorisation:
    """The gateway policy's decision on an ``action`` that returns no family data (not audited).

    Raises NoRoles or AccessRefused (403).
    """
    return gateway.access.authorise(principal, action=action, purpose=purpose, break_glass=None)
