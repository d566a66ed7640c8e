"""Calling council adapters (familycontext.v1 AdapterService) with a deadline per council and per request.

The network is behind a small :class:`AdapterTransport` protocol (the httpx model): production uses
:class:`GrpcTransport` (a ``grpc.aio`` mutual-TLS channel per adapter, opened at startup and closed at
shutdown); a test may pass any object with the same three coroutines instead. Every call carries a
requester assertion signed for that adapter's council (metadata ``x-familyctx-assertion``, audience =
its GSS code) and the request id (``x-request-id``); a call for data first awaits the request's
:data:`before_data_call` hook, if any (break-glass notifications). Every call ends in one explicit
:class:`CallResult` state: ``ok``, ``unavailable``, ``timed_out``, ``refused`` (the adapter refused the
gateway's credentials or assertion) or ``error``, never an exception. An adapter answering gRPC
``NOT_FOUND`` ("none of the local_person_ids asked for exist here") has answered correctly: the state
is ``ok`` with ``not_found`` set and no response.

Staying up when councils don't (settings ``resilience``; docs/gateway-api.md): each call's deadline is
the smaller of its adapter's ``deadline_ms`` and what is left of the request's budget
(:class:`RequestBudget`, ``request_deadline_ms``); a council not called because the budget ran out is
``timed_out``. gRPC retries UNAVAILABLE on its own (the channel's service-config ``retryPolicy``, with
backoff and jitter, within the call's deadline). A :class:`~familyctx_gateway.breaker.CircuitBreaker`
per adapter answers ``circuit_open`` at once, with no network call, after repeated failed requests (the
calls of one request count once). An answer larger than ``max_answer_mib`` (gRPC RESOURCE_EXHAUSTED) or
one that does not parse ends in ``error`` with a detail that says so.

The council registry and health watching (:mod:`familyctx_gateway.registry`,
:mod:`familyctx_gateway.health`): a :class:`Federation` is an immutable snapshot of the councils;
:meth:`Federation.updated` makes the next one, keeping the clients of unchanged councils (their
breakers, Describe cache and health) and retiring the others, whose channels are closed by
:meth:`AdapterClient.close` once no request can still use them. A council whose adapter reports
NOT_SERVING (grpc.health.v1) is ``unavailable`` at once, with no data call.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

import grpc
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from familyctx.trust.assertion import ASSERTION_METADATA_KEY, AssertionSigner, Requester
from familyctx_gateway.adapter_trust import ClientTls, channel_options
from familyctx_gateway.api.schemas import SourceState
from familyctx_gateway.breaker import CallEnd, CircuitBreaker
from familyctx_gateway.health import HealthRecord, HealthStatus
from familyctx_gateway.settings import AdapterTarget, ResilienceSettings

__all__ = [
    "AdapterClient",
    "AdapterTransport",
    "CallResult",
    "Federation",
    "GrpcTransport",
    "NOT_SERVING_DETAIL",
    "REMOVED_DETAIL",
    "RequestBudget",
    "SourceRecord",
    "TransportFactory",
    "before_data_call",
    "grpc_transport_factory",
    "logged_calls",
    "resilience_channel_options",
]

log = logging.getLogger("familyctx_gateway.adapter_client")

Metadata = tuple[tuple[str, str], ...]

#: Awaited with a council's GSS code before each call for data (``find_people``,
#: ``get_family_context``) made for the current request, before its assertion is signed; whatever it
#: raises fails the call (nothing is sent). Set per request by ``run_audited`` to notify each council
#: asked under a break-glass grant (:mod:`familyctx_gateway.break_glass_use`).
before_data_call: ContextVar[Callable[[str], Awaitable[None]] | None] = ContextVar(
    "familyctx_before_data_call", default=None
)


@dataclass(slots=True)
class _CallTally:
    """The adapter calls of one request: how many ended in each outcome, and the slowest."""

    outcomes: Counter[str] = field(default_factory=Counter)
    slowest: tuple[int, str] = (-1, "")
    #: Calls sent and not (yet) ended: at the end of the block, the calls cut off (cancelled).
    unfinished: int = 0

    def add(self, gss_code: str, outcome: str, latency_ms: int) -> None:
        self.outcomes[outcome] += 1
        if latency_ms > self.slowest[0]:
            self.slowest = (latency_ms, gss_code)


_tally: ContextVar[_CallTally | None] = ContextVar("familyctx_call_tally", default=None)


@contextlib.contextmanager
def logged_calls(request_id: str) -> Iterator[None]:
    """Log one summary line for every adapter call made inside the block (``asyncio.gather`` tasks too).

    A request fanned out to fifty councils would otherwise log fifty lines: a call that ends ``ok`` or
    ``not_found`` is logged on its own only at DEBUG; any other outcome still gets its own INFO line
    (``refused``: WARNING), and on leaving the block one INFO line sums them up::

        adapter calls request_id=<id> calls=50 ok=48 timed_out=2 slowest=E08000035 slowest_ms=2001

    (counts by outcome: ``ok``, ``not_found``, ``unavailable``, ``timed_out``, ``circuit_open``,
    ``refused``, ``error``, and ``cut_off`` for calls sent whose answer was never used because the
    request was cancelled: the gateway stopping, or the client gone; nothing is logged when no call was
    made). No personal data.
    """
    tally = _CallTally()
    token = _tally.set(tally)
    try:
        yield
    finally:
        _tally.reset(token)
        if tally.unfinished:
            tally.outcomes["cut_off"] += tally.unfinished
        if tally.outcomes:
            counts = " ".join(f"{outcome}={n}" for outcome, n in sorted(tally.outcomes.items()))
            log.info(
                "adapter calls request_id=%s calls=%d %s slowest=%s slowest_ms=%d",
                request_id,
                tally.outcomes.total(),
                counts,
                tally.slowest[1],
                tally.slowest[0],
            )


def _log_call(request_id: str, gss_code: str, method: str, outcome: str, state: SourceState, ms: int) -> None:
    """One call's log line (see :func:`logged_calls` for the levels) and its place in the tally."""
    tally = _tally.get()
    if tally is not None:
        tally.add(gss_code, outcome, ms)
    level = (
        logging.WARNING
        if state is SourceState.refused
        else logging.DEBUG
        if state is SourceState.ok
        else logging.INFO
    )
    if log.isEnabledFor(level):
        log.log(
            level,
            "adapter call request_id=%s council=%s method=%s state=%s latency_ms=%d",
            request_id,
            gss_code,
            method,
            outcome,
            ms,
        )


