"""The IG API's integrity endpoints (included under ``/v1/audit`` by
:mod:`familyctx_gateway.api.routes.audit`): one record in full with its RFC 9162 inclusion proof
(``GET /v1/audit/events/{seq}``), the current signed tree head (``GET /v1/audit/tree-head``) and
consistency proofs (``GET /v1/audit/proofs/consistency``). IG officers only; each request audited."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from familyctx.auditlog.errors import ProofError
from familyctx.auditlog.log import MerkleLog, TreeHeadSigner, stored_payload
from familyctx_gateway.api.audit_views import b64, errors_for, invalid, queries, summary, whole_number
from familyctx_gateway.api.deps import CurrentPrincipal, Gateway, RequestId
from familyctx_gateway.api.ig_auditing import IgRequest, begin_ig_request, run_read
from familyctx_gateway.api.schemas.audit import (
    AuditEventDetail,
    ConsistencyProofResponse,
    InclusionProofView,
    TreeHeadResponse,
)
from familyctx_gateway.audit_record import AuditOutcome
from familyctx_gateway.audit_scope import PARTIAL_VIEW_NOTE, partial_record
from familyctx_gateway.errors import GatewayError

__all__ = ["router"]

router = APIRouter(tags=["IG: audit"])


class RecordNotFound(GatewayError):
    """404: no record with that seq, or none your council may see (which of the two is not said)."""

    status = 404
    detail = "No audit record with that seq that your council may see"


class NoTreeHead(GatewayError):
    """503: no signed tree head yet (no signing key configured, or none signed so far)."""

    status = 503
    detail = (
        "No signed tree head yet: the gateway signs one every audit.tree_head_interval_seconds when "
        "audit.signing_key_file is set; ask again later or ask the gateway's operators"
    )


def _merkle(ig: IgRequest) -> MerkleLog:
    return ig.gateway.audit.log


# -- one record ------------------------------------------------------------------------------------


def _detail(ig: IgRequest, seq: int) -> AuditEventDetail | None:
    stored = queries(ig).record(seq, scope=ig.council)
    if stored is None:
        return None
    merkle = _merkle(ig)
    head = merkle.latest_signed_head()
    signer = _signer(ig)
    if (head is None or head.tree_size <= seq) and signer is not None:
        head = merkle.sign_tree_head(signer)
    proof, unavailable = None, None
    if head is not None and head.tree_size > seq:
        p = merkle.inclusion_proof(seq, head.tree_size).to_dict()
        proof = InclusionProofView(
            seq=p["seq"], tree_size=p["tree_size"], leaf_hash=p["leaf_hash"], root_hash=p["root_hash"],
            audit_path=p["audit_path"],
        )  # fmt: skip
    else:
        unavailable = (
            "No signed tree head covers this record yet (tree heads are signed every "
            "audit.tree_head_interval_seconds); ask again after the next one"
        )
    intact = stored_payload(stored.payload, stored.leaf_hash)  # None: redacted, or edited (no 500)
    record = json.loads(intact) if intact is not None else None
    payload = b64(stored.payload) if stored.payload is not None else None
    if stored.view.partial:  # the stored bytes hold other councils' data: show this council's part
        record = partial_record(record, ig.council) if record is not None else None
        payload = None
    return AuditEventDetail(
        event=summary(stored.view),
        recorded_at=stored.recorded_at,
        redacted_at=stored.redacted_at,
        payload=payload,
        record=record,
        leaf_hash=b64(stored.leaf_hash),
        inclusion_proof=proof,
        tree_head=TreeHeadResponse(**head.to_dict()) if head is not None and proof is not None else None,
        proof_unavailable=unavailable,
        partial_view_note=PARTIAL_VIEW_NOTE if stored.view.partial else None,
    )


def _signer(ig: IgRequest) -> TreeHeadSigner | None:
    """The tree-head signer the gateway runs with, or None when it signs no tree heads."""
    return ig.gateway.audit.signer


@router.get("/events/{seq}", response_model=AuditEventDetail, responses=errors_for(401, 403, 404, 422, 503))
async def get_event(
    seq: Annotated[int, Path(ge=0, le=2**62, description="The record's position in the log")],
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
) -> AuditEventDetail:
    """One record in full: the stored bytes (``payload``, base64url; exactly what was hashed), decoded
    (``record``), and its RFC 9162 inclusion proof against a signed tree head, so that anyone holding
    the gateway's public tree-head key can check the record is in the log unaltered. A record of
    another council's request that returned your council's data is a partial view: ``record`` is your
    council's part, ``payload`` is withheld, and the leaf hash and proof cover the whole record."""
    ig = await begin_ig_request(
        gateway, principal, request_id, "GET /v1/audit/events/{seq}", query_terms={"seq": seq}
    )
    detail = await run_read("event", _detail, ig, seq)
    if detail is None:
        await ig.record(read=[], http_status=RecordNotFound.status, outcome=AuditOutcome.error)
        raise RecordNotFound()
    await ig.record(read=[seq])
    return detail


