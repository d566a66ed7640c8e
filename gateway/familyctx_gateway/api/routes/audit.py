"""The IG API, ``/v1/audit`` (IG officers only; every request is itself audited, class ``ig_access``).

- ``GET /v1/audit/events`` (filters, cursor paging, newest first) and ``GET /v1/audit/events.csv``
- ``GET /v1/audit/subject-access``: every access to one person across councils (JSON or ``text/csv``)
- ``GET /v1/audit/flags``: records flagged for review
- one record with its inclusion proof, the signed tree head and consistency proofs
  (:mod:`familyctx_gateway.api.routes.audit_integrity`)
- the break-glass review queue (:mod:`familyctx_gateway.api.routes.audit_break_glass`)

Scope: an IG officer of council X sees the records of requests made by X's staff, in full, and the
records in which X's data was returned or a person X holds was searched for, as a partial view of X's
part (:mod:`familyctx_gateway.audit_scope`). Unknown query parameters are refused (422).
Docs: docs/gateway-api.md, "The IG API: `/v1/audit`"; worked examples: docs/audit.md, "The IG API:
worked examples".
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from familyctx_gateway.api.audit_views import (
    BornQ,
    FamilyQ,
    From,
    GivenQ,
    NhsQ,
    Outcome,
    RecordClassQ,
    To,
    cursor_seq,
    errors_for,
    invalid,
    known_parameters_only,
    partial_note,
    queries,
    subject_query,
    subject_view,
    summary,
    window,
)
from familyctx_gateway.api.deps import CurrentPrincipal, Gateway, RequestId
from familyctx_gateway.api.ig_auditing import IgRequest, begin_ig_request, run_read, searched_for
from familyctx_gateway.api.routes import audit_break_glass, audit_integrity
from familyctx_gateway.api.schemas import Purpose
from familyctx_gateway.api.schemas.audit import (
    AuditEventsPage,
    FlagsResponse,
    FlagView,
    SubjectAccessReport,
    SubjectIdentity,
    SubjectQueryView,
)
from familyctx_gateway.api.schemas.requests import GssCode
from familyctx_gateway.audit_flags import find_flags
from familyctx_gateway.audit_queries import (
    CSV_COLUMNS,
    AuditFilter,
    AuditIndex,
    EventView,
    SubjectQuery,
    csv_row,
)

__all__ = ["router"]

router = APIRouter(prefix="/audit", tags=["IG: audit"], dependencies=[Depends(known_parameters_only)])
router.include_router(audit_integrity.router)
router.include_router(audit_break_glass.router)
log = logging.getLogger("familyctx_gateway.api.audit")

#: Most records in one JSON subject access report (the CSV form has them all).
MAX_REPORT_RECORDS = 1000
#: Longest period ``GET /v1/audit/flags`` looks at in one request.
MAX_FLAG_DAYS = 366
_NO_ADDRESS = (
    "shared address: the gateway holds no workers' addresses (tokens carry none), so a worker looking up "
    "people at their own address cannot be flagged here"
)


def _csv_lines(chunks: Iterator[list[EventView]], request_id: str) -> Iterator[str]:
    """CSV text (RFC 4180, CRLF line ends), header first, one row per record, chunk by chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    rows = 0
    try:
        for chunk in chunks:
            for view in chunk:
                writer.writerow(csv_row(view))
            rows += len(chunk)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    except Exception as exc:  # the status line has gone: end the stream short, loudly in the log
        log.error(
            "audit csv export failed request_id=%s rows=%d error=%s", request_id, rows, type(exc).__name__
        )
        raise
    if buffer.getvalue():
        yield buffer.getvalue()
    log.info("audit csv export done request_id=%s rows=%d", request_id, rows)


def _csv_response(ig: IgRequest, flt: AuditFilter, filename: str) -> StreamingResponse:
    chunks = queries(ig).iter_search(flt, scope=ig.council)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        _csv_lines(chunks, ig.request_id),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}-{stamp}.csv"'},
    )


# -- searching -------------------------------------------------------------------------------------


def _filter_terms(**values: Any) -> dict[str, Any]:
    return {k: (v.value if isinstance(v, Purpose) else v) for k, v in values.items()}


