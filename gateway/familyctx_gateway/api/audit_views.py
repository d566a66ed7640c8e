"""Shared parts of the IG API's routes (``/v1/audit``): query parameter types, their checks (422 with a
clear message naming the parameter, never the value sent), and the API shape of an indexed record."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import Query
from fastapi.exceptions import RequestValidationError

from familyctx.identifiers import name_match_key
from familyctx_gateway.api.ig_auditing import IgRequest
from familyctx_gateway.api.schemas import ErrorResponse
from familyctx_gateway.api.schemas.audit import (
    AuditCouncilView,
    AuditEventSummary,
    AuditSubjectView,
    AuditUser,
)
from familyctx_gateway.api.schemas.requests import DateOfBirth, NhsNumberText, PersonName
from familyctx_gateway.audit_queries import AuditIndex, AuditQueries, EventView, SubjectQuery

__all__ = [
    "BornQ",
    "FamilyQ",
    "From",
    "GivenQ",
    "NhsQ",
    "Outcome",
    "RecordClassQ",
    "To",
    "b64",
    "cursor_seq",
    "errors_for",
    "invalid",
    "queries",
    "subject_query",
    "subject_view",
    "summary",
    "window",
]


def errors_for(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for error ``codes``, each with the ErrorResponse body."""
    return {code: {"model": ErrorResponse} for code in codes}


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 naming ``field`` (a query parameter) with ``message`` (never the value sent)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "ctx": {"error": message}}]
    )


# -- query parameters ------------------------------------------------------------------------------

From = Annotated[
    dt.datetime | None,
    Query(
        alias="from",
        description="Only records at or after this ISO 8601 date-time (UTC when it has no offset)",
        examples=["2026-05-01T00:00:00Z"],
    ),
]
To = Annotated[
    dt.datetime | None,
    Query(description="Only records before this ISO 8601 date-time (UTC when it has no offset)"),
]
NhsQ = Annotated[NhsNumberText | None, Query(description="The person's NHS number (10 digits)")]
GivenQ = Annotated[PersonName | None, Query(description="Given name; with family_name and date_of_birth")]
FamilyQ = Annotated[PersonName | None, Query(description="Family name; with given_name and date_of_birth")]
BornQ = Annotated[DateOfBirth | None, Query(description="Date of birth, YYYY-MM-DD; with the two names")]
Outcome = Literal["success", "partial", "denied", "error"]
RecordClassQ = Literal["access", "break_glass", "ig_access"]


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def window(
    since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``from`` / ``to`` as UTC (naive: taken as UTC). Raises a 422 when ``to`` is not after ``from``."""
    since, until = _utc(since), _utc(until)
    if since is not None and until is not None and since >= until:
        raise invalid("to", "must be later than from")
    return since, until


def subject_query(
    nhs_number: str | None, given_name: str | None, family_name: str | None, date_of_birth: dt.date | None
) -> SubjectQuery | None:
    """The person asked about (None when no person parameter was sent). Raises a 422 naming the missing
    name parameter when only some of given_name, family_name and date_of_birth were sent."""
    named = (given_name, family_name, date_of_birth)
    if nhs_number is None and all(v is None for v in named):
        return None
    if any(v is not None for v in named) and any(v is None for v in named):
        missing = [
            n for n, v in zip(("given_name", "family_name", "date_of_birth"), named, strict=True) if v is None
        ]
        raise invalid(
            missing[0], "is required with the other names: give given_name, family_name and date_of_birth"
        )
    try:
        return SubjectQuery.of(
            nhs_number=nhs_number, given_name=given_name, family_name=family_name, date_of_birth=date_of_birth
        )
    except ValueError:  # a name of punctuation only folds to nothing
        empty = "given_name" if not name_match_key(given_name) else "family_name"
        raise invalid(empty, "must contain at least one letter or digit") from None


def cursor_seq(value: str | None) -> int | None:
    """The ``seq`` a page ``cursor`` stands for (None when absent). Raises a 422 for anything else."""
    if value is None:
        return None
    if not value.isdigit() or len(value) > 19:
        raise invalid("cursor", "must be the next_cursor of the previous page")
    return int(value)


def queries(ig: IgRequest) -> AuditQueries:
    """The audit queries on the request's audit database."""
    return AuditQueries(ig.engine, AuditIndex(ig.metadata))


# -- views -----------------------------------------------------------------------------------------


def summary(view: EventView) -> AuditEventSummary:
    """The API shape of one indexed record."""
    e = view.event
    return AuditEventSummary(
        seq=view.seq,
        record_class=view.record_class,
        occurred_at=e["occurred_at"],
        request_id=e["request_id"],
        trace_id=e.get("trace_id"),
        endpoint=e["endpoint"],
        user=AuditUser(
            sub=e.get("user_sub"),
            name=e.get("user_name"),
            organisation=e.get("organisation") or "",
            role=e.get("role"),
            client=e.get("client"),
        ),
        purpose=e.get("purpose"),
        case_reference=e.get("case_reference"),
        break_glass=bool(e.get("break_glass")),
        break_glass_id=e.get("break_glass_id"),
        outcome=e["outcome"],
        http_status=e["http_status"],
        response_sha256=e.get("response_sha256"),
        councils=[
            AuditCouncilView(gss_code=c["gss"], state=c["state"], detail=c.get("detail"))
            for c in view.councils
        ],
        subjects=[subject_view(s) for s in view.subjects],
    )


def subject_view(s: dict[str, Any]) -> AuditSubjectView:
    """The API shape of one ``audit_subjects`` row."""
    return AuditSubjectView(
        kind=s.get("kind"),
        gss_code=s.get("gss"),
        local_person_id=s.get("local_person_id"),
        nhs_number=s.get("nhs_number"),
        given_name_key=s.get("given_name_key"),
        family_name_key=s.get("family_name_key"),
        date_of_birth=s.get("date_of_birth"),
        postcode=s.get("postcode"),
    )


def b64(data: bytes) -> str:
    """Base64url without padding (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