#: A call is not started with less than this left of the request's budget (ms): it could not finish.
MIN_CALL_MS = 50

#: The gRPC service whose every method is a read (idempotent): all may be retried.
ADAPTER_SERVICE = "familycontext.v1.AdapterService"

#: The detail of a council not asked because its adapter reports NOT_SERVING (grpc.health.v1).
NOT_SERVING_DETAIL = "not asked: its adapter reports not serving (grpc.health.v1)"
#: The detail of a call to a council removed from the registry after its channel was closed.
REMOVED_DETAIL = "not asked: the council was removed from the registry"


class RequestBudget:
    """The time one request may spend calling adapters: ``total_ms`` from creation (monotonic clock).

    :meth:`start` makes it the current request's budget (a context variable holding a weak reference,
    so that the budget ends with its owner, the request's
    :class:`~familyctx_gateway.sources.SourceTracker`); every :meth:`AdapterClient.call` made in that
    context (``asyncio.gather`` tasks included) is capped by :meth:`remaining_ms`.
    """

    def __init__(self, total_ms: int) -> None:
        self.total_ms = total_ms
        self._ends_at = time.monotonic() + total_ms / 1000

    def remaining_ms(self) -> int:
        """Milliseconds left (0 when spent)."""
        return max(0, int((self._ends_at - time.monotonic()) * 1000))

    @classmethod
    def start(cls, total_ms: int) -> RequestBudget:
        """A new budget of ``total_ms``, made current; the caller keeps the returned object alive for as
        long as the request runs."""
        budget = cls(total_ms)
        _request_budget.set(weakref.ref(budget))
        return budget

    @staticmethod
    def current() -> RequestBudget | None:
        """The budget of the request running in this context, if any."""
        ref = _request_budget.get()
        return ref() if ref is not None else None


