"""Per-request bookkeeping of each council's state, and the ``sources`` list every answer carries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from familyctx_gateway.adapter_client import CallResult, Federation, RequestBudget, SourceRecord
from familyctx_gateway.api.schemas import SourceState, SourceStatus, SourceSummary
from familyctx_gateway.breaker import BreakerState
from familyctx_gateway.convert import dataset_freshness

__all__ = ["SourceTracker", "source_summaries"]


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

    def all_ok(self) -> bool:
        return all(self._state(code)[0] is SourceState.ok for code in self._results)

    def statuses(self, describes: Mapping[str, Any] | None = None) -> list[SourceStatus]:
        """One :class:`SourceStatus` per configured council, in configuration order."""
        now = dt.datetime.now(dt.UTC)
        out = []
        for code, client in self._federation.clients.items():
            state, detail, latency = self._state(code)
            described = (describes or {}).get(code)
            datasets = [dataset_freshness(d, now) for d in described.datasets] if described else []
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


def source_summaries(federation: Federation, describes: Mapping[str, Any]) -> list[SourceSummary]:
    """``GET /v1/sources``: each council's last known state, datasets and freshness; while a council's
    circuit breaker is open, ``circuit_open`` with the failures counted and the seconds to the next
    trial call."""
    now = dt.datetime.now(dt.UTC)
    out = []
    for code, client in federation.clients.items():
        described = describes.get(code)
        last = client.last
        breaker = client.breaker.view()
        if breaker.state is BreakerState.open:
            last = SourceRecord(
                SourceState.circuit_open,
                f"circuit open after {breaker.failures} failed calls in a row; the next trial call in "
                f"{breaker.retry_in_seconds or 0:.0f} s",
                last.latency_ms,
                last.last_checked_at,
            )
        out.append(
            SourceSummary(
                gss_code=code,
                name=client.target.name,
                state=last.state,
                detail=last.detail,
                latency_ms=last.latency_ms,
                last_checked_at=last.last_checked_at,
                datasets=[dataset_freshness(d, now) for d in described.datasets] if described else [],
                contract_version=(described.contract_version or None) if described else None,
                source_system=(described.source_system or None) if described else None,
            )
        )
    return out
