"""``GET /v1/sources``: the configured councils, their last known state, datasets and freshness."""

from __future__ import annotations

from fastapi import APIRouter

from familyctx_gateway.api.deps import AnyRolePrincipal, Gateway, RequestId
from familyctx_gateway.api.schemas import ErrorResponse, SourcesResponse
from familyctx_gateway.sources import source_summaries

router = APIRouter(tags=["sources"])


@router.get("/sources", response_model=SourcesResponse, responses={401: {"model": ErrorResponse}})
async def list_sources(
    gateway: Gateway, principal: AnyRolePrincipal, request_id: RequestId
) -> SourcesResponse:
    """Every configured council with its datasets (Describe, cached) and the state it was last seen in.

    Holds no personal data; any authenticated caller holding a role here may read it.
    """
    describes = await gateway.federation.describe_all(
        request_id=request_id, purpose="sources", cache_seconds=gateway.settings.describe_cache_seconds
    )
    return SourcesResponse(
        sources=source_summaries(gateway.federation, {code: pair[0] for code, pair in describes.items()})
    )
