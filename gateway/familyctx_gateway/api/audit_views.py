"""Shared parts of the IG API's routes (``/v1/audit``): query parameter types, their checks (422 with a
clear message naming the parameter, never the value sent), and the API shape of an indexed record.

Every ``/v1/audit`` endpoint refuses (422) a query parameter it does not take, so a mistyped filter
(``?usr=...``) never runs an unfiltered search, and any parameter holding a NUL character
(:func:`known_parameters_only`). Whole numbers (cursors, tree sizes) are ASCII digits only, at most
2^63 - 1 (:func:`whole_number`); date-times are ISO 8601 text that must stay within the years 1-9999
once in UTC (:data:`~familyctx_gateway.api.schemas.requests.IsoDateTime`). Names are folded to the
index's match keys (:func:`familyctx.identifiers.name_match_key`), and a name whose key holds no letter
(``!!``, ``--``, ``123``) is refused."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
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
from familyctx_gateway.api.schemas.requests import DateOfBirth, IsoDateTime, NhsNumberText, PersonName
from familyctx_gateway.audit_queries import AuditIndex, AuditQueries, EventView, SubjectQuery
from familyctx_gateway.audit_scope import PARTIAL_VIEW_NOTE
from familyctx_gateway.errors import GatewayError

__all__ = [
    "BornQ",
    "FamilyQ",
    "From",
    "GivenQ",
    "NhsQ",
    "Outcome",
    "RecordClassQ",
    "To",
    "UnknownParameters",
    "b64",
    "cursor_seq",
    "errors_for",
    "invalid",
    "known_parameters_only",
    "partial_note",
    "queries",
    "subject_query",
    "subject_view",
    "summary",
    "whole_number",
    "window",
]

#: Largest whole number a cursor or tree size may be (SQL BIGINT).
MAX_WHOLE_NUMBER = 2**63 - 1
_ASCII_DIGITS = re.compile(r"[0-9]{1,19}")
_PARAMETER_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,39}")


def errors_for(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI ``responses`` for error ``codes``, each with the ErrorResponse body."""
    return {code: {"model": ErrorResponse} for code in codes}


def invalid(field: str, message: str) -> RequestValidationError:
    """A 422 naming ``field`` (a query parameter) with ``message`` (never the value sent)."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "ctx": {"error": message}}]
    )


class UnknownParameters(GatewayError):
    """422: the request sent query parameters the endpoint does not take (named, with those it takes)."""

    status = 422

    def __init__(self, unknown: list[str], known: list[str]) -> None:
        named = [n for n in unknown if _PARAMETER_NAME.fullmatch(n)]
        others = len(unknown) - len(named)
        parts = [", ".join(sorted(named))] if named else []
        if others:
            parts.append(f"{others} parameter name(s) that are not names")
        takes = ", ".join(sorted(known)) if known else "no query parameters"
        super().__init__(
            f"Unknown query parameter(s): {'; '.join(parts)}. Nothing was searched: correct or remove "
            f"them. This endpoint takes: {takes}"
        )


def _query_names(dependant: Dependant) -> set[str]:
    names = {str(param.alias) for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def known_parameters_only(request: Request) -> None:
    """Router dependency of ``/v1/audit``: raises :class:`UnknownParameters` (422) for query parameters
    the matched endpoint does not declare, and a 422 naming the parameter whose name or value holds a
    NUL character. Runs before the request is authorised or audited, like any validation error."""
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    known = _query_names(dependant) if dependant is not None else set()
    sent = list(dict.fromkeys(request.query_params.keys()))
    unknown = [name for name in sent if name not in known]
    if unknown:
        raise UnknownParameters(unknown, sorted(known))
    for name, value in request.query_params.multi_items():
        if "\x00" in value:
            raise invalid(name, "must not contain a NUL character")


# -- query parameters ------------------------------------------------------------------------------

From = Annotated[
    IsoDateTime | None,
    Query(
        alias="from",
        description="Only records at or after this ISO 8601 date-time (UTC when it has no offset)",
        examples=["2026-05-01T00:00:00Z"],
    ),
]
To = Annotated[
    IsoDateTime | None,
    Query(description="Only records before this ISO 8601 date-time (UTC when it has no offset)"),
]
NhsQ = Annotated[NhsNumberText | None, Query(description="The person's NHS number (10 digits)")]
GivenQ = Annotated[PersonName | None, Query(description="Given name; with family_name and date_of_birth")]
FamilyQ = Annotated[PersonName | None, Query(description="Family name; with given_name and date_of_birth")]
BornQ = Annotated[DateOfBirth | None, Query(description="Date of birth, YYYY-MM-DD; with the two names")]
Outcome = Literal["success", "partial", "denied", "error"]
RecordClassQ = Literal["access", "break_glass", "ig_access"]


def window(
    since: dt.datetime | None, until: dt.datetime | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """``from`` / ``to`` (aware UTC, :data:`IsoDateTime`). Raises a 422 when ``to`` is not after ``from``."""
    if since is not None and until is not None and since >= until:
        raise invalid("to", "must be later than from")
    return since, until


def _has_letter(name: str) -> bool:
    return any(ch.isalpha() for ch in name_match_key(name))


def subject_query(
    nhs_number: str | None, given_name: str | None, family_name: str | None, date_of_birth: dt.date | None
) -> SubjectQuery | None:
    """The person asked about (None when no person parameter was sent). Raises a 422 naming the missing
    name parameter when only some of given_name, family_name and date_of_birth were sent, or the name
    whose match key holds no letter (``!!``, ``--``: names are compared on the index's keys)."""
    named = (given_name, family_name, date_of_birth)
    if nhs_number is None and all(v is None for v in named):
        return None
    for field, name in (("given_name", given_name), ("family_name", family_name)):
        if name is not None and not _has_letter(name):
            raise invalid(field, "must contain at least one letter")
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
    except ValueError:  # pragma: no cover - every name has a letter by now
        raise invalid("given_name", "must contain at least one letter") from None


def whole_number(field: str, value: str | None, message: str) -> int | None:
    """``value`` as a whole number of 0 to 2^63 - 1 written in ASCII digits (None when absent). Raises a
    422 naming ``field`` with ``message`` otherwise (``²`` or Arabic-Indic digits, signs, spaces, too big)."""
    if value is None:
        return None
    if not _ASCII_DIGITS.fullmatch(value) or int(value) > MAX_WHOLE_NUMBER:
        raise invalid(field, message)
    return int(value)


def cursor_seq(value: str | None) -> int | None:
    """The ``seq`` a page ``cursor`` stands for (None when absent). Raises a 422 for anything else."""
    return whole_number("cursor", value, "must be the next_cursor of the previous page")


def queries(ig: IgRequest) -> AuditQueries:
    """The audit queries on the request's audit database."""
    return AuditQueries(ig.engine, AuditIndex(ig.metadata))


# -- views -----------------------------------------------------------------------------------------


def partial_note(views: list[EventView]) -> str | None:
    """:data:`~familyctx_gateway.audit_scope.PARTIAL_VIEW_NOTE` when any of ``views`` is partial."""
    return PARTIAL_VIEW_NOTE if any(v.partial for v in views) else None


def summary(view: EventView) -> AuditEventSummary:
    """The API shape of one indexed record, as the asking council may see it (``view``)."""
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
        view="partial" if view.partial else "full",
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
