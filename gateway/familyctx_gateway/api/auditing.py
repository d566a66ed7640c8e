"""Run a personal-data request so that exactly one audit record is committed before any answer.

Order: the break-glass grant, when one is sent, is checked (same worker, case and purpose, not
expired); the gateway access policy decides (:mod:`familyctx_gateway.access`); a refusal is audited
``denied`` and answered 403 with a message the worker can act on. Then the work runs for the
:class:`~familyctx.trust.assertion.Requester` built from the authorisation (the one role used, break
glass and its reason), and its audit record (role, break-glass flag and grant id) is committed; if the
write fails the caller gets 503 and no data. Failures of the work are audited too (outcome ``error``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from familyctx.trust.assertion import Requester
from familyctx_gateway.access import Authorisation
from familyctx_gateway.api.deps import requester_for
from familyctx_gateway.audit import AuditEvent, AuditOutcome, AuditWriteFailed
from familyctx_gateway.auth import Principal
from familyctx_gateway.errors import AuditUnavailable, Forbidden, GatewayError
from familyctx_gateway.search import Outcome

if TYPE_CHECKING:
    from familyctx_gateway.app import GatewayContext

__all__ = ["run_audited"]


async def run_audited(
    *,
    gateway: GatewayContext,
    principal: Principal,
    request_id: str,
    endpoint: str,
    action: str,
    purpose: str,
    case_reference: str,
    break_glass_id: str | None,
    query_terms: dict[str, Any],
    work: Callable[[Requester], Awaitable[Outcome]],
) -> Any:
    """Return ``work(requester)``'s response after its audit record is committed.

    ``action``: the gateway policy action (``search``, ``family_context``); ``break_glass_id``: the
    grant id sent with the request, or None. Raises Forbidden (403: NoRoles, AccessRefused or
    BreakGlassRefused; audited ``denied``), the work's GatewayError, or AuditUnavailable (503) when the
    audit record cannot be committed, whatever the work produced.
    """
    authorised: Authorisation | None = None

    def event(outcome: AuditOutcome, status: int, result: Outcome | None = None) -> AuditEvent:
        return AuditEvent(
            request_id=request_id,
            user_sub=principal.sub,
            user_name=principal.name,
            organisation=principal.organisation,
            roles=list(principal.roles),
            client=principal.client,
            jti=principal.jti,
            endpoint=endpoint,
            outcome=outcome,
            http_status=status,
            purpose=purpose,
            case_reference=case_reference,
            query_terms=query_terms,
            subjects_returned=result.subjects if result else [],
            councils=result.councils if result else {},
            role=authorised.role if authorised else None,
            break_glass=bool(authorised and authorised.break_glass),
            break_glass_id=break_glass_id,
        )

    async def commit(record: AuditEvent) -> None:
        try:
            await gateway.audit.record(record)
        except AuditWriteFailed:
            raise AuditUnavailable() from None

    try:
        grant = None
        if break_glass_id is not None and principal.roles:
            grant = await gateway.grants.grant_for_use(
                break_glass_id, principal=principal, purpose=purpose, case_reference=case_reference
            )
        authorised = gateway.access.authorise(principal, action=action, purpose=purpose, break_glass=grant)
    except Forbidden as refused:
        await commit(event(AuditOutcome.denied, refused.status))
        raise
    except GatewayError as exc:  # the grant could not be read (503)
        await commit(event(AuditOutcome.error, exc.status))
        raise
    requester = requester_for(principal, authorised, request_id=request_id, case_reference=case_reference)
    try:
        result = await work(requester)
    except GatewayError as exc:
        await commit(event(AuditOutcome.error, exc.status))
        raise
    except Exception:
        await commit(event(AuditOutcome.error, 500))
        raise
    await commit(event(AuditOutcome.partial if result.partial else AuditOutcome.success, 200, result))
    return result.response
