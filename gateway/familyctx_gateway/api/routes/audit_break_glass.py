"""The break-glass review queue of the IG API: ``GET /v1/audit/break-glass?status=unreviewed|reviewed``
and ``POST /v1/audit/break-glass/{break_glass_id}/review`` (IG officers; included by
:mod:`familyctx_gateway.api.routes.audit` under ``/v1/audit``).

Each council reviews, for itself, every grant it was notified of: its own worker opened it, or it was
asked for data under it (:mod:`familyctx_gateway.audit_reviews`).
A review is an ``ig_access`` record of the audit log (the note in its payload), committed before the
answer; reading the queue is audited like every IG read.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query

from familyctx_gateway.access import AccessRefused
from familyctx_gateway.api.audit_views import whole_number
from familyctx_gateway.api.deps import CurrentPrincipal, Gateway, RequestId
from familyctx_gateway.api.ig_auditing import IgRequest, begin_ig_request, run_read
from familyctx_gateway.api.json_body import StrictJsonRoute
from familyctx_gateway.api.schemas import ErrorResponse
from familyctx_gateway.api.schemas.audit import (
    BreakGlassQueueItem,
    BreakGlassQueueResponse,
    BreakGlassReviewRequest,
    BreakGlassReviewView,
)
from familyctx_gateway.audit_record import AuditOutcome
from familyctx_gateway.audit_reviews import GrantForReview, ReviewExists, ReviewQueue
from familyctx_gateway.errors import GatewayError

__all__ = ["router"]

# JSON bodies are read strictly (duplicate keys, numbers too long): api/json_body.py.
router = APIRouter(tags=["IG: break-glass review"], route_class=StrictJsonRoute)
log = logging.getLogger("familyctx_gateway.api.audit_break_glass")

_UUID = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"


class GrantNotNotified(GatewayError):
    """404: no grant with that id was notified to your council."""

    status = 404
    detail = "No break-glass grant with that id was notified to your council"


class AlreadyReviewed(GatewayError):
    """409: your council has already reviewed this grant."""

    status = 409
    detail = (
        "Your council has already reviewed this break-glass grant (GET /v1/audit/break-glass?status=reviewed "
        "shows the review)"
    )


def _errors(*codes: int) -> dict[int | str, dict[str, object]]:
    return {code: {"model": ErrorResponse} for code in codes}


def _queue(ig: IgRequest) -> ReviewQueue:
    return ReviewQueue(ig.engine, ig.metadata)


def item(grant: GrantForReview) -> BreakGlassQueueItem:
    """The API shape of a grant in the queue."""
    return BreakGlassQueueItem(
        break_glass_id=grant.break_glass_id,
        worker_sub=grant.worker_sub,
        worker_name=grant.worker_name,
        worker_organisation=grant.worker_organisation,
        role=grant.role,
        purpose=grant.purpose,
        case_reference=grant.case_reference,
        reason=grant.reason,
        opened_at=grant.opened_at,
        expires_at=grant.expires_at,
        notified_because=grant.notified_because,
        requests=grant.records,
        reviews=[
            BreakGlassReviewView(
                reviewer_sub=r.reviewer_sub,
                reviewer_name=r.reviewer_name,
                reviewer_organisation=r.reviewer_organisation,
                reviewed_at=r.reviewed_at,
                note=r.note,
                seq=r.seq,
            )
            for r in grant.reviews
        ],
    )


@router.get("/break-glass", response_model=BreakGlassQueueResponse, responses=_errors(401, 403, 422, 503))
async def review_queue(
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
    status: Annotated[
        Literal["unreviewed", "reviewed"],
        Query(description="unreviewed (the queue, oldest first) or reviewed (newest first)"),
    ] = "unreviewed",
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many grants (1-200)")] = 50,
) -> BreakGlassQueueResponse:
    """Break-glass grants notified to your council that your council has (not) reviewed: who opened
    each, for which purpose and case, their written reason, and the audit records made under it."""
    after = whole_number("cursor", cursor, "must be the next_cursor of the previous page")
    ig = await begin_ig_request(
        gateway,
        principal,
        request_id,
        "GET /v1/audit/break-glass",
        query_terms={"status": status, "cursor": cursor, "limit": limit},
    )
    grants, next_cursor = await run_read(
        "break_glass_queue", _queue(ig).queue, ig.council, status=status, after=after, limit=limit
    )
    await ig.record(read=sorted({seq for g in grants for seq in g.records}), count=len(grants))
    return BreakGlassQueueResponse(
        status=status,
        grants=[item(g) for g in grants],
        next_cursor=str(next_cursor) if next_cursor is not None else None,
    )


@router.post(
    "/break-glass/{break_glass_id}/review",
    status_code=201,
    response_model=BreakGlassQueueItem,
    responses=_errors(401, 403, 404, 409, 413, 422, 503),
)
async def review_break_glass(
    break_glass_id: Annotated[str, Path(pattern=_UUID, description="The grant's id (break_glass_id)")],
    body: BreakGlassReviewRequest,
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
) -> BreakGlassQueueItem:
    """Mark a break-glass grant reviewed for your council, with a note (10-2000 characters) saying what
    you checked and concluded. The review (reviewer, time, note) is itself a record of the audit log,
    committed before this answer. Answers the grant with its reviews. Nobody reviews their own grant."""
    ig = await begin_ig_request(
        gateway,
        principal,
        request_id,
        "POST /v1/audit/break-glass/{break_glass_id}/review",
        query_terms={"break_glass_id": break_glass_id},
        action="review_break_glass",
    )
    queue = _queue(ig)
    grant = await run_read("break_glass_grant", queue.grant, ig.council, break_glass_id)
    if grant is not None and grant.worker_sub == principal.sub:
        own = AccessRefused(
            "You may not review your own break-glass access; another IG officer must review it"
        )
        await ig.record(http_status=own.status, outcome=AuditOutcome.denied)
        raise own
    if grant is None or grant.reviews:
        refusal = GrantNotNotified() if grant is None else AlreadyReviewed()
        await ig.record(http_status=refusal.status, outcome=AuditOutcome.error)
        raise refusal
    try:  # checked again under the log's lock: one review per council, whatever the gateway process
        await ig.record_review({"break_glass_id": break_glass_id, "note": body.note})
    except ReviewExists:
        await ig.record(http_status=AlreadyReviewed.status, outcome=AuditOutcome.error)
        raise AlreadyReviewed() from None
    reviewed = await run_read("break_glass_grant", queue.grant, ig.council, break_glass_id)
    log.info(
        "break glass reviewed request_id=%s grant_id=%s council=%s", request_id, break_glass_id, ig.council
    )
    return item(reviewed or grant)