# -- integrity -------------------------------------------------------------------------------------


def _current_head(ig: IgRequest) -> Any:
    merkle = _merkle(ig)
    signer = _signer(ig)
    return merkle.sign_tree_head(signer) if signer is not None else merkle.latest_signed_head()


@router.get("/tree-head", response_model=TreeHeadResponse, responses=errors_for(401, 403, 503))
async def tree_head(gateway: Gateway, principal: CurrentPrincipal, request_id: RequestId) -> TreeHeadResponse:
    """The current signed tree head (``SignedTreeHead.to_json``): keep it outside the system, e.g. one
    JSON object per line in a ``.jsonl`` file, for ``familyctx audit verify --kept-heads``."""
    ig = await begin_ig_request(gateway, principal, request_id, "GET /v1/audit/tree-head")
    head = await run_read("tree_head", _current_head, ig)
    if head is None:
        await ig.record(http_status=NoTreeHead.status, outcome=AuditOutcome.error)
        raise NoTreeHead()
    await ig.record(count=1)
    return TreeHeadResponse(**head.to_dict())


def _size(field: str, value: str | None) -> int | None:
    return whole_number(field, value, "must be a tree size: a whole number of 0 or more (ASCII digits)")


def _consistency(ig: IgRequest, old: int, new: int | None) -> ConsistencyProofResponse:
    merkle = _merkle(ig)
    if new is None:
        head = merkle.latest_signed_head()
        new = head.tree_size if head is not None else merkle.tree_head().tree_size
    try:
        proof = merkle.consistency_proof(old, new).to_dict()
    except ProofError:
        size = merkle.tree_head().tree_size
        raise invalid(
            "to", f"sizes must satisfy 0 <= from <= to <= {size} (the log's current size)"
        ) from None
    return ConsistencyProofResponse(**proof)


@router.get(
    "/proofs/consistency", response_model=ConsistencyProofResponse, responses=errors_for(401, 403, 422, 503)
)
async def consistency_proof(
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
    old: Annotated[
        str,
        Query(alias="from", max_length=20, description="The older tree size (e.g. of a tree head you kept)"),
    ],
    new: Annotated[
        str | None,
        Query(alias="to", max_length=20, description="The newer tree size (default: latest signed head)"),
    ] = None,
) -> ConsistencyProofResponse:
    """RFC 9162 consistency proof that the log of ``to`` records extends the log of ``from`` records
    unchanged: with two tree heads you kept, it shows nothing before the older one was edited, removed or
    reordered since."""
    old_size, new_size = _size("from", old), _size("to", new)
    assert old_size is not None
    ig = await begin_ig_request(
        gateway, principal, request_id, "GET /v1/audit/proofs/consistency",
        query_terms={"from": old_size, "to": new_size},
    )  # fmt: skip
    proof = await run_read("consistency", _consistency, ig, old_size, new_size)
    await ig.record(count=1)
    return proof
