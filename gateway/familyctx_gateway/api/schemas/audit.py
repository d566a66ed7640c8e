"""Response and request bodies of the IG API (``/v1/audit``), for IG officers only.

Records are described from the audit index (``audit_events``, ``audit_subjects``, ``audit_councils``);
``GET /v1/audit/events/{seq}`` adds the stored record itself (the canonical bytes hashed into the Merkle
tree) with its inclusion proof. Hashes are base64url without padding (RFC 4648 section 5); times are RFC
3339 UTC. Subjects carry names as the index keeps them: folded match keys ("zoe", "oneill"); the record
itself keeps names as asked and shown.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

__all__ = [
    "AuditCouncilView",
    "AuditEventDetail",
    "AuditEventSummary",
    "AuditEventsPage",
    "AuditSubjectView",
    "AuditUser",
    "BreakGlassQueueItem",
    "BreakGlassQueueResponse",
    "BreakGlassReviewRequest",
    "BreakGlassReviewView",
    "ConsistencyProofResponse",
    "FlagView",
    "FlagsResponse",
    "InclusionProofView",
    "SubjectAccessReport",
    "SubjectIdentity",
    "SubjectQueryView",
    "TreeHeadResponse",
]


class AuditUser(BaseModel):
    """Who made the request (from their access token): ``sub``, display ``name``, ``organisation`` (GSS
    code of their council), the one ``role`` the request was authorised under (null when refused),
    ``client`` (OAuth client). ``sub`` and ``name`` are null once the record was redacted."""

    sub: str | None
    name: str | None
    organisation: str
    role: str | None
    client: str | None


class AuditCouncilView(BaseModel):
    """One council asked in the request: ``gss_code``, its ``state`` (ok, unavailable, timed_out,
    refused, error...) and, when it did not answer, ``detail``."""

    gss_code: str
    state: str
    detail: str | None = None


class AuditSubjectView(BaseModel):
    """A person the request was about: ``kind`` ``searched_for`` (what the worker asked for) or
    ``returned`` (a council record shown). Names are folded match keys."""

    kind: str | None
    gss_code: str | None
    local_person_id: str | None
    nhs_number: str | None
    given_name_key: str | None
    family_name_key: str | None
    date_of_birth: dt.date | None
    postcode: str | None


#: Said when a view is limited to the asking council's part of a record (see ``view``).
PartialViewNote = Field(
    default=None,
    description="Set when a record is shown as a partial view: what is left out, and that the inclusion "
    "proof still covers the whole record",
)


class AuditEventSummary(BaseModel):
    """One record of the audit log, as indexed. ``seq``: its position in the log (0-based);
    ``record_class``: ``access`` (search, family context), ``break_glass`` (a grant opened) or
    ``ig_access`` (an IG officer's read or review); ``outcome``: success, partial, denied, error.
    ``view``: ``full`` (your council's staff made the request) or ``partial`` (another council's staff
    did, and your council's data was returned or its person searched for: who, when, why, outcome, the
    query terms and your council's subjects and state only; other councils' subjects, states and the
    response hash are left out)."""

    seq: int
    record_class: str
    occurred_at: dt.datetime
    request_id: str
    trace_id: str | None
    endpoint: str
    user: AuditUser
    purpose: str | None
    case_reference: str | None
    break_glass: bool
    break_glass_id: str | None
    outcome: str
    http_status: int
    response_sha256: str | None = Field(
        default=None, description="SHA-256 (hex) of the exact response body the caller received"
    )
    councils: list[AuditCouncilView]
    subjects: list[AuditSubjectView]
    view: Literal["full", "partial"] = "full"


class AuditEventsPage(BaseModel):
    """``GET /v1/audit/events``: newest first. ``next_cursor``: pass as ``cursor`` for the next page
    (null: this page is the last); ``partial_view_note``: set when a record is a partial view."""

    events: list[AuditEventSummary]
    next_cursor: str | None
    partial_view_note: str | None = PartialViewNote


class InclusionProofView(BaseModel):
    """RFC 9162 section 2.1.3: the record's ``leaf_hash`` = SHA-256(0x00 || payload bytes) is entry
    ``seq`` of the tree of ``tree_size`` entries whose root is ``root_hash`` (the signed tree head's),
    by the ``audit_path`` (nearest the leaf first)."""

    seq: int
    tree_size: int
    leaf_hash: str
    root_hash: str
    audit_path: list[str]


class TreeHeadResponse(BaseModel):
    """A signed tree head (``SignedTreeHead.to_json``): the log ``log_id`` held ``tree_size`` records
    with root ``root_hash`` at ``issued_at``; ``jws``: that statement signed (ES256) by the gateway's
    tree-head key. Keep these outside the system; ``familyctx audit verify --kept-heads`` checks them."""

    model_config = ConfigDict(extra="allow")

    log_id: str
    tree_size: int
    root_hash: str
    issued_at: str
    jws: str


class AuditEventDetail(BaseModel):
    """``GET /v1/audit/events/{seq}``: one record in full, or your council's part of it.

    ``payload``: base64url of the exact bytes stored and hashed (canonical JSON of ``{"class",
    "record", "recorded_at"}``), null once redacted under retention (``redacted_at``) and in a partial
    view (``event.view`` ``partial``: the bytes hold other councils' data); ``record``: the same, decoded
    (in a partial view: your council's part only, see ``partial_view_note``); ``leaf_hash`` and
    ``inclusion_proof`` are always of the whole record: proof against ``tree_head`` (null only when no
    tree head has been signed yet: see ``proof_unavailable``)."""

    event: AuditEventSummary
    recorded_at: dt.datetime
    redacted_at: dt.datetime | None
    payload: str | None
    record: dict[str, Any] | None
    leaf_hash: str
    inclusion_proof: InclusionProofView | None
    tree_head: TreeHeadResponse | None
    proof_unavailable: str | None = None
    partial_view_note: str | None = PartialViewNote


class SubjectQueryView(BaseModel):
    """The person asked about, as normalised: ``nhs_number``; names as match keys; ``date_of_birth``."""

    nhs_number: str | None
    given_name_key: str | None
    family_name_key: str | None
    date_of_birth: dt.date | None


class SubjectIdentity(BaseModel):
    """A council record taken to be the person: council ``gss_code`` and its ``local_person_id``."""

    gss_code: str
    local_person_id: str


class SubjectAccessReport(BaseModel):
    """``GET /v1/audit/subject-access``: every access to one person across councils, newest first.

    ``identities``: the council records found for the person (by NHS number, by names and date of
    birth, see docs); ``truncated``: more records exist than ``max_records`` (use ``Accept: text/csv``
    for all of them)."""

    subject: SubjectQueryView
    identities: list[SubjectIdentity]
    generated_at: dt.datetime
    events: list[AuditEventSummary]
    truncated: bool
    max_records: int
    partial_view_note: str | None = PartialViewNote


# -- break-glass review ----------------------------------------------------------------------------


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


ReviewNote = Annotated[
    StrictStr,
    BeforeValidator(_strip),
    Field(
        min_length=10,
        max_length=2000,
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$",
        description="What you checked and concluded: 10-2000 characters (after trimming spaces); line "
        "breaks and tabs allowed, no other control characters. Kept in the audit log.",
        examples=["Spoke to the duty manager: out-of-hours police referral, access justified."],
    ),
]


class BreakGlassReviewRequest(BaseModel):
    """``POST /v1/audit/break-glass/{break_glass_id}/review``: mark a grant reviewed with a note."""

    model_config = ConfigDict(extra="forbid")

    note: ReviewNote


class BreakGlassReviewView(BaseModel):
    """A review: who (``reviewer_sub``, ``reviewer_name``, ``reviewer_organisation``), when, the
    ``note``, and ``seq``: the ``ig_access`` record of the review in the audit log."""

    reviewer_sub: str
    reviewer_name: str
    reviewer_organisation: str
    reviewed_at: dt.datetime
    note: str
    seq: int


class BreakGlassQueueItem(BaseModel):
    """A break-glass grant notified to your council: who opened it, for which purpose and case, why
    (their written ``reason``), when; ``notified_because``: ``opened`` (your council's worker opened
    it) and/or ``used`` (your council was asked for data under it); ``requests``: seqs of the audit
    records made under it (what was done with it); ``reviews``: your council's reviews (empty:
    unreviewed)."""

    break_glass_id: str
    worker_sub: str
    worker_name: str
    worker_organisation: str
    role: str | None
    purpose: str
    case_reference: str
    reason: str
    opened_at: dt.datetime
    expires_at: dt.datetime
    notified_because: list[Literal["opened", "used"] | str]
    requests: list[int]
    reviews: list[BreakGlassReviewView]


class BreakGlassQueueResponse(BaseModel):
    """``GET /v1/audit/break-glass``: grants of ``status`` (unreviewed: oldest first, the queue order;
    reviewed: newest review first). ``next_cursor``: pass as ``cursor`` for the next page."""

    status: Literal["unreviewed", "reviewed"]
    grants: list[BreakGlassQueueItem]
    next_cursor: str | None


# -- integrity and flags ---------------------------------------------------------------------------


class ConsistencyProofResponse(BaseModel):
    """RFC 9162 section 2.1.4: the tree of ``new_size`` records (root ``new_root``) extends the tree of
    ``old_size`` records (root ``old_root``) unchanged, by ``consistency_path``."""

    old_size: int
    new_size: int
    old_root: str
    new_root: str
    consistency_path: list[str]


class FlagView(BaseModel):
    """One flag for review. ``kind``: ``shared_family_name``, ``new_case_reference`` or ``volume``;
    ``seq``: the record flagged (null for ``volume``, which flags a worker's UTC day starting at
    ``occurred_at``); ``subjects``: the subjects that raised a ``shared_family_name`` flag;
    ``count``/``lookups``/``threshold``: distinct council records the worker's requests named that day,
    their lookups that day (requests with a subject searched for, found or not), and the configured
    limit (a day is flagged when either is above it)."""

    kind: str
    user_sub: str
    user_name: str
    occurred_at: dt.datetime
    seq: int | None
    case_reference: str | None
    subjects: list[AuditSubjectView]
    count: int | None
    threshold: int | None
    lookups: int | None = None


class FlagsResponse(BaseModel):
    """``GET /v1/audit/flags``: flags over records in [``from``, ``to``). ``not_checked``: patterns the
    gateway cannot check, and why; ``truncated``: kinds with more flags than were returned."""

    model_config = ConfigDict(populate_by_name=True)

    from_: dt.datetime = Field(alias="from")
    to: dt.datetime
    daily_records_threshold: int
    flags: list[FlagView]
    truncated: list[str]
    not_checked: list[str]