_request_budget: ContextVar[weakref.ref[RequestBudget] | None] = ContextVar(
    "familyctx_request_budget", default=None
)


def resilience_channel_options(resilience: ResilienceSettings) -> list[tuple[str, Any]]:
    """gRPC channel options for ``resilience``: the largest answer taken
    (``grpc.max_receive_message_length``, bytes) and, when ``retry.max_attempts`` > 1, gRPC's retry
    policy for every method of the AdapterService on UNAVAILABLE only (gRFC A6 service config)."""
    retry = resilience.retry
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", resilience.max_answer_mib * 1024 * 1024)
    ]
    if retry.max_attempts > 1:
        config = {
            "methodConfig": [
                {
                    "name": [{"service": ADAPTER_SERVICE}],
                    "retryPolicy": {
                        "maxAttempts": retry.max_attempts,
                        "initialBackoff": f"{retry.initial_backoff_ms / 1000:.3f}s",
                        "maxBackoff": f"{retry.max_backoff_ms / 1000:.3f}s",
                        "backoffMultiplier": retry.backoff_multiplier,
                        "retryableStatusCodes": ["UNAVAILABLE"],
                    },
                }
            ]
        }
        options += [("grpc.enable_retries", 1), ("grpc.service_config", json.dumps(config))]
    else:
        options.append(("grpc.enable_retries", 0))
    return options


class AdapterTransport(Protocol):
    """One council's AdapterService. ``deadline_seconds``: the gRPC deadline; ``metadata``: gRPC metadata.

    Implementations raise ``grpc.aio.AioRpcError`` (or ``asyncio.TimeoutError``) on failure, and return
    None for an answer whose bytes do not parse (as ``grpc.aio`` does).
    """

    async def describe(
        self, request: adapter_pb2.DescribeRequest, *, deadline_seconds: float, metadata: Metadata
    ) -> adapter_pb2.DescribeResponse: ...

    async def find_people(
        self, request: adapter_pb2.FindPeopleRequest, *, deadline_seconds: float, metadata: Metadata
    ) -> adapter_pb2.FindPeopleResponse: ...

    async def get_family_context(
        self, request: adapter_pb2.GetFamilyContextRequest, *, deadline_seconds: float, metadata: Metadata
    ) -> adapter_pb2.GetFamilyContextResponse: ...

    async def close(self) -> None: ...


class HealthCheckingTransport(Protocol):
    """A transport that can also ask grpc.health.v1 ``Check`` for ``service``: returns the
    ``HealthCheckResponse.ServingStatus`` number; raises as the data calls do. Optional: a transport
    without ``check_health`` is reported ``not_served``."""

    async def check_health(self, service: str, *, deadline_seconds: float) -> int: ...


