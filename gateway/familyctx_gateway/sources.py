"""Per-request bookkeeping of each council's state, and the ``sources`` list every answer carries.

Dataset freshness comes from each council's Describe: the one made in the request when there was one,
else the last one the gateway holds (asked by the health watch or an earlier request). A council that
answered but whose Describe says a dataset is stale (refreshed longer ago than it promised) is still
``ok``, with a ``detail`` naming the stale datasets (:func:`stale_detail`), so the answer, and the
audit record, which keeps each council's state and detail, say the data may be out of date.

A request cut off before it ends (the shutdown grace period ran out, or the client went away) has no
answer, but its audit record still says what is known of each council (:class:`RequestSources`,
:meth:`SourceTracker.cut_off`): the failures seen in the calls gathered so far, which councils were
asked for data, and which were not.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Collection, Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from familyctx_gateway.adapter_client import (
    NOT_SERVING_DETAIL,
    CallResult,
    Federation,
    RequestBudget,
    SourceRecord,
)
from familyctx_gateway.api.schemas import DatasetFreshness, SourceState, SourceStatus, SourceSummary
from familyctx_gateway.api.schemas.responses import (
    AdapterHealth,
    CouncilContact,
    RegistrySummary,
)
from familyctx_gateway.breaker import BreakerState
from familyctx_gateway.convert import dataset_freshness
from familyctx_gateway.health import HealthStatus

if TYPE_CHECKING:
    from familyctx_gateway.registry import CouncilRegistry

__all__ = ["RequestSources", "SourceTracker", "registry_summary", "source_summaries", "stale_detail"]


def stale_detail(datasets: list[DatasetFreshness]) -> str | None:
    """``"stale data: csc, housing not refreshed within their promised interval"`` for the stale
    datasets among ``datasets`` (ids only), or None when none is stale."""
    stale = [d.dataset_id for d in datasets if d.stale]
    if not stale:
        return None
    return f"stale data: {', '.join(stale)} not refreshed within the promised interval"


class SourceTracker:
    """Collects every call made to each council during one request.

    A council's state for the request is the first failure seen (a council that failed once is not
    called again in the same request), else ``ok``; its latency is the slowest call, in milliseconds.

    Creating it starts the request's :class:`~familyctx_gateway.adapter_client.RequestBudget`
    (``federation.request_deadline_ms``), which lasts as long as the tracker: every adapter call made
    afterwards in the same request is capped by what is left of it.
    """

    def __init__(self, federation: Federation) -> None:
        self._federation = federation
        self._results: dict[str, list[CallResult]] = {code: [] for code in federation.clients}
        self.budget = RequestBudget.start(federation.request_deadline_ms)
        watching = _request_sources.get()
        if watching is not None:
            watching.tracker = self

    def add(self, result: CallResult) -> CallResult:
        self._results[result.gss_code].append(result)
        return result

    def failure(self, gss_code: str) -> CallResult | None:
        return next((r for r in self._results[gss_code] if r.failed), None)

    def usable(self, gss_code: str) -> bool:
        return self.failure(gss_code) is None

    def states(self) -> dict[str, str]:
        return {code: self._state(code)[0].value for code in self._results}

    def _state(self, gss_code: str) -> tuple[SourceState, str | None, int | None]:
        results = self._results[gss_code]
        if not results:
            return SourceState.unknown, "not asked in this request", None
        latency = max(r.latency_ms for r in results)
        failed = self.failure(gss_code)
        if failed is not None:
            return failed.state, failed.detail, latency
        return SourceState.ok, None, latency

    def cut_off(self, asked_for_data: Collection[str], detail: str) -> list[tuple[str, str, str | None]]:
        """``(gss_code, state, detail)`` of each council of the request, for a request cut off before it
        ended: a failure seen in the calls gathered so far (e.g. ``unavailable``, with its detail); else,
        when it was asked for data (``asked_for_data``), ``timed_out`` with ``detail`` (whatever it
        answered was not used: nothing was returned); else ``unknown``, not asked for data. Calls still
        running when the request was cut off were never gathered, so only these three are known."""
        out: list[tuple[str, str, str | None]] = []
        for code in self._results:
            failed = self.failure(code)
            if failed is not None:
                out.append((code, failed.state.value, failed.detail))
            elif code in asked_for_data:
                out.append((code, SourceState.timed_out.value, detail))
            else:
                out.append(
                    (code, SourceState.unknown.value, "not asked for data before the request was cut off")
                )
        return out

    def all_ok(self) -> bool:
        return all(self._state(code)[0] is SourceState.ok for code in self._results)

    def statuses(self, describes: Mapping[str, Any] | None = None) -> list[SourceStatus]:
        """One :class:`SourceStatus` per configured council, in configuration order, with its datasets'
        freshness (``describes``, else the client's last Describe); an ``ok`` council with stale
        datasets says so in ``detail``."""
        now = dt.datetime.now(dt.UTC)
        out = []
        for code, client in self._federation.clients.items():
            state, detail, latency = self._state(code)
            described = (describes or {}).get(code) or client.cached_describe()
            datasets = [dataset_freshness(d, now) for d in described.datasets] if described else []
            if state is SourceState.ok and detail is None:
                detail = stale_detail(datasets)
            out.append(
                SourceStatus(
                    gss_code=code,
                    name=client.target.name,
                    state=state,
                    detail=detail,
                    latency_ms=latency,
                    datasets=datasets,
                )
            )
        return out


_request_sources: ContextVar[RequestSources | None] = ContextVar("familyctx_request_sources", default=None)


@dataclass(slots=True)
class RequestSources:
    """The :class:`SourceTracker` of the request running inside :meth:`watch`, once its work has made
    one (None before), so that the code that audits the request can still read it if the request is
    cut off (``asyncio.CancelledError``) before the work returns."""

    tracker: SourceTracker | None = None

    @contextlib.contextmanager
    def watch(self) -> Iterator[RequestSources]:
        """Within the block, a :class:`SourceTracker` made in this context (or a task started from it)
        is kept in :attr:`tracker`."""
        token = _request_sources.set(self)
        try:
            yield self
        finally:
            _request_sources.reset(token)


def source_summaries(federation: Federation, describes: Mapping[str, Any]) -> list[SourceSummary]:
    """``GET /v1/sources``: each council's last known state, datasets and freshness, its last health
    check and its registry entry's datasets and IG contact; while its adapter reports NOT_SERVING,
    ``unavailable`` (not asked); while its circuit breaker is open, ``circuit_open`` with the failures
    counted and the seconds to the next trial call."""
    now = dt.datetime.now(dt.UTC)
    out = []
    for code, client in federation.clients.items():
        described = describes.get(code)
        last = client.last
        breaker = client.breaker.view()
        if client.health.status is HealthStatus.not_serving:
            last = SourceRecord(SourceState.unavailable, NOT_SERVING_DETAIL, None, client.health.checked_at)
        elif breaker.state is BreakerState.open:
            last = SourceRecord(
                SourceState.circuit_open,
                f"circuit open after {breaker.failures} requests in a row whose calls to it failed; "
                f"the next trial call in {breaker.retry_in_seconds or 0:.0f} s",
                last.latency_ms,
                last.last_checked_at,
            )
        datasets = [dataset_freshness(d, now) for d in described.datasets] if described else []
        detail = last.detail
        if last.state is SourceState.ok and detail is None:
            detail = stale_detail(datasets)
        contact = client.target.ig_contact
        out.append(
            SourceSummary(
                gss_code=code,
                name=client.target.name,
                state=last.state,
                detail=detail,
                latency_ms=last.latency_ms,
                last_checked_at=last.last_checked_at,
                datasets=datasets,
                contract_version=(described.contract_version or None) if described else None,
                source_system=(described.source_system or None) if described else None,
                health=AdapterHealth(
                    status=client.health.status.value,
                    checked_at=client.health.checked_at,
                    detail=client.health.detail,
                ),
                datasets_offered=list(client.target.datasets),
                ig_contact=CouncilContact(name=contact.name, email=contact.email) if contact else None,
            )
        )
    return out


def registry_summary(registry: CouncilRegistry) -> RegistrySummary:
    """``GET /v1/sources``' ``registry`` block: the registry in use and its last refused edit."""
    state = registry.state
    return RegistrySummary(
        source="file" if state.source == "file" else "settings",
        path=state.path,
        version=state.version,
        loaded_at=state.loaded_at,
        sha256=state.sha256,
        councils=state.councils,
        retiring=registry.retiring,
        last_error=state.last_error,
        last_error_at=state.last_error_at,
    )
