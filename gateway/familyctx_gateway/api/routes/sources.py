"""``GET /v1/sources``: the configured councils, their last known state, health, datasets and freshness,
and the council registry in use (version, last refused edit)."""

from __future__ import annotations

from fastapi import APIRouter

from familyctx_gateway.api.deps import CurrentPrincipal, Gateway, RequestId, authorise, requester_for
from familyctx_gateway.api.schemas import ErrorResponse, SourcesResponse
from familyctx_gateway.sources import registry_summary, source_summaries

router = APIRouter(tags=["sources"])


@router.get(
    "/sources", response_model=SourcesResponse, responses={c: {"model": ErrorResponse} for c in (401, 403)}
)
async def list_sources(
    gateway: Gateway, principal: CurrentPrincipal, request_id: RequestId
) -> SourcesResponse:
    """Every configured council with its datasets (Describe, cached), the state it was last seen in and
    its last health check, and the ``registry`` block (version in use, last refused edit).

    Holds no personal data and is not audited; the gateway policy's action ``list_sources`` decides who
    may read it (by default every role).
    """
    authorisation = authorise(gateway, principal, "list_sources")
    # One snapshot for the whole request, and the registry block that describes it.
    federation, registry = gateway.federation, registry_summary(gateway.councils)
    # Describe is signed for the caller with no purpose (docs/access-control.md, "What the assertion says").
    describes = await federation.describe_all(
        requester=requester_for(principal, authorisation, request_id=request_id),
        cache_seconds=gateway.settings.describe_cache_seconds,
    )
    return SourcesResponse(
        sources=source_summaries(federation, {code: pair[0] for code, pair in describes.items()}),
        registry=registry,
    )