async def _search_request(
    gateway: Any,
    principal: Any,
    request_id: str,
    endpoint: str,
    **params: Any,
) -> tuple[IgRequest, AuditFilter]:
    since, until = window(params.pop("since"), params.pop("until"))
    names = {k: params.pop(k) for k in ("nhs_number", "given_name", "family_name", "date_of_birth")}
    subject = subject_query(**names)
    before = cursor_seq(params.pop("cursor", None))
    purpose = params.pop("purpose")
    flt = AuditFilter(
        subject=subject,
        since=since,
        until=until,
        purpose=purpose.value if purpose is not None else None,
        **params,
    )
    terms = _filter_terms(**{**params, **names, "from": since, "to": until, "purpose": flt.purpose})
    if before is not None:
        terms["cursor"] = before
    ig = await begin_ig_request(
        gateway,
        principal,
        request_id,
        endpoint,
        query_terms=terms,
        subjects=searched_for(subject, **names),
    )
    return ig, flt


@router.get("/events", response_model=AuditEventsPage, responses=errors_for(401, 403, 422, 503))
async def search_events(
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
    since: From = None,
    to: To = None,
    user: Annotated[
        str | None, Query(min_length=1, max_length=200, description="The worker's token sub")
    ] = None,
    nhs_number: NhsQ = None,
    given_name: GivenQ = None,
    family_name: FamilyQ = None,
    date_of_birth: BornQ = None,
    purpose: Annotated[Purpose | None, Query(description="The purpose the worker gave")] = None,
    council: Annotated[
        GssCode | None, Query(description="Requesting council, or a council asked or holding a subject")
    ] = None,
    outcome: Annotated[Outcome | None, Query(description="success, partial, denied or error")] = None,
    break_glass: Annotated[bool | None, Query(description="Only break-glass records (true) or none")] = None,
    record_class: Annotated[
        RecordClassQ | None, Query(description="access, break_glass or ig_access")
    ] = None,
    case_reference: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="next_cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200, description="At most this many records (1-200)")] = 50,
) -> AuditEventsPage:
    """Search the audit log, newest first: by worker (``user``), person (``nhs_number``, or
    ``given_name`` + ``family_name`` + ``date_of_birth``, matched across councils), time (``from``
    inclusive, ``to`` exclusive), ``purpose``, ``council``, ``outcome``, ``break_glass``,
    ``record_class`` and ``case_reference``. Only records your council may see."""
    ig, flt = await _search_request(
        gateway, principal, request_id, "GET /v1/audit/events",
        since=since, until=to, user=user, nhs_number=nhs_number, given_name=given_name,
        family_name=family_name, date_of_birth=date_of_birth, purpose=purpose, council=council,
        outcome=outcome, break_glass=break_glass, record_class=record_class, case_reference=case_reference,
        cursor=cursor,
    )  # fmt: skip
    page = await run_read(
        "events", queries(ig).search, flt, scope=ig.council, before=cursor_seq(cursor), limit=limit
    )
    await ig.record(read=[v.seq for v in page.events])
    return AuditEventsPage(
        events=[summary(v) for v in page.events],
        next_cursor=str(page.next_before) if page.next_before is not None else None,
        partial_view_note=partial_note(page.events),
    )


