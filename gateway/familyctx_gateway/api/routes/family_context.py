"""``POST /v1/family-context``: the family around a chosen person, across councils."""

from __future__ import annotations

from fastapi import APIRouter, Response

from familyctx_gateway.api.auditing import run_audited
from familyctx_gateway.api.deps import CurrentPrincipal, Gateway, RequestId
from familyctx_gateway.api.json_body import StrictJsonRoute
from familyctx_gateway.api.schemas import ErrorResponse, FamilyContextRequest, FamilyContextResponse
from familyctx_gateway.family_context import run_family_context

router = APIRouter(tags=["family context"], route_class=StrictJsonRoute)  # JSON bodies: api/json_body.py

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 413, 422, 503)
}


@router.post("/family-context", response_model=FamilyContextResponse, responses=ERRORS)
async def family_context(
    body: FamilyContextRequest, gateway: Gateway, principal: CurrentPrincipal, request_id: RequestId
) -> Response:
    """People, relationships and service involvements around ``subject``, from every council that knows
    them, with provenance, conflicts shown (not resolved), and each source's state and freshness."""
    settings = gateway.settings
    return await run_audited(
        gateway=gateway,
        principal=principal,
        request_id=request_id,
        endpoint="POST /v1/family-context",
        action="family_context",
        purpose=body.purpose.value,
        case_reference=body.case_reference,
        break_glass_id=body.break_glass_id,
        query_terms={"subject": body.subject.model_dump(mode="json")},
        work=lambda requester: run_family_context(
            body,
            federation=gateway.federation,
            requester=requester,
            max_results=settings.max_results_per_source,
            describe_cache_seconds=settings.describe_cache_seconds,
            linker=gateway.linker,
        ),
    )
