"""How many data requests run at once: per worker and for the whole gateway (issue 6, "Limits").

A data request (``POST /v1/searches``, ``POST /v1/family-context``) holds one slot of its worker
(token ``iss`` and ``sub``) and one of the gateway from the moment its token and body are valid until
its answer has been sent (or it failed, or was cancelled, e.g. at the end of a graceful shutdown). One
more than ``limits.max_in_flight_per_user`` or ``limits.max_in_flight_total`` is refused at once with
:class:`~familyctx_gateway.errors.TooManyInFlight` (429, ``Retry-After``), and the refusal is audited
``denied`` like every other refused data request (no personal data is logged: the log line says which
limit, never who). Health, readiness, JWKS, sources, break glass and the IG audit API hold no slot:
:func:`search_slot` and :func:`family_context_slot` are dependencies of the two data routers only
(see :func:`familyctx_gateway.app.create_app`).

Why no library: the rate limiters for Starlette/FastAPI (slowapi over ``limits``) count requests per
time window, not requests in progress, and uvicorn's ``--limit-concurrency`` is one process-wide
counter answering 503 without ``Retry-After``, for every path, before the token is known, so it cannot
be per worker or audited. Why no ``asyncio.Semaphore`` per worker: a request past a limit is refused,
never queued, so nothing ever waits on a semaphore; what is left is a counter, kept in a dict whose
entry is removed when its worker's last request ends. The dict therefore holds at most
``max_in_flight_total`` entries whatever the number of workers seen. The counters are changed only on
the event loop's thread with no ``await`` between the check and the increment, so no lock is needed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any

from familyctx_gateway.api.deps import CurrentPrincipal, Gateway, RequestId
from familyctx_gateway.api.schemas import FamilyContextRequest, SearchRequest
from familyctx_gateway.audit import AuditEvent, AuditOutcome, AuditWriteFailed
from familyctx_gateway.audit_content import current_trace_id, searched_for
from familyctx_gateway.auth import Principal
from familyctx_gateway.errors import AuditUnavailable, TooManyInFlight

if TYPE_CHECKING:
    from familyctx_gateway.app import GatewayContext
    from familyctx_gateway.settings import LimitsSettings

__all__ = ["InFlightLimits", "family_context_slot", "search_slot"]

log = logging.getLogger("familyctx_gateway.limits")

#: A worker, as the limits count them: (token issuer, token subject).
UserKey = tuple[str, str]


class InFlightLimits:
    """Counts data requests in progress per worker and in total, and refuses one past either limit.

    ``per_user`` / ``total``: the most in progress at once (>= 1); ``retry_after_seconds``: the
    ``Retry-After`` of a refusal. Use :meth:`slot` (a context manager) around the request. Not
    thread-safe: use it from one event loop.
    """

    def __init__(self, *, per_user: int, total: int, retry_after_seconds: int) -> None:
        if per_user < 1 or total < 1 or retry_after_seconds < 1:
            raise ValueError("per_user, total and retry_after_seconds must be at least 1")
        self.per_user = per_user
        self.total = total
        self.retry_after_seconds = retry_after_seconds
        self._by_user: dict[UserKey, int] = {}
        self._total = 0

    @classmethod
    def from_settings(cls, settings: LimitsSettings) -> InFlightLimits:
        """The limits of the ``limits`` settings section."""
        return cls(
            per_user=settings.max_in_flight_per_user,
            total=settings.max_in_flight_total,
            retry_after_seconds=settings.retry_after_seconds,
        )

    @property
    def in_flight(self) -> int:
        """Data requests in progress now, over all workers."""
        return self._total

    @property
    def workers_in_flight(self) -> int:
        """Workers with at least one request in progress (the size of the bookkeeping)."""
        return len(self._by_user)

    def in_flight_of(self, user: UserKey) -> int:
        """Requests of ``user`` (issuer, subject) in progress now."""
        return self._by_user.get(user, 0)

    def acquire(self, user: UserKey) -> None:
        """Take a slot for ``user``. Raises TooManyInFlight (scope ``"user"`` first, then ``"total"``)
        when either limit is reached; then nothing is taken."""
        mine = self._by_user.get(user, 0)
        if mine >= self.per_user:
            raise TooManyInFlight("user", self.per_user, self.retry_after_seconds)
        if self._total >= self.total:
            raise TooManyInFlight("total", self.total, self.retry_after_seconds)
        self._by_user[user] = mine + 1
        self._total += 1

    def release(self, user: UserKey) -> None:
        """Give back a slot taken by :meth:`acquire`; the worker's entry goes when it reaches zero.
        Raises RuntimeError if ``user`` holds no slot (a bug: every acquire has exactly one release)."""
        mine = self._by_user.get(user, 0)
        if mine <= 0:
            raise RuntimeError("release without acquire")
        if mine == 1:
            del self._by_user[user]
        else:
            self._by_user[user] = mine - 1
        self._total -= 1

    @contextmanager
    def slot(self, user: UserKey) -> Iterator[None]:
        """Hold a slot for ``user`` while the block runs; released however the block ends (an error,
        ``asyncio.CancelledError`` included). Raises TooManyInFlight before entering when full."""
        self.acquire(user)
        try:
            yield
        finally:
            self.release(user)


def _user(principal: Principal) -> UserKey:
    return (principal.issuer, principal.sub)


@asynccontextmanager
async def _held(
    *,
    gateway: GatewayContext,
    principal: Principal,
    request_id: str,
    endpoint: str,
    purpose: str,
    case_reference: str,
    break_glass_id: str | None,
    query_terms: dict[str, Any],
) -> AsyncIterator[None]:
    """Hold a slot while the request runs, or audit the refusal (``denied``, 429) and raise
    TooManyInFlight; AuditUnavailable (503) when that record cannot be committed."""
    limits = gateway.limits
    try:
        limits.acquire(_user(principal))
    except TooManyInFlight as refused:
        log.info(
            "in-flight limit reached request_id=%s scope=%s limit=%d in_flight=%d",
            request_id,
            refused.scope,
            refused.limit,
            limits.in_flight,
        )
        record = AuditEvent(
            request_id=request_id,
            user_sub=principal.sub,
            user_name=principal.name,
            organisation=principal.organisation,
            roles=list(principal.roles),
            client=principal.client,
            jti=principal.jti,
            endpoint=endpoint,
            outcome=AuditOutcome.denied,
            http_status=refused.status,
            purpose=purpose,
            case_reference=case_reference,
            issuer=principal.issuer,
            query_terms=query_terms,
            subjects=searched_for(query_terms),
            break_glass_id=break_glass_id,
            trace_id=current_trace_id(),
        )
        try:
            await gateway.audit.record(record)
        except AuditWriteFailed:
            raise AuditUnavailable() from None
        raise
    try:
        yield
    finally:
        limits.release(_user(principal))


async def search_slot(
    body: SearchRequest, gateway: Gateway, principal: CurrentPrincipal, request_id: RequestId
) -> AsyncIterator[None]:
    """FastAPI dependency of ``POST /v1/searches``: a slot while the search runs and its answer is sent.

    Runs after the token (401) and the body (422) are checked. Raises TooManyInFlight (429, audited
    ``denied`` with the request's purpose, case reference and query terms, as ``run_audited`` would)."""
    async with _held(
        gateway=gateway,
        principal=principal,
        request_id=request_id,
        endpoint="POST /v1/searches",
        purpose=body.purpose.value,
        case_reference=body.case_reference,
        break_glass_id=body.break_glass_id,
        # The same terms as the route's own audit record (api/routes/searches.py).
        query_terms=body.model_dump(
            mode="json", exclude={"purpose", "case_reference", "break_glass_id"}, exclude_none=True
        ),
    ):
        yield


async def family_context_slot(
    body: FamilyContextRequest, gateway: Gateway, principal: CurrentPrincipal, request_id: RequestId
) -> AsyncIterator[None]:
    """FastAPI dependency of ``POST /v1/family-context``: like :func:`search_slot`."""
    async with _held(
        gateway=gateway,
        principal=principal,
        request_id=request_id,
        endpoint="POST /v1/family-context",
        purpose=body.purpose.value,
        case_reference=body.case_reference,
        break_glass_id=body.break_glass_id,
        # The same terms as the route's own audit record (api/routes/family_context.py).
        query_terms={"subject": body.subject.model_dump(mode="json")},
    ):
        yield