@router.get(
    "/events.csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "CSV, one row per record"},
        **errors_for(401, 403, 422, 503),
    },
)
async def export_events(
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
    since: From = None,
    to: To = None,
    user: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    nhs_number: NhsQ = None,
    given_name: GivenQ = None,
    family_name: FamilyQ = None,
    date_of_birth: BornQ = None,
    purpose: Annotated[Purpose | None, Query()] = None,
    council: Annotated[GssCode | None, Query()] = None,
    outcome: Annotated[Outcome | None, Query()] = None,
    break_glass: Annotated[bool | None, Query()] = None,
    record_class: Annotated[RecordClassQ | None, Query()] = None,
    case_reference: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> StreamingResponse:
    """The records ``GET /v1/audit/events`` would find (same filters), all of them, as CSV (streamed,
    newest first). Cells a spreadsheet would run as a formula (starting = + - @, tab or carriage
    return) are prefixed with a single quote (OWASP, CSV injection)."""
    ig, flt = await _search_request(
        gateway, principal, request_id, "GET /v1/audit/events.csv",
        since=since, until=to, user=user, nhs_number=nhs_number, given_name=given_name,
        family_name=family_name, date_of_birth=date_of_birth, purpose=purpose, council=council,
        outcome=outcome, break_glass=break_glass, record_class=record_class, case_reference=case_reference,
    )  # fmt: skip
    await ig.record()  # before the first byte: the records streamed are those the filters name
    return _csv_response(ig, flt, "audit-events")


# -- subject access --------------------------------------------------------------------------------


def _report(ig: IgRequest, subject: SubjectQuery) -> SubjectAccessReport:
    audit = queries(ig)
    page = audit.search(AuditFilter(subject=subject), scope=ig.council, limit=MAX_REPORT_RECORDS)
    identities = audit.subject_identities(subject, scope=ig.council)
    return SubjectAccessReport(
        subject=SubjectQueryView(
            nhs_number=subject.nhs_number,
            given_name_key=subject.given_name_key,
            family_name_key=subject.family_name_key,
            date_of_birth=subject.date_of_birth,
        ),
        identities=[SubjectIdentity(gss_code=g, local_person_id=loc) for g, loc in identities],
        generated_at=dt.datetime.now(dt.UTC),
        events=[summary(v) for v in page.events],
        truncated=page.next_before is not None,
        max_records=MAX_REPORT_RECORDS,
        partial_view_note=partial_note(page.events),
    )


@router.get(
    "/subject-access",
    response_model=SubjectAccessReport,
    responses={200: {"content": {"text/csv": {}}}, **errors_for(401, 403, 422, 503)},
)
async def subject_access(
    request: Request,
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
    nhs_number: NhsQ = None,
    given_name: GivenQ = None,
    family_name: FamilyQ = None,
    date_of_birth: BornQ = None,
) -> Any:
    """Every access to one person, across councils, newest first (a subject access report): by
    ``nhs_number``, or ``given_name`` + ``family_name`` + ``date_of_birth``. JSON (at most 1000
    records), or every record as CSV with ``Accept: text/csv``."""
    names = {
        "nhs_number": nhs_number,
        "given_name": given_name,
        "family_name": family_name,
        "date_of_birth": date_of_birth,
    }
    subject = subject_query(nhs_number, given_name, family_name, date_of_birth)
    if subject is None:
        raise invalid("nhs_number", "is required, unless given_name, family_name and date_of_birth are given")
    as_csv = "text/csv" in request.headers.get("accept", "")
    ig = await begin_ig_request(
        gateway, principal, request_id, "GET /v1/audit/subject-access",
        query_terms={**names, "format": "csv" if as_csv else "json"}, subjects=searched_for(subject, **names),
    )  # fmt: skip
    if as_csv:
        await ig.record()
        return _csv_response(ig, AuditFilter(subject=subject), "subject-access")
    report = await run_read("subject_access", _report, ig, subject)
    await ig.record(read=[e.seq for e in report.events])
    return report


# -- flags -----------------------------------------------------------------------------------------


@router.get("/flags", response_model=FlagsResponse, responses=errors_for(401, 403, 422, 503))
async def flags(
    gateway: Gateway,
    principal: CurrentPrincipal,
    request_id: RequestId,
    since: From = None,
    to: To = None,
) -> FlagsResponse:
    """Records flagged for review between ``from`` (default: 7 days before ``to``) and ``to`` (default:
    now), at most 366 days: a worker looking up a person who shares their family name; the first
    request under a case reference new for that worker; a worker's day naming more distinct council
    records, or more lookups (requests with a subject searched for, found or not), than
    ``audit.flag_daily_records``. A shared address cannot be checked (``not_checked``)."""
    start, end = window(since, to)
    end = end or dt.datetime.now(dt.UTC)
    if start is None:
        try:
            start = end - dt.timedelta(days=7)
        except OverflowError:  # "to" in the first week of year 1
            start = dt.datetime.min.replace(tzinfo=dt.UTC)
    if start >= end:
        raise invalid("from", "must be earlier than to")
    if end - start > dt.timedelta(days=MAX_FLAG_DAYS):
        raise invalid("from", f"must be at most {MAX_FLAG_DAYS} days before to")
    threshold = gateway.settings.audit.flag_daily_records
    ig = await begin_ig_request(
        gateway, principal, request_id, "GET /v1/audit/flags", query_terms={"from": start, "to": end}
    )
    report = await run_read(
        "flags", find_flags, ig.engine, AuditIndex(ig.metadata), scope=ig.council, since=start, until=end,
        daily_records_threshold=threshold,
    )  # fmt: skip
    await ig.record(read=sorted({f.seq for f in report.flags if f.seq is not None}), count=len(report.flags))
    return FlagsResponse.model_validate(
        {
            "from": start,
            "to": end,
            "daily_records_threshold": threshold,
            "flags": [
                FlagView(
                    kind=f.kind,
                    user_sub=f.user_sub,
                    user_name=f.user_name,
                    occurred_at=f.occurred_at,
                    seq=f.seq,
                    case_reference=f.case_reference,
                    subjects=[subject_view(s) for s in f.subjects],
                    count=f.count,
                    threshold=f.threshold,
                    lookups=f.lookups,
                )  # fmt: skip
                for f in report.flags
            ],
            "truncated": list(report.truncated),
            "not_checked": [_NO_ADDRESS],
        }
    )
