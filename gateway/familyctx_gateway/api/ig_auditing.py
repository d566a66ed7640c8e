"""The IG API's own audit: every ``/v1/audit`` request is an ``ig_access`` record of the audit log.

Order, for every endpoint: the gateway policy decides (action ``read_audit``, or ``review_break_glass``;
IG officers only by default); a refusal is audited ``denied`` and answered 403. An IG officer whose token
names no council (organisation) is refused the same way: their scope is their council. Then the read
runs; then its ``ig_access`` record (what was asked, which records were read) is committed, and only
then is the answer returned (fail closed: 503 and no data when the record cannot be committed). So IG
access is visible to other IG officers like any other access.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from familyctx_gateway.access import AccessRefused
from familyctx_gateway.api.deps import authorise
from familyctx_gateway.audit_queries import SubjectQuery
from familyctx_gateway.audit_record import AuditEvent, AuditOutcome, RecordClass, Subject, SubjectKind
from familyctx_gateway.audit_reviews import ReviewExists, commit_review
from familyctx_gateway.audit_schema import metadata
from familyctx_gateway.auth import Principal
from familyctx_gateway.errors import AuditUnavailable, Forbidden

if TYPE_CHECKING:
    from familyctx_gateway.app import GatewayContext

__all__ = ["IgRequest", "begin_ig_request", "json_terms", "run_read", "searched_for"]

log = logging.getLogger("familyctx_gateway.api.ig_audit")

_T = TypeVar("_T")


def _trace_id() -> str | None:
    """The current OpenTelemetry trace id (32 hex digits), or None when there is no sampled span."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - tracing is optional
        return None
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None


def json_terms(values: Mapping[str, Any]) -> dict[str, Any]:
    """``values`` without None, with dates and times as ISO 8601 text (the record must be JSON)."""
    out: dict[str, Any] = {}
    for key, value in values.items():
        if value is None:
            continue
        out[key] = value.isoformat() if isinstance(value, dt.date | dt.datetime) else value
    return out


def searched_for(subject: SubjectQuery | None, **raw: Any) -> list[Subject]:
    """The person an IG officer asked about, as a ``searched_for`` subject of their ``ig_access`` record
    (``raw``: the names as typed), so that IG lookups show in later subject access reports too."""
    if subject is None:
        return []
    born = subject.date_of_birth.isoformat() if subject.date_of_birth is not None else None
    return [
        Subject(
            SubjectKind.searched_for,
            nhs_number=subject.nhs_number,
            given_name=raw.get("given_name"),
            family_name=raw.get("family_name"),
            date_of_birth=born,
        )
    ]


@dataclass(slots=True)
class IgRequest:
    """An authorised IG API request: ``council`` is the IG officer's scope (GSS code); ``role`` the
    role the policy authorised; ``query_terms`` what was asked (recorded)."""

    gateway: GatewayContext
    principal: Principal
    request_id: str
    endpoint: str
    role: str
    council: str
    query_terms: dict[str, Any]
    subjects: list[Subject]

    @property
    def engine(self) -> sa.Engine:
        """The audit database."""
        return self.gateway.audit.engine

    @property
    def metadata(self) -> sa.MetaData:
        """The audit tables (``familyctx_gateway.audit_schema``)."""
        return metadata

    async def record(
        self,
        *,
        http_status: int = 200,
        read: Sequence[int] | None = None,
        count: int | None = None,
        review: dict[str, Any] | None = None,
        outcome: AuditOutcome = AuditOutcome.success,
    ) -> None:
        """Commit this request's ``ig_access`` record: ``read``: the seqs of the records returned;
        ``count``: how many things were returned; ``review``: ``{break_glass_id, note}`` for a review;
        ``outcome``: ``error`` for an answer such as 404. Raises AuditUnavailable (503) when it is not
        committed."""
        terms = dict(self.query_terms)
        if read is not None:
            terms["records_read"] = list(read)
        if count is not None:
            terms["count"] = count
        event = _event(self, outcome, http_status, terms, self.subjects, self.role, review)
        await _commit(self.gateway, event)
        log.info(
            "ig access request_id=%s endpoint=%s council=%s count=%s",
            self.request_id,
            self.endpoint,
            self.council,
            count if count is not None else (len(read) if read is not None else "-"),
        )

    async def record_review(self, review: dict[str, Any], *, http_status: int = 201) -> int:
        """Commit this request's ``ig_access`` record of a break-glass review (``review``:
        ``{break_glass_id, note}``) in a transaction of its own that refuses a second review by the same
        council (:func:`~familyctx_gateway.audit_reviews.commit_review`); returns its seq. Raises
        :class:`~familyctx_gateway.audit_reviews.ReviewExists` (nothing written), or AuditUnavailable
        (503) when it is not committed."""
        event = _event(
            self, AuditOutcome.success, http_status, dict(self.query_terms), self.subjects, self.role, review
        )
        try:
            seq = await asyncio.to_thread(commit_review, self.gateway.audit, event)
        except ReviewExists:
            raise
        except Exception as exc:  # the database, or anything that kept the record from committing
            log.error("ig review not recorded request_id=%s error=%s", self.request_id, type(exc).__name__)
            raise AuditUnavailable() from None
        log.info(
            "ig access request_id=%s endpoint=%s council=%s review",
            self.request_id,
            self.endpoint,
            self.council,
        )
        return seq


