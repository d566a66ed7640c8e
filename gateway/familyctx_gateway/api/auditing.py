"""Run a personal-data request so that exactly one audit record is committed before any answer.

Order: the break-glass grant, when one is sent, is checked (same worker, case and purpose, not
expired); the gateway access policy decides (:mod:`familyctx_gateway.access`); a refusal is audited
``denied`` and answered 403 with a message the worker can act on. Then the work runs for the
:class:`~familyctx.trust.assertion.Requester` built from the authorisation (the one role used, break
glass and its reason; under a grant, each council is notified before it is first asked, see
:mod:`familyctx_gateway.break_glass_use`, and the response says ``break_glass``). Its response is
serialised once, to the exact bytes the worker will receive,
and hashed (SHA-256); the audit record (who, whose: subjects searched for and returned, why, what:
query, records, involvements and the response hash, outcome per council, request and trace id) is
committed, and only then is a :class:`~fastapi.Response` with exactly those bytes returned. If the
write fails the caller gets 503 and no data. Failures of the work are audited too (outcome ``error``).
A request cut off before its work ends (the shutdown grace period ran out, or the client went away) is
audited ``error`` 503 with what is known of each council then (:meth:`SourceTracker.cut_off
<familyctx_gateway.sources.SourceTracker.cut_off>`): a failure already seen, ``timed_out`` "cut off"
for a council asked for data, ``unknown`` for one not asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import Response

from familyctx.trust.assertion import Requester
from familyctx_gateway.access import Authorisation
from familyctx_gateway.adapter_client import before_data_call, logged_calls
from familyctx_gateway.api.deps import requester_for
from familyctx_gateway.api.schemas import BreakGlassInUse
from familyctx_gateway.audit import AuditEvent, AuditOutcome, AuditWriteFailed, CouncilOutcome
from familyctx_gateway.audit_content import Shown, current_trace_id, searched_for, shown
from familyctx_gateway.auth import Principal
from familyctx_gateway.errors import AuditUnavailable, Forbidden, GatewayError
from familyctx_gateway.search import Outcome
from familyctx_gateway.sources import RequestSources

if TYPE_CHECKING:
    from familyctx_gateway.app import GatewayContext

__all__ = ["CUT_OFF_DETAIL", "run_audited"]

#: The audit record's detail for a council asked for data by a request that was then cut off.
CUT_OFF_DETAIL = (
    "cut off: asked for data, but the request was cancelled before its answer was used (the gateway was "
    "stopping, or the client went away)"
)


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
) -> Response:
    """Return ``work(requester)``'s response, as JSON bytes, after its audit record is committed.

    ``action``: the gateway policy action (``search``, ``family_context``); ``break_glass_id``: the
    grant id sent with the request, or None. Raises Forbidden (403: NoRoles, AccessRefused or
    BreakGlassRefused; audited ``denied``), the work's GatewayError, or AuditUnavailable (503) when the
    audit record cannot be committed, whatever the work produced.
    """
    authorised: Authorisation | None = None
    asked = searched_for(query_terms)
    trace_id = current_trace_id()

    def event(
        outcome: AuditOutcome,
        status: int,
        result: Outcome | None = None,
        body: bytes | None = None,
        cut_off: list[CouncilOutcome] | None = None,
    ) -> AuditEvent:
        seen = shown(result.response) if result is not None else Shown()
        councils = (
            seen.councils
            or [CouncilOutcome(code, state) for code, state in (result.councils if result else {}).items()]
            or cut_off
            or []
        )
        grant = authorised.grant if authorised is not None else None
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
            issuer=principal.issuer,
            query_terms=query_terms,
            subjects=asked + seen.subjects,
            councils=councils,
            involvements=seen.involvements,
            role=authorised.role if authorised else None,
            break_glass=bool(authorised and authorised.break_glass),
            break_glass_id=break_glass_id,
            break_glass_reason=grant.reason if grant is not None else None,
            response_sha256=hashlib.sha256(body).hexdigest() if body is not None else None,
            response_bytes=len(body) if body is not None else None,
            trace_id=trace_id,
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
    used = authorised.grant
    notify = (
        gateway.grant_uses.hook(
            used, principal, role=authorised.role, request_id=request_id, endpoint=endpoint
        )
        if used is not None
        else None
    )
    asked_for_data: set[str] = set()  # councils a data call was sent to (for a request cut off)

    async def before_asking(gss_code: str) -> None:
        if notify is not None:
            await notify(gss_code)
        asked_for_data.add(gss_code)

    sources = RequestSources()
    # Each council asked under a grant is notified first; every council asked for data is noted.
    hooked = before_data_call.set(before_asking)
    try:
        with logged_calls(request_id):  # one log line for all the request's adapter calls
            with sources.watch():
                result = await work(requester)
    except GatewayError as exc:
        await commit(event(AuditOutcome.error, exc.status))
        raise
    except asyncio.CancelledError:
        # Cut off (the shutdown grace period ran out, or the connection went): nothing was answered,
        # but the councils may have been asked. Record it (503, as the client is told) with what is
        # known of each council, shielded from the cancellation, then let the cancellation go on.
        known = sources.tracker.cut_off(asked_for_data, CUT_OFF_DETAIL) if sources.tracker else []
        cut_off = [CouncilOutcome(code, state, detail) for code, state, detail in known]
        with contextlib.suppress(AuditUnavailable):
            await asyncio.shield(commit(event(AuditOutcome.error, 503, cut_off=cut_off)))
        raise
    except Exception:
        await commit(event(AuditOutcome.error, 500))
        raise
    finally:
        before_data_call.reset(hooked)
    if used is not None:  # the answer says it was given under break glass, and until when
        result.response.break_glass = BreakGlassInUse(id=used.id, expires_at=used.expires_at)
    # Serialised once: these bytes are hashed into the record and are exactly what the worker receives
    # (the same serialisation FastAPI's response_model would apply).
    body = result.response.model_dump_json(by_alias=True).encode()
    outcome = AuditOutcome.partial if result.partial else AuditOutcome.success
    await commit(event(outcome, 200, result, body))
    return Response(content=body, media_type="application/json")
