"""Run a personal-data request so that exactly one audit record is committed before any answer.

Role check (denied -> 403), the work itself, then the audit write; if the write fails the caller
gets 503 and no data. Failures of the work are audited too (outcome ``error``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from familyctx_gateway.audit import AuditEvent, AuditOutcome, AuditStore, AuditWriteFailed
from familyctx_gateway.auth import NoRoles, Principal
from familyctx_gateway.errors import AuditUnavailable, Forbidden, GatewayError
from familyctx_gateway.search import Outcome

__all__ = ["WORKER_ROLES", "run_audited"]

#: Roles that may search and see a family context (ig_officer audits; it does not search).
WORKER_ROLES = ("social_worker", "team_manager")


async def run_audited(
    *,
    audit: AuditStore,
    principal: Principal,
    request_id: str,
    endpoint: str,
    purpose: str,
    case_reference: str,
    query_terms: dict[str, Any],
    work: Callable[[], Awaitable[Outcome]],
) -> Any:
    """Return ``work()``'s response after its audit record is committed.

    Raises Forbidden (403), the work's GatewayError, or AuditUnavailable (503) when the audit record
    cannot be committed, whatever the work produced.
    """

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
        )

    async def commit(record: AuditEvent) -> None:
        try:
            await audit.record(record)
        except AuditWriteFailed:
            raise AuditUnavailable() from None

    if not principal.has_any_role(*WORKER_ROLES):
        await commit(event(AuditOutcome.denied, Forbidden.status))
        raise NoRoles() if not principal.roles else Forbidden()
    try:
        result = await work()
    except GatewayError as exc:
        await commit(event(AuditOutcome.error, exc.status))
        raise
    except Exception:
        await commit(event(AuditOutcome.error, 500))
        raise
    await commit(event(AuditOutcome.partial if result.partial else AuditOutcome.success, 200, result))
    return result.response