def _event(
    ig: IgRequest | _Pending,
    outcome: AuditOutcome,
    status: int,
    terms: dict[str, Any],
    subjects: list[Subject],
    role: str | None,
    review: dict[str, Any] | None = None,
) -> AuditEvent:
    p = ig.principal
    return AuditEvent(
        request_id=ig.request_id,
        user_sub=p.sub,
        user_name=p.name,
        organisation=p.organisation,
        roles=list(p.roles),
        client=p.client,
        jti=p.jti,
        endpoint=ig.endpoint,
        outcome=outcome,
        http_status=status,
        record_class=RecordClass.ig_access,
        issuer=p.issuer,
        role=role,
        query_terms=terms,
        subjects=subjects,
        trace_id=_trace_id(),
        review=review,
    )


@dataclass(slots=True)
class _Pending:
    principal: Principal
    request_id: str
    endpoint: str


async def _commit(gateway: GatewayContext, event: AuditEvent) -> None:
    try:
        await gateway.audit.record(event)
    except Exception as exc:  # AuditWriteFailed, or anything that kept the record from committing
        log.error("ig access not recorded request_id=%s error=%s", event.request_id, type(exc).__name__)
        raise AuditUnavailable() from None


async def begin_ig_request(
    gateway: GatewayContext,
    principal: Principal,
    request_id: str,
    endpoint: str,
    *,
    query_terms: Mapping[str, Any] | None = None,
    subjects: list[Subject] | None = None,
    action: str = "read_audit",
) -> IgRequest:
    """Authorise an IG API request (``action``: ``read_audit`` or ``review_break_glass``).

    Raises Forbidden (403: NoRoles or AccessRefused, after committing a ``denied`` ``ig_access``
    record), or AuditUnavailable (503) when that record cannot be committed.
    """
    terms = json_terms(query_terms or {})
    try:
        authorised = authorise(gateway, principal, action)
        if not principal.organisation:
            raise AccessRefused(
                "Your access token names no council (organisation), and an IG officer sees the audit of "
                "their own council; ask your identity provider's administrators to add it"
            )
    except Forbidden as refused:
        pending = _Pending(principal, request_id, endpoint)
        await _commit(
            gateway, _event(pending, AuditOutcome.denied, refused.status, terms, subjects or [], None)
        )
        raise
    return IgRequest(
        gateway,
        principal,
        request_id,
        endpoint,
        authorised.role,
        principal.organisation,
        terms,
        subjects or [],
    )


async def run_read(what: str, read: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    """Run the blocking ``read`` in a worker thread. Raises AuditUnavailable (503) on a database error
    (logged with ``what``, never with the query)."""
    try:
        return await asyncio.to_thread(read, *args, **kwargs)
    except (SQLAlchemyError, OSError) as exc:
        log.error("audit read failed what=%s error=%s", what, type(exc).__name__)
        raise AuditUnavailable() from None
