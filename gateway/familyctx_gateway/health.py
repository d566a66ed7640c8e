"""Watching each council's adapter: its ``grpc.health.v1`` status and its Describe (datasets, freshness).

A background task per adapter (:class:`HealthWatch`) asks ``grpc.health.v1.Health/Check`` for the
service ``familycontext.v1.AdapterService`` every ``health_poll_seconds`` over the adapter's own
mutual-TLS channel (the adapter serves Health beside the AdapterService, services/adapter server.py),
and, while the adapter reports SERVING, refreshes its Describe answer (reused for
``describe_cache_seconds``, as requests reuse it), so ``GET /v1/sources`` and every answer's ``sources``
show dataset freshness without a request having asked first.

What a status means for requests (:meth:`~familyctx_gateway.adapter_client.AdapterClient.call`):
``not_serving`` (the adapter says its warehouse is down) makes the council ``unavailable`` at once,
with no data call, until it reports SERVING again. ``serving`` while the council's circuit breaker is
open makes the next call the breaker's half-open trial at once, without waiting out ``open_seconds``
(:meth:`~familyctx_gateway.breaker.CircuitBreaker.health_reported`; the trial call, often the watcher's
own Describe, decides whether the circuit closes). Every other status (no answer to the health check,
an adapter that does not serve grpc.health.v1, not checked yet) changes nothing: the data call is made
and its own deadline, retries and circuit breaker decide. ``/readyz`` never looks at any of this.

The Describe asked by the watcher is signed for the gateway itself (:data:`WATCH_REQUESTER`: no
worker, no purpose); an adapter that does not report SERVING is not asked, so the watcher adds no load
to a council in trouble.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from familyctx.trust.assertion import Requester

if TYPE_CHECKING:
    from familyctx_gateway.adapter_client import AdapterClient

__all__ = ["WATCH_REQUESTER", "HealthRecord", "HealthStatus", "HealthWatch"]

log = logging.getLogger("familyctx_gateway.health")


class HealthStatus(StrEnum):
    """What an adapter's last health check gave.

    ``serving`` / ``not_serving``: the adapter's own grpc.health.v1 answer; ``unknown``: not checked
    yet, or the adapter answered UNKNOWN / SERVICE_UNKNOWN; ``no_answer``: the check failed (not
    reachable, timed out, TLS handshake refused); ``not_served``: the adapter does not serve
    grpc.health.v1 (UNIMPLEMENTED) or does not report on the AdapterService (NOT_FOUND).
    """

    unknown = "unknown"
    serving = "serving"
    not_serving = "not_serving"
    no_answer = "no_answer"
    not_served = "not_served"


@dataclass(frozen=True, slots=True)
class HealthRecord:
    """One adapter's last health check: ``status``, when it was made (UTC, None before the first) and a
    short non-personal ``detail`` (e.g. "adapter not reachable")."""

    status: HealthStatus = HealthStatus.unknown
    checked_at: dt.datetime | None = None
    detail: str | None = None


#: Who the watcher's Describe calls are signed for: the gateway itself, no worker and no purpose.
WATCH_REQUESTER = Requester(
    sub="familyctx-gateway/health-watch",
    name="Gateway health watch",
    organisation="",
    role="service_client",
    client="familyctx-gateway",
    purpose="",
    case_reference="",
)


class HealthWatch:
    """One background task per adapter client: health check, then (while serving) Describe, then wait.

    ``poll_seconds``: time between two checks of one adapter (> 0); ``describe_cache_seconds``: how
    long a Describe answer is reused (the setting of the same name). :meth:`sync` starts tasks for
    clients not yet watched and stops those of clients no longer given (council removed from the
    registry); :meth:`stop` stops all. Each task survives any error of one round (logged by type only).
    """

    def __init__(self, *, poll_seconds: float, describe_cache_seconds: float) -> None:
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be positive")
        self.poll_seconds = poll_seconds
        self.describe_cache_seconds = describe_cache_seconds
        self._tasks: dict[int, tuple[AdapterClient, asyncio.Task[None]]] = {}

    def sync(self, clients: list[AdapterClient]) -> None:
        """Watch exactly ``clients`` (by identity): start the new ones' tasks, cancel the others'."""
        wanted = {id(c): c for c in clients}
        for key in [k for k in self._tasks if k not in wanted]:
            _client, task = self._tasks.pop(key)
            task.cancel()
        for key, client in wanted.items():
            if key not in self._tasks:
                task = asyncio.create_task(self._watch(client), name=f"health-watch-{client.gss_code}")
                self._tasks[key] = (client, task)

    async def stop(self) -> None:
        """Cancel every task and wait for them to end."""
        tasks = [task for _client, task in self._tasks.values()]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def check_once(self, client: AdapterClient) -> HealthRecord:
        """One round for ``client``: health check (status kept on the client, a change logged, the
        result given to its circuit breaker: SERVING lets an open circuit's trial call go at once), then
        a Describe when it reports SERVING. Returns the health record."""
        before = client.health.status
        record = await client.check_health()
        client.breaker.health_reported(record.status is HealthStatus.serving)
        if record.status is not before:
            level = logging.WARNING if record.status is HealthStatus.not_serving else logging.INFO
            log.log(
                level,
                "adapter health council=%s status=%s previous=%s detail=%s",
                client.gss_code,
                record.status.value,
                before.value,
                record.detail or "-",
            )
        if record.status is HealthStatus.serving:
            requester = replace(WATCH_REQUESTER, request_id=f"health-{uuid.uuid4()}")
            await client.describe(requester=requester, cache_seconds=self.describe_cache_seconds)
        return record

    async def _watch(self, client: AdapterClient) -> None:
        while True:
            try:
                await self.check_once(client)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - one bad round must not end the watch
                log.warning(
                    "adapter health watch council=%s failed error=%s", client.gss_code, type(exc).__name__
                )
            await asyncio.sleep(self.poll_seconds)
