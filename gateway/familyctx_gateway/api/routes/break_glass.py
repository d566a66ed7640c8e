"""Break glass: ``POST /v1/break-glass`` (open a grant), ``GET /v1/break-glass/{id}`` (the worker's own
grant) and ``GET /v1/break-glass/notifications`` (IG officers: their council's notifications).

Opening is decided by the gateway policy (action ``open_break_glass``), limited to
``break_glass.max_grants_per_day`` grants per worker in any 24 hours (429 with ``Retry-After``), and
audited: a refusal as ``denied``; a grant together with its notification of the worker's own council
and its audit record in one transaction (503 and no grant when that cannot be committed). The councils
asked for data under the grant are notified as they are asked (:mod:`familyctx_gateway.break_glass`).
Docs: docs/access-control.md, "Break glass".
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.exceptions import RequestValidationError

from familyctx_gateway.api.deps import AnyRolePrincipal, CurrentPrincipal, Gateway, RequestId, authorise
from familyctx_gateway.api.ig_auditing import begin_ig_request
from familyctx_gateway.api.json_body import StrictJsonRoute
from familyctx_gateway.api.schemas import (
    DEFAULT_BREAK_GLASS_MINUTES,
    BreakGlassGrantResponse,
    BreakGlassNotificationResponse,
    BreakGlassNotificationsResponse,
    BreakGlassRequest,
    BreakGlassWorker,
    ErrorResponse,
    Purpose,
)
from familyctx_gateway.api.schemas.requests import IsoDateTime
from familyctx_gateway.audit import AuditEvent, AuditOutcome, AuditWriteFailed, RecordClass
from familyctx_gateway.break_glass import BreakGlassGrant, new_grant
from familyctx_gateway.errors import AuditUnavailable, Forbidden, GatewayError

router = APIRouter(tags=["break glass"], route_class=StrictJsonRoute)  # JSON bodies: api/json_body.py
log = logging.getLogger("familyctx_gateway.api.break_glass")

ENDPOINT = "POST /v1/break-glass"
_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class BreakGlassNotFound(GatewayError):
    """404: no grant of this worker has that id (another worker's grant is not revealed)."""

    status = 404
    detail = "You have no break-glass grant with that id"


#: Largest ``after`` accepted: ids are SQL BIGINT at most (a larger number is a 422, not a 500).
_MAX_ID = 2**63 - 1
#: The window of ``break_glass.max_grants_per_day``.
_DAY = dt.timedelta(hours=24)


class BreakGlassLimitReached(GatewayError):
    """429: the worker opened ``break_glass.max_grants_per_day`` grants in the last 24 hours.
    ``retry_after``: seconds until the oldest of them leaves the window (RFC 9110 ``Retry-After``)."""

    status = 429

    def __init__(self, limit: int, retry_after: int) -> None:
        hours, minutes = divmod(math.ceil(retry_after / 60), 60)
        when = f"{hours} h {minutes} min" if hours else f"{minutes} min"
        super().__init__(
            f"You have opened {limit} break-glass grants in the last 24 hours, the most this gateway allows "
            f"(break_glass.max_grants_per_day); you can open another in {when}. If you still need access "
            "now, ask your team manager or your council's IG officer"
        )
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def _errors(*codes: int) -> dict[int | str, dict[str, object]]:
    return {code: {"model": ErrorResponse} for code in codes}


def _view(grant: BreakGlassGrant, councils: list[str]) -> BreakGlassGrantResponse:
    return BreakGlassGrantResponse(
        break_glass_id=grant.id,
        purpose=Purpose(grant.purpose),
        case_reference=grant.case_reference,
        reason=grant.reason,
        opened_at=grant.opened_at,
        expires_at=grant.expires_at,
        active=not grant.expired(),
        councils_notified=councils,
    )


@router.post(
    "/break-glass",
    status_code=201,
    response_model=BreakGlassGrantResponse,
    responses=_errors(401, 403, 413, 422, 429, 503),
)
async def open_break_glass(
    body: BreakGlassRequest, gateway: Gateway, principal: CurrentPrincipal, request_id: RequestId
) -> BreakGlassGrantResponse:
    """Open a time-boxed break-glass grant for one purpose and case reference, with a written reason.

    Send the returned ``break_glass_id`` with searches and family-context requests for that case and
    purpose until ``expires_at``: they may then go past the gateway policy's purpose restrictions, and
    are flagged break glass in the audit and to every council asked. The IG officers of your own council
    are notified now, and those of each council asked for data under the grant when it is first asked
    (``GET /v1/break-glass/notifications``). At most ``break_glass.max_grants_per_day`` grants per
    worker in any 24 hours (429 with ``Retry-After`` beyond that).
    """
    settings = gateway.settings.break_glass
    max_minutes = settings.max_minutes
    minutes = body.minutes if body.minutes is not None else min(DEFAULT_BREAK_GLASS_MINUTES, max_minutes)
    if minutes > max_minutes:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "minutes"),
                    "msg": "too long",
                    "ctx": {
                        "error": f"must be a whole number from 1 to {max_minutes} (this gateway's "
                        "break_glass.max_minutes)"
                    },
                }
            ]
        )

    def event(outcome: AuditOutcome, status: int, role: str | None, grant_id: str | None) -> AuditEvent:
        # A break_glass record; when the grant is opened it also carries the grant (reason, times,
        # councils notified: see BreakGlassStore.open), whose rows are index rows of that record.
        return AuditEvent(
            record_class=RecordClass.break_glass,
            issuer=principal.issuer,
            request_id=request_id,
            user_sub=principal.sub,
            user_name=principal.name,
            organisation=principal.organisation,
            roles=list(principal.roles),
            client=principal.client,
            jti=principal.jti,
            endpoint=ENDPOINT,
            outcome=outcome,
            http_status=status,
            purpose=body.purpose.value,
            case_reference=body.case_reference,
            query_terms={"minutes": minutes},
            role=role,
            break_glass=grant_id is not None,
            break_glass_id=grant_id,
        )

    try:
        authorisation = authorise(gateway, principal, "open_break_glass", purpose=body.purpose.value)
    except Forbidden as refused:
        try:
            await gateway.audit.record(event(AuditOutcome.denied, refused.status, None, None))
        except AuditWriteFailed:
            raise AuditUnavailable() from None
        raise
    now = dt.datetime.now(dt.UTC)
    opened = await gateway.grants.opened_since(principal, now - _DAY)
    limit = settings.max_grants_per_day
    if len(opened) >= limit:
        # Another may be opened once enough of these are over 24 hours old to bring the count below it.
        retry_after = max(1, math.ceil((opened[len(opened) - limit] + _DAY - now).total_seconds()))
        log.info(
            "break glass limit reached request_id=%s opened_24h=%d limit=%d", request_id, len(opened), limit
        )
        try:
            await gateway.audit.record(event(AuditOutcome.denied, 429, authorisation.role, None))
        except AuditWriteFailed:
            raise AuditUnavailable() from None
        raise BreakGlassLimitReached(limit, retry_after)
    grant = new_grant(
        principal,
        role=authorisation.role,
        purpose=body.purpose.value,
        case_reference=body.case_reference,
        reason=body.reason,
        minutes=minutes,
        request_id=request_id,
        now=now,
    )
    # The worker's own council is told now; each other council when it is first asked for data under
    # the grant (and only then does it receive the reason, in that request's assertion).
    councils = [principal.organisation]
    try:
        await gateway.grants.open(
            grant,
            councils=councils,
            audit_event=event(AuditOutcome.success, 201, authorisation.role, grant.id),
        )
    except AuditWriteFailed:
        raise AuditUnavailable() from None
    return _view(grant, councils)


