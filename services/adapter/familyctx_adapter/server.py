"""The adapter's gRPC server: familycontext.v1.AdapterService beside grpc.health.v1.Health.

``build_server(settings, source)`` is the composition root for tests and ``serve``; nothing listens or
connects at import. Handlers run the (blocking) warehouse calls on a bounded thread pool so the event
loop stays free for health checks. Errors are mapped to gRPC status in one place (:meth:`_call`, via
:func:`.errors.grpc_status_for`). Logs carry method, request id, purpose, status and duration only,
never personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import grpc
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

from familyctx_adapter.errors import grpc_status_for
from familyctx_adapter.queries import check_family_ids, person_search_from_request, result_limit
from familyctx_adapter.settings import AdapterSettings
from familyctx_adapter.source import WarehouseSource

__all__ = ["AdapterServer", "AdapterServicer", "build_server", "serve"]

log = logging.getLogger("familyctx.adapter")
R = TypeVar("R")
SERVICE_NAME = "familycontext.v1.AdapterService"
#: Most characters of a caller-supplied metadata value that reach a log line.
_META_LOG_LIMIT = 64


def _metadata(context: grpc.aio.ServicerContext, key: str) -> str:
    for k, v in context.invocation_metadata() or ():
        if k == key:
            text = v if isinstance(v, str) else v.decode("utf-8", "replace")
            return "".join(c for c in text[:_META_LOG_LIMIT] if c.isprintable())
    return ""


async def _offload(executor: ThreadPoolExecutor | None, fn: Callable[[], R]) -> R:
    """Run a blocking warehouse call on the thread pool, or inline when there is none."""
    if executor is None:
        return fn()
    return await asyncio.get_running_loop().run_in_executor(executor, fn)


class AdapterServicer(adapter_pb2_grpc.AdapterServiceServicer):
    """AdapterService over a :class:`WarehouseSource`; blocking calls go to ``executor`` (or run on the
    event loop when it is None: SQLite's default, see :attr:`AdapterSettings.threads`)."""

    def __init__(
        self, settings: AdapterSettings, source: WarehouseSource, executor: ThreadPoolExecutor | None
    ) -> None:
        self.settings = settings
        self.source = source
        self.executor = executor

    async def _call(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        fn: Callable[[], R],
        size: Callable[[R], int] = lambda _: 1,
    ) -> R:
        request_id = _metadata(context, "x-request-id") or "-"
        purpose = _metadata(context, "x-purpose") or "-"
        started = time.perf_counter()
        try:
            result = await _offload(self.executor, fn)
        except Exception as exc:  # noqa: BLE001 - every error is mapped, none escapes as a bare 500
            code, message = grpc_status_for(exc)
            elapsed = (time.perf_counter() - started) * 1000
            if code is grpc.StatusCode.INTERNAL:
                # Engine hides bound parameters, so the traceback carries no personal data.
                log.error(
                    "%s request_id=%s purpose=%s status=%s ms=%.1f error=%s",
                    method,
                    request_id,
                    purpose,
                    code.name,
                    elapsed,
                    type(exc).__name__,
                    exc_info=exc,
                )
            else:
                log.info(
                    "%s request_id=%s purpose=%s status=%s ms=%.1f",
                    method,
                    request_id,
                    purpose,
                    code.name,
                    elapsed,
                )
            await context.abort(code, message)
            raise  # unreachable: abort raises
        log.info(
            "%s request_id=%s purpose=%s status=OK ms=%.1f results=%d",
            method,
            request_id,
            purpose,
            (time.perf_counter() - started) * 1000,
            size(result),
        )
        return result

    async def Describe(
        self, request: adapter_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.DescribeResponse:
        """familycontext.v1 ``Describe``: the council, its datasets, freshness and coverage."""
        return await self._call(context, "Describe", self.source.describe, lambda r: len(r.datasets))

    async def FindPeople(
        self, request: adapter_pb2.FindPeopleRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.FindPeopleResponse:
        """familycontext.v1 ``FindPeople``: demographics of local candidates.

        INVALID_ARGUMENT for a query without identifiers or with oversized or impossible values.
        """
        s = self.settings

        def run() -> adapter_pb2.FindPeopleResponse:
            search = person_search_from_request(request, today=dt.date.today())
            limit = result_limit(request.max_results, default=s.default_max_results, cap=s.max_results_cap)
            return adapter_pb2.FindPeopleResponse(candidates=self.source.find_people(search, limit))

        return await self._call(context, "FindPeople", run, lambda r: len(r.candidates))

    async def GetFamilyContext(
        self, request: adapter_pb2.GetFamilyContextRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.GetFamilyContextResponse:
        """familycontext.v1 ``GetFamilyContext``: people, relationships, involvements and dataset outcomes;
        INVALID_ARGUMENT for too many ids, NOT_FOUND when none of them exists."""

        def run() -> adapter_pb2.GetFamilyContextResponse:
            ids = check_family_ids(list(request.local_person_ids))
            return self.source.get_family_context(ids, request.include_relatives)

        return await self._call(context, "GetFamilyContext", run, lambda r: len(r.people))


class AdapterServer:
    """A built, not yet started, adapter server. ``port`` is the bound port (useful with port 0)."""

    def __init__(self, settings: AdapterSettings, source: WarehouseSource) -> None:
        self.settings = settings
        self.source = source
        threads = settings.threads
        self.executor = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="adapter-sql") if threads else None
        )
        limit = settings.max_message_bytes
        self.server = grpc.aio.server(
            options=[("grpc.max_send_message_length", limit), ("grpc.max_receive_message_length", limit)]
        )
        adapter_pb2_grpc.add_AdapterServiceServicer_to_server(
            AdapterServicer(settings, source, self.executor), self.server
        )
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"{settings.listen.host}:{settings.listen.port}"
        self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"could not bind {address}")
        self._health_task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        """host:port actually listened on."""
        return f"{self.settings.listen.host}:{self.port}"

    async def _set_health(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", SERVICE_NAME):
            await self.health.set(name, status)

    async def check_health(self) -> bool:
        """Ask the warehouse once and publish SERVING / NOT_SERVING."""
        ok = await _offload(self.executor, self.source.check)
        await self._set_health(ok)
        return ok

    async def _watch_health(self) -> None:
        while True:
            await asyncio.sleep(self.settings.health_check_interval_seconds)
            try:
                await self.check_health()
            except Exception:  # noqa: BLE001 - keep watching; the next check may succeed
                log.exception("health check failed")
                await self._set_health(False)

    async def start(self) -> None:
        """Check the warehouse, publish health, start serving."""
        await self.check_health()
        await self.server.start()
        self._health_task = asyncio.create_task(self._watch_health())

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds) and release threads and connections."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        self.source.close()


def build_server(settings: AdapterSettings, source: WarehouseSource) -> AdapterServer:
    """Build (bind, not start) the adapter server for ``source``. Call inside a running event loop."""
    return AdapterServer(settings, source)


async def _serve(settings: AdapterSettings, on_ready: Callable[[str], Any]) -> None:
    from familyctx_adapter.sql_source import SqlWarehouseSource

    source = SqlWarehouseSource.from_settings(settings)
    server = build_server(settings, source)
    await server.start()
    on_ready(server.address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("adapter stopping")
        await server.stop(grace=5.0)


def serve(settings: AdapterSettings) -> None:
    """Run the adapter until SIGTERM/SIGINT; prints "adapter ready on HOST:PORT" once listening."""
    asyncio.run(_serve(settings, lambda address: print(f"adapter ready on {address}", flush=True)))