class GrpcTransport:
    """A ``grpc.aio`` secure channel to ``address`` with ``credentials`` (mutual TLS) and channel
    ``options`` (e.g. ``grpc.ssl_target_name_override``). There is no plaintext variant."""

    def __init__(
        self, address: str, credentials: grpc.ChannelCredentials, options: Sequence[tuple[str, Any]] = ()
    ) -> None:
        self._channel = grpc.aio.secure_channel(address, credentials, options=list(options))
        self._stub = adapter_pb2_grpc.AdapterServiceStub(self._channel)

    async def describe(self, request: Any, *, deadline_seconds: float, metadata: Metadata) -> Any:
        return await self._stub.Describe(request, timeout=deadline_seconds, metadata=metadata)

    async def find_people(self, request: Any, *, deadline_seconds: float, metadata: Metadata) -> Any:
        return await self._stub.FindPeople(request, timeout=deadline_seconds, metadata=metadata)

    async def get_family_context(self, request: Any, *, deadline_seconds: float, metadata: Metadata) -> Any:
        return await self._stub.GetFamilyContext(request, timeout=deadline_seconds, metadata=metadata)

    async def check_health(self, service: str, *, deadline_seconds: float) -> int:
        """grpc.health.v1 ``Check`` of ``service`` on this channel (no assertion: Health is not data)."""
        stub = health_pb2_grpc.HealthStub(self._channel)
        answer = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=deadline_seconds)
        return int(answer.status)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run (the channel is SHUTDOWN)."""
        return self._channel.get_state() is grpc.ChannelConnectivity.SHUTDOWN

    async def close(self) -> None:
        await self._channel.close()


@dataclass(slots=True)
class CallResult:
    """The end of one call to one council. ``response`` is set only when ``state`` is ``ok``.

    ``detail`` is a short, non-personal reason ("connection refused", "deadline 2000 ms exceeded").
    ``latency_ms`` is wall time of the call in milliseconds. ``not_found``: the adapter answered gRPC
    NOT_FOUND (none of the ids asked for exist there); the council is healthy (``state`` ``ok``) but there
    is no ``response``.
    """

    gss_code: str
    name: str
    state: SourceState
    latency_ms: int
    detail: str | None = None
    response: Any = None
    not_found: bool = False
    #: The adapter rejected the question itself (INVALID_ARGUMENT, OUT_OF_RANGE): the council is working,
    #: so this does not count against its circuit breaker (one worker's odd query must not cut a council
    #: off for everyone).
    rejected_query: bool = False

    @property
    def ok(self) -> bool:
        """True when the council answered with a response (not NOT_FOUND, not a failure)."""
        return self.state is SourceState.ok and not self.not_found

    @property
    def failed(self) -> bool:
        """True when the council did not answer as the contract allows (unavailable, timed out, refused,
        error)."""
        return self.state is not SourceState.ok

    @property
    def outcome(self) -> str:
        """For log lines: the state, or ``not_found``."""
        return "not_found" if self.not_found else self.state.value


@dataclass(slots=True)
class SourceRecord:
    """What the gateway last saw of a council (for ``GET /v1/sources``)."""

    state: SourceState = SourceState.unknown
    detail: str | None = None
    latency_ms: int | None = None
    last_checked_at: dt.datetime | None = None


#: Words in gRPC's UNAVAILABLE details that mean the TLS handshake, not the network, failed: our check of
#: the adapter's certificate (chain or name), or the adapter closing the connection during setup, which
#: is what a client certificate it does not accept looks like from here.
_HANDSHAKE_MARKERS = ("handshake", "ssl", "tls", "certificate", "verification")
_CLOSED_MARKERS = ("socket closed",)


#: The detail of an answer whose bytes do not parse as the contract's message.
MALFORMED_ANSWER = "malformed answer: its bytes are not the contract's message"


#: gRPC codes by which an adapter rejects the question, not fails to answer it.
_REJECTED_QUERY_CODES = frozenset({grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.OUT_OF_RANGE})


def _describe_failure(
    exc: BaseException,
    deadline_ms: int,
    council: str = "the council",
    *,
    budget: RequestBudget | None = None,
    max_answer_mib: int | None = None,
) -> tuple[SourceState, str]:
    timed_out = f"no answer within the {deadline_ms} ms deadline"
    if budget is not None:
        timed_out = (
            f"no answer within the {deadline_ms} ms left of the request's {budget.total_ms} ms deadline"
        )
    if isinstance(exc, asyncio.TimeoutError):
        return SourceState.timed_out, timed_out
    if isinstance(exc, grpc.aio.AioRpcError):
        code = exc.code()
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return SourceState.timed_out, timed_out
        if code == grpc.StatusCode.RESOURCE_EXHAUSTED and max_answer_mib is not None:
            details = (exc.details() or "").lower()
            if "received message larger than max" in details or "message larger than" in details:
                return SourceState.error, (
                    f"answer larger than the {max_answer_mib} MiB limit: cut off and not used"
                )
        if code == grpc.StatusCode.UNAVAILABLE:
            details = (exc.details() or "").lower()
            if any(marker in details for marker in _HANDSHAKE_MARKERS):
                return SourceState.unavailable, (
                    "adapter not reachable: the mutual TLS handshake failed (certificate not trusted, "
                    "wrong name, or the adapter refused the gateway's client certificate)"
                )
            if any(marker in details for marker in _CLOSED_MARKERS):
                return SourceState.unavailable, (
                    "adapter not reachable: it closed the connection during setup (it may not accept the "
                    "gateway's client certificate)"
                )
            # The adapter's own fixed wording (familyctx_adapter.errors), never personal data.
            if "disclosure log unavailable" in details:
                return SourceState.unavailable, (
                    "the adapter answered but could not record the disclosure in its own log, so it sent "
                    "nothing (fail closed)"
                )
            if "warehouse did not answer" in details:
                return SourceState.unavailable, "the council's warehouse did not answer"
            return SourceState.unavailable, "adapter not reachable"
        if code == grpc.StatusCode.UNAUTHENTICATED:
            # The gateway itself was refused (its certificate or assertion): a fault for the operators.
            return SourceState.refused, (
                f"{council}'s adapter refused the gateway's credentials (certificate or assertion): "
                "ask the federation's operators"
            )
        if code == grpc.StatusCode.PERMISSION_DENIED:
            # The requester was refused by the council's sharing policy: a decision, not a fault.
            return SourceState.refused, f"{council} refused this request under its sharing policy"
        # The adapter's own message might quote a query: report only the status code.
        return SourceState.error, f"adapter answered {code.name}"
    return SourceState.error, f"adapter call failed ({type(exc).__name__})"


class AdapterClient:
    """Calls one council's adapter with its deadline and turns every outcome into a :class:`CallResult`.

    ``breaker``: its circuit breaker (default: one with ``target.resilience.breaker``, logging as
    ``target.gss_code``)."""

    def __init__(
        self,
        target: AdapterTarget,
        transport: AdapterTransport,
        signer: AssertionSigner,
        *,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.target = target
        self.transport = transport
        self.signer = signer
        self.breaker = breaker or CircuitBreaker(target.resilience.breaker, council=target.gss_code)
        self.last = SourceRecord()
        #: The last grpc.health.v1 check (:mod:`familyctx_gateway.health`).
        self.health = HealthRecord()
        #: Calls on the network now; retired clients are closed only when none is left.
        self.in_flight = 0
        #: True once the channel is closed (the council was removed from the registry).
        self.closed = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._describe: tuple[float, Any] | None = None

    @property
    def gss_code(self) -> str:
        """The council's GSS code: the audience of every assertion sent to this adapter."""
        return self.target.gss_code

    async def call(self, method: str, request: Any, *, requester: Requester) -> CallResult:
        """Call ``method`` (``describe`` | ``find_people`` | ``get_family_context``) on the transport.

        Signs one assertion for ``requester`` with ``audience`` = this council's GSS code and sends it
        as metadata ``x-familyctx-assertion``, with ``x-request-id`` = ``requester.request_id``.
        ``describe`` never carries break glass (no data is asked for: the flag and the worker's reason
        go only to councils asked for data); a call for data first awaits :data:`before_data_call`.

        Not called at all (no hook, no assertion, no network): ``timed_out`` when less than
        :data:`MIN_CALL_MS` is left of the request's :class:`RequestBudget`; ``circuit_open`` while the
        adapter's breaker is open (or its one half-open trial is in flight; the breaker counts failed
        requests, keyed on ``requester.request_id``, not calls); ``unavailable`` while the
        adapter reports NOT_SERVING (:data:`NOT_SERVING_DETAIL`), or once the client is closed
        (:data:`REMOVED_DETAIL`).
        """
        deadline_ms = self.target.deadline_ms
        request_id = requester.request_id
        if self.closed:
            return self._not_called(method, request_id, SourceState.unavailable, REMOVED_DETAIL)
        if self.health.status is HealthStatus.not_serving:
            return self._not_called(method, request_id, SourceState.unavailable, NOT_SERVING_DETAIL)
        budget = RequestBudget.current()
        capped: RequestBudget | None = None
        if budget is not None:
            left = budget.remaining_ms()
            if left < MIN_CALL_MS:
                return self._not_called(
                    method,
                    request_id,
                    SourceState.timed_out,
                    f"not asked: the request's {budget.total_ms} ms deadline had run out",
                )
            if left < deadline_ms:
                deadline_ms, capped = left, budget
        if not self.breaker.allow():
            view = self.breaker.view()
            when = (
                f"the next trial call in {view.retry_in_seconds:.0f} s"
                if view.retry_in_seconds is not None
                else "a trial call is in flight"
            )
            return self._not_called(
                method,
                request_id,
                SourceState.circuit_open,
                f"not asked: circuit open after {view.failures} requests in a row whose calls to it "
                f"failed; {when}",
            )
        self.in_flight += 1
        self._idle.clear()
        tally = _tally.get()
        if tally is not None:
            tally.unfinished += 1  # until it ends normally: a cancelled call stays counted (cut off)
        try:
            result = await self._call(method, request, requester, deadline_ms, capped)
            if tally is not None:
                tally.unfinished -= 1
        except BaseException:
            # cancelled, or the hook refused: frees a trial
            self.breaker.record(CallEnd.inconclusive, request_id=request_id)
            raise
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()
        # Several failed calls of one request count once (the breaker keys them on the request id).
        if result.state in (SourceState.ok, SourceState.refused) or result.rejected_query:
            self.breaker.record(CallEnd.success, request_id=request_id)
        elif result.state is SourceState.timed_out and capped is not None:
            self.breaker.record(CallEnd.inconclusive, request_id=request_id)
        else:
            self.breaker.record(CallEnd.failure, request_id=request_id)
        return result

    def _not_called(self, method: str, request_id: str, state: SourceState, detail: str) -> CallResult:
        result = CallResult(self.gss_code, self.target.name, state, 0, detail)
        _log_call(request_id, self.gss_code, method, state.value, state, 0)
        self.last = SourceRecord(state, detail, None, dt.datetime.now(dt.UTC))
        return result

    async def _call(
        self,
        method: str,
        request: Any,
        requester: Requester,
        deadline_ms: int,
        capped: RequestBudget | None,
    ) -> CallResult:
        request_id = requester.request_id
        if method == "describe":
            if requester.break_glass:
                requester = replace(requester, break_glass=False, break_glass_reason="")
        else:
            hook = before_data_call.get()
            if hook is not None:
                await hook(self.gss_code)
        assertion = self.signer.sign(requester, audience=self.gss_code)
        metadata: Metadata = (("x-request-id", request_id), (ASSERTION_METADATA_KEY, assertion))
        rpc: Callable[..., Awaitable[Any]] = getattr(self.transport, method)
        started = time.perf_counter()
        try:
            # gRPC enforces the deadline; the timeout is a backstop for transports that do not.
            # asyncio.timeout, not wait_for: wait_for (Python 3.11) wraps the call in a task of its own,
            # one more task and loop pass per call to a council.
            seconds = deadline_ms / 1000
            async with asyncio.timeout(seconds + 0.5):
                response = await rpc(request, deadline_seconds=seconds, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                result = CallResult(
                    self.gss_code,
                    self.target.name,
                    SourceState.ok,
                    _ms_since(started),
                    "none of the local_person_ids asked for are held there",
                    not_found=True,
                )
            else:
                state, detail = _describe_failure(
                    exc,
                    deadline_ms,
                    self.target.name,
                    budget=capped,
                    max_answer_mib=self.target.resilience.max_answer_mib,
                )
                result = CallResult(
                    self.gss_code,
                    self.target.name,
                    state,
                    _ms_since(started),
                    detail,
                    rejected_query=exc.code() in _REJECTED_QUERY_CODES,
                )
        except (TimeoutError, OSError) as exc:
            state, detail = _describe_failure(exc, deadline_ms, self.target.name, budget=capped)
            result = CallResult(self.gss_code, self.target.name, state, _ms_since(started), detail)
        else:
            if response is None:
                # grpc.aio answers None (and logs the parse error) when the bytes do not parse.
                result = CallResult(
                    self.gss_code, self.target.name, SourceState.error, _ms_since(started), MALFORMED_ANSWER
                )
            else:
                result = CallResult(
                    self.gss_code, self.target.name, SourceState.ok, _ms_since(started), response=response
                )
        _log_call(request_id, self.gss_code, method, result.outcome, result.state, result.latency_ms)
        self.last = SourceRecord(
            result.state,
            None if result.not_found else result.detail,
            result.latency_ms,
            dt.datetime.now(dt.UTC),
        )
        return result

    def cached_describe(self) -> Any | None:
        """The last good DescribeResponse, however old (None before the first): for dataset freshness."""
        return self._describe[1] if self._describe is not None else None

    async def check_health(self) -> HealthRecord:
        """Ask the adapter's grpc.health.v1 ``Check`` for the AdapterService (deadline: the target's
        ``deadline_ms``), keep the result as :attr:`health` and return it. Never raises; a failed check
        is ``no_answer`` (see :class:`~familyctx_gateway.health.HealthStatus`)."""
        checker = getattr(self.transport, "check_health", None)
        now = dt.datetime.now(dt.UTC)
        if self.closed:
            return self.health
        if checker is None:
            self.health = HealthRecord(HealthStatus.not_served, now, "the transport has no health check")
            return self.health
        seconds = self.target.deadline_ms / 1000
        try:
            async with asyncio.timeout(seconds + 0.5):
                status = await checker(ADAPTER_SERVICE, deadline_seconds=seconds)
        except grpc.aio.AioRpcError as exc:
            record = _health_failure(exc, self.target.deadline_ms)
        except (TimeoutError, OSError):
            record = HealthRecord(
                HealthStatus.no_answer, None, f"no answer within the {self.target.deadline_ms} ms deadline"
            )
        else:
            if status == health_pb2.HealthCheckResponse.SERVING:
                record = HealthRecord(HealthStatus.serving)
            elif status == health_pb2.HealthCheckResponse.NOT_SERVING:
                record = HealthRecord(HealthStatus.not_serving, None, "the adapter reports not serving")
            else:
                record = HealthRecord(HealthStatus.unknown, None, "the adapter reports its status unknown")
        self.health = replace(record, checked_at=dt.datetime.now(dt.UTC))
        return self.health

    async def close(self) -> None:
        """Refuse new calls (:data:`REMOVED_DETAIL`), wait for the calls in flight, close the channel."""
        self.closed = True
        await self._idle.wait()
        await self.transport.close()

    async def describe(
        self, *, requester: Requester, cache_seconds: float
    ) -> tuple[Any | None, CallResult | None]:
        """The adapter's DescribeResponse, reused for ``cache_seconds``, and the call made (``None`` when
        answered from the cache). On failure the last good answer is returned, or ``None``."""
        now = time.monotonic()
        if self._describe is not None and now - self._describe[0] < cache_seconds:
            return self._describe[1], None
        result = await self.call("describe", adapter_pb2.DescribeRequest(), requester=requester)
        if not result.ok:
            return (self._describe[1] if self._describe is not None else None), result
        self._describe = (now, result.response)
        return result.response, result


def _health_failure(exc: grpc.aio.AioRpcError, deadline_ms: int) -> HealthRecord:
    code = exc.code()
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return HealthRecord(HealthStatus.not_served, None, "the adapter does not serve grpc.health.v1")
    if code == grpc.StatusCode.NOT_FOUND:
        detail = f"the adapter does not report on {ADAPTER_SERVICE}"
        return HealthRecord(HealthStatus.not_served, None, detail)
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return HealthRecord(HealthStatus.no_answer, None, f"no answer within the {deadline_ms} ms deadline")
    if code == grpc.StatusCode.UNAVAILABLE:
        _state, detail = _describe_failure(exc, deadline_ms)
        return HealthRecord(HealthStatus.no_answer, None, detail)
    return HealthRecord(HealthStatus.no_answer, None, f"health check answered {code.name}")


def _ms_since(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


TransportFactory = Callable[[AdapterTarget], AdapterTransport]


def grpc_transport_factory(tls: ClientTls) -> TransportFactory:
    """The production transports: a mutual-TLS ``grpc.aio`` channel to each ``target.address``
    (host:port) with the gateway's client identity ``tls``, checking ``target.tls_server_name`` when set."""
    credentials = tls.channel_credentials()

    def factory(target: AdapterTarget) -> AdapterTransport:
        options = channel_options(target) + resilience_channel_options(target.resilience)
        return GrpcTransport(target.address, credentials, options)

    return factory


def _request_deadline_ms(targets: Sequence[AdapterTarget]) -> int:
    """The ``resilience`` section's request deadline, or twice the longest adapter ``deadline_ms``."""
    if not targets:
        return 4000
    return targets[0].resilience.request_deadline_ms or 2 * max(t.deadline_ms for t in targets)


@dataclass
class Federation:
    """The configured councils' adapters, in configuration order; ``request_deadline_ms``: the budget of
    each request's calls (:class:`RequestBudget`; the ``resilience`` section's).

    A snapshot: a request keeps the one it started with. The council registry replaces it by
    :meth:`updated` (``transport_factory`` and ``signer`` make the clients of councils added later).
    """

    clients: dict[str, AdapterClient] = field(default_factory=dict)
    request_deadline_ms: int = 4000
    transport_factory: TransportFactory | None = None
    signer: AssertionSigner | None = None

    @classmethod
    def open(
        cls,
        targets: Iterable[AdapterTarget],
        transport_factory: TransportFactory,
        *,
        signer: AssertionSigner | None,
    ) -> Federation:
        """Open a transport per adapter (a gRPC channel connects lazily, so this does no I/O).

        ``signer`` signs every call's assertion; it may be None only when there are no ``targets``
        (raises ``ValueError`` otherwise).
        """
        targets = list(targets)
        if not targets:
            return cls({}, transport_factory=transport_factory, signer=signer)
        if signer is None:
            raise ValueError("adapters need an assertion signer")
        clients = {t.gss_code: AdapterClient(t, transport_factory(t), signer) for t in targets}
        return cls(clients, _request_deadline_ms(targets), transport_factory, signer)

    def updated(self, targets: Iterable[AdapterTarget]) -> tuple[Federation, list[AdapterClient]]:
        """The next snapshot, for ``targets`` (in their order), and the clients it no longer holds.

        A council whose entry is unchanged keeps its client (breaker, Describe cache, health, channel);
        a new council, or one whose entry changed in any field, gets a new client (its channel connects
        on first use); the clients returned (councils removed or changed) are not closed here: the
        caller closes them (:meth:`AdapterClient.close`) once no request can still use them. Raises
        ``ValueError`` when there are targets but no ``transport_factory`` / ``signer``.
        """
        targets = list(targets)
        if targets and (self.transport_factory is None or self.signer is None):
            raise ValueError("adapters need a transport factory and an assertion signer")
        clients: dict[str, AdapterClient] = {}
        retired: list[AdapterClient] = []
        for target in targets:
            old = self.clients.get(target.gss_code)
            if old is not None and old.target.model_dump() == target.model_dump():
                clients[target.gss_code] = old
                continue
            assert self.transport_factory is not None and self.signer is not None
            clients[target.gss_code] = AdapterClient(target, self.transport_factory(target), self.signer)
            if old is not None:
                retired.append(old)
        retired += [c for code, c in self.clients.items() if code not in clients]
        return (
            Federation(clients, _request_deadline_ms(targets), self.transport_factory, self.signer),
            retired,
        )

    async def close(self) -> None:
        """Close every client's channel (at shutdown)."""
        await asyncio.gather(*(c.transport.close() for c in self.clients.values()))

    def __contains__(self, gss_code: object) -> bool:
        return gss_code in self.clients

    async def fan_out(
        self, method: str, requests: Mapping[str, Any], *, requester: Requester
    ) -> dict[str, CallResult]:
        """Call ``method`` on every council named in ``requests`` at once, each with its own assertion for
        ``requester``; results keyed by GSS code."""
        codes = [code for code in requests if code in self.clients]
        results = await asyncio.gather(
            *(self.clients[c].call(method, requests[c], requester=requester) for c in codes)
        )
        return dict(zip(codes, results, strict=True))

    async def describe_all(
        self, *, requester: Requester, cache_seconds: float
    ) -> dict[str, tuple[Any | None, CallResult | None]]:
        """Describe every council (cached); see :meth:`AdapterClient.describe` for the pair returned."""
        codes = list(self.clients)
        answers = await asyncio.gather(
            *(self.clients[c].describe(requester=requester, cache_seconds=cache_seconds) for c in codes)
        )
        return dict(zip(codes, answers, strict=True))