@router.get(
    "/break-glass/notifications",
    response_model=BreakGlassNotificationsResponse,
    responses=_errors(401, 403, 422, 503),
)
async def list_notifications(
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
    since: Annotated[
        IsoDateTime | None,
        Query(
            description="Only grants opened at or after this ISO 8601 date-time, e.g. 2026-05-01T09:00:00Z "
            "(UTC when no offset is given; a bare number is refused)"
        ),
    ] = None,
    after: Annotated[
        int | None,
        Query(
            ge=0, le=_MAX_ID, description="Only notifications after this id (the previous page's next_after)"
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many notifications (1-200)")] = 50,
) -> BreakGlassNotificationsResponse:
    """Break-glass notifications for the caller's own council (IG officers), oldest first.

    A council is notified when one of its workers opens a grant (``notified_because: opened``) and when
    it is first asked for data under any grant (``used``, with ``first_used_at``). Each says who opened
    the grant (worker, council), for which purpose and case reference, why (their written reason), and
    when it opened and expires. Page with ``after`` = the last ``next_after``. Reading them is an IG
    read: recorded (class ``ig_access``) before the answer, which is 503 when that record cannot be
    committed.
    """
    # An IG read (workers' written reasons): authorised, then read, then its ig_access record committed
    # before the answer (503 and nothing returned when it cannot be); a refusal is audited too.
    ig = await begin_ig_request(
        gateway,
        principal,
        request_id,
        "GET /v1/break-glass/notifications",
        query_terms={"since": since, "after": after, "limit": limit},
        action="list_break_glass_notifications",
    )
    rows = await gateway.grants.notifications(ig.council, since=since, after=after, limit=limit + 1)
    page = rows[:limit]
    await ig.record(count=len(page))
    log.info(
        "break glass notifications listed request_id=%s council=%s count=%d",
        request_id,
        principal.organisation,
        len(page),
    )
    return BreakGlassNotificationsResponse(
        notifications=[
            BreakGlassNotificationResponse(
                id=n.id,
                council_gss_code=n.council_gss_code,
                break_glass_id=n.grant_id,
                notified_because="used" if n.notified_because == "used" else "opened",
                first_used_at=n.first_used_at,
                worker=BreakGlassWorker(
                    sub=n.worker_sub, name=n.worker_name, organisation=n.worker_organisation
                ),
                purpose=Purpose(n.purpose),
                case_reference=n.case_reference,
                reason=n.reason,
                opened_at=n.opened_at,
                expires_at=n.expires_at,
            )
            for n in page
        ],
        next_after=page[-1].id if len(rows) > limit else None,
    )


@router.get(
    "/break-glass/{break_glass_id}",
    response_model=BreakGlassGrantResponse,
    responses=_errors(401, 403, 404, 422),
)
async def get_break_glass(
    break_glass_id: Annotated[str, Path(pattern=_UUID, description="The grant's id (POST /v1/break-glass)")],
    gateway: Gateway,
    principal: AnyRolePrincipal,
) -> BreakGlassGrantResponse:
    """One of your own break-glass grants: purpose, case reference, reason, times, and whether it is
    still ``active``. Another worker's grant is answered 404, as if it did not exist."""
    grant = await gateway.grants.get(break_glass_id)
    if grant is None or (grant.user_sub, grant.issuer) != (principal.sub, principal.issuer):
        raise BreakGlassNotFound()
    return _view(grant, await gateway.grants.notified_councils(grant.id))
