"""``POST /v1/searches``: find a person in every council at once."""

from __future__ import annotations

from fastapi import APIRouter, Response

from familyctx_gateway.api.auditing import run_audited
from familyctx_gateway.api.deps import CurrentPrincipal, Gateway, RequestId
from familyctx_gateway.api.json_body import StrictJsonRoute
from familyctx_gateway.api.schemas import ErrorResponse, SearchRequest, SearchResponse
from familyctx_gateway.search import run_search

router = APIRouter(tags=["search"], route_class=StrictJsonRoute)  # JSON bodies: api/json_body.py

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 413, 422, 503)
}


@router.post("/searches", response_model=SearchResponse, responses=ERRORS)
async def search(
    body: SearchRequest, gateway: Gateway, principal: CurrentPrincipal, request_id: RequestId
) -> Response:
    """Search every council for a person; candidates are linked across councils and graded.

    Only certain links (same valid NHS number) merge records into one candidate; probable and possible
    links are listed under ``possible_matches`` with their evidence. ``sources`` gives every council's state.
    """
    return await run_audited(
        gateway=gateway,
        principal=principal,
        request_id=request_id,
        endpoint="POST /v1/searches",
        action="search",
        purpose=body.purpose.value,
        case_reference=body.case_reference,
        break_glass_id=body.break_glass_id,
        query_terms=body.model_dump(
            mode="json", exclude={"purpose", "case_reference", "break_glass_id"}, exclude_none=True
        ),
        work=lambda requester: run_search(
            body,
            federation=gateway.federation,
            requester=requester,
            max_results=gateway.settings.max_results_per_source,
            linker=gateway.linker,
        ),
    )
