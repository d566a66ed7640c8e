"""JSON shapes of the gateway's HTTP API (``/v1``), as published in ``/openapi.json``.

Requests are validated strictly: unknown fields are rejected, strings have bounded length and a safe
character set, dates are real ISO 8601 calendar dates (``YYYY-MM-DD``). Field names are snake_case and
follow the contract (``familycontext.v1``) and the SSD: ``nhs_number`` (SSD PERS013A), ``local_person_id``
(SSD PERS001A), ``gss_code`` (ONS/GSS code of a local authority).

Responses carry personal data only in the fields named for it; every source (council) ends each request
in one explicit state, and every fact carries its provenance.
"""

from __future__ import annotations

from familyctx_gateway.api.schemas.break_glass import (
    DEFAULT_BREAK_GLASS_MINUTES,
    BreakGlassGrantResponse,
    BreakGlassNotificationResponse,
    BreakGlassNotificationsResponse,
    BreakGlassRequest,
    BreakGlassWorker,
)
from familyctx_gateway.api.schemas.requests import (
    EARLIEST_DATE_OF_BIRTH,
    FamilyContextRequest,
    Purpose,
    SearchRequest,
    SubjectRef,
)
from familyctx_gateway.api.schemas.responses import (
    Address,
    BreakGlassInUse,
    Candidate,
    CouncilSearchState,
    DatasetFreshness,
    DatasetState,
    ErrorField,
    ErrorResponse,
    FamilyContextResponse,
    FamilyPerson,
    FieldConflict,
    FieldEvidence,
    FieldOutcome,
    Involvement,
    InvolvementStatus,
    MatchEvidence,
    MatchGrade,
    PersonCouncilState,
    PersonDatasetState,
    PersonRecord,
    PossibleMatch,
    Practitioner,
    Provenance,
    RecordRef,
    Relationship,
    SearchResponse,
    SourcesResponse,
    SourceState,
    SourceStatus,
    SourceSummary,
)

__all__ = [
    "DEFAULT_BREAK_GLASS_MINUTES",
    "Address",
    "BreakGlassGrantResponse",
    "BreakGlassInUse",
    "BreakGlassNotificationResponse",
    "BreakGlassNotificationsResponse",
    "BreakGlassRequest",
    "BreakGlassWorker",
    "Candidate",
    "CouncilSearchState",
    "DatasetFreshness",
    "DatasetState",
    "EARLIEST_DATE_OF_BIRTH",
    "ErrorField",
    "ErrorResponse",
    "FamilyContextRequest",
    "FamilyContextResponse",
    "FamilyPerson",
    "FieldConflict",
    "FieldEvidence",
    "FieldOutcome",
    "Involvement",
    "InvolvementStatus",
    "MatchEvidence",
    "MatchGrade",
    "PersonCouncilState",
    "PersonDatasetState",
    "PersonRecord",
    "PossibleMatch",
    "Practitioner",
    "Provenance",
    "Purpose",
    "RecordRef",
    "Relationship",
    "SearchRequest",
    "SearchResponse",
    "SourceState",
    "SourceStatus",
    "SourceSummary",
    "SourcesResponse",
    "SubjectRef",
]
