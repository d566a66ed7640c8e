"""The adapter's gRPC server: familycontext.v1.AdapterService beside grpc.health.v1.Health.

``build_server(settings, source)`` is the composition root for tests and ``serve``; nothing listens or
connects at import. The data port only speaks mutual TLS (:mod:`.trust`); every handler first verifies
the gateway's assertion (:meth:`.trust.CallerCheck.verify`); a data call then asks the council's sharing
policy (:mod:`.policy`) whether the requester may see this council's people at all, before it reads the
request or looks anything up (a refused requester gets PERMISSION_DENIED whatever it asks for, never
NOT_FOUND), then answers, then applies the sharing policy to the answer, then commits the disclosure
record of the answer (or of the policy's refusal) to the adapter's own disclosure log (:mod:`.disclosure`)
before it leaves: no record, no answer (UNAVAILABLE "disclosure log unavailable"). An optional plaintext
port (``health_listen``) serves grpc.health.v1 only. Handlers run the (blocking) warehouse calls on a bounded
thread pool so the event loop stays free for health checks. Errors are mapped to gRPC status in one place
(:meth:`_call`, via :func:`.errors.grpc_status_for`). Logs carry method, request id, purpose, role,
organisation, status and duration only, never personal data.
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

from familyctx.trust.assertion import Requester
from familyctx_adapter import disclosure_record as dr
from familyctx_adapter.disclosure import DisclosureLog, load_disclosure_log
from familyctx_adapter.errors import DisclosureRefused, grpc_status_for
from familyctx_adapter.policy import Disclosure, SharingPolicy, log_safe
from familyctx_adapter.queries import check_family_ids, person_search_from_request, result_limit
from familyctx_adapter.settings import AdapterSettings
from familyctx_adapter.source import WarehouseSource
from familyctx_adapter.sql_source import DATASET_INFO
from familyctx_adapter.trust import CallerCheck, ServerTls, load_caller_check, load_server_tls

__all__ = ["AdapterServer", "AdapterServicer", "build_server", "load_sharing_policy", "serve"]

#: gRPC retry pushback trailer (gRFC A6, "Retry Throttling and Pushback"); "-1" means "do not retry".
RETRY_PUSHBACK_KEY = "grpc-retry-pushback-ms"

log = logging.getLogger("familyctx.adapter")
R = TypeVar("R")
SERVICE_NAME = "familycontext.v1.AdapterService"


def _safe(value: str) -> str:
    """A signed claim value fit for a log line, as the policy's decision log writes it
    (:func:`familyctx_adapter.policy.log_safe`): letters, digits and ``_.:-``, others as ``?``, at
    most 64 characters, so a value can neither forge a ``key=value`` nor break the line."""
    return log_safe(value)


def load_sharing_policy(settings: AdapterSettings) -> SharingPolicy:
    """The council's sharing policy from ``policy_file``, validated for this council and the datasets
    the adapter offers. Raises :class:`~familyctx_adapter.policy_check.PolicyError` (an
    AdapterConfigError) naming the file, line and problem."""
    return SharingPolicy.load(
        settings.policy_file,
        council_gss=settings.council.gss_code,
        council_name=settings.council.name,
        datasets=DATASET_INFO.keys(),
    )


async def _offload(executor: ThreadPoolExecutor | None, fn: Callable[[], R]) -> R:
    """Run a blocking warehouse call on the thread pool, or inline when there is none."""
    if executor is None:
        return fn()
    return await asyncio.get_running_loop().run_in_executor(executor, fn)


class AdapterServicer(adapter_pb2_grpc.AdapterServiceServicer):
    """AdapterService over a :class:`WarehouseSource`; blocking calls go to ``executor`` (or run on the
    event loop when it is None: SQLite's default, see :attr:`AdapterSettings.threads`)."""

    def __init__(
        self,
        settings: AdapterSettings,
        source: WarehouseSource,
        executor: ThreadPoolExecutor | None,
        *,
        caller_check: CallerCheck,
        policy: SharingPolicy,
        disclosure_log: DisclosureLog,
    ) -> None:
        self.settings = settings
        self.source = source
        self.executor = executor
        self.caller_check = caller_check
        self.policy = policy
        self.disclosure_log = disclosure_log

    async def _call(
        self,
        context: grpc.aio.ServicerContext,
        method: str,
        requester: Requester,
        fn: Callable[[], R],
        size: Callable[[R], int] = lambda _: 1,
        records: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> R:
        """Run ``fn`` for the verified ``requester``; log one line; map errors to a gRPC status.

        ``records``: filled by ``fn`` with the disclosure record of its answer or of a refusal by policy;
        committed to the disclosure log before the answer (or the PERMISSION_DENIED) is returned. A record
        not committed turns the call into UNAVAILABLE "disclosure log unavailable"."""
        who = (
            f"request_id={_safe(requester.request_id)} purpose={_safe(requester.purpose)} "
            f"role={_safe(requester.role)} org={_safe(requester.organisation)}"
        )
        started = time.perf_counter()
        try:
            try:
                result = await _offload(self.executor, fn)
            except DisclosureRefused:
                await self._commit(records, requester)  # a refusal by policy is recorded too
                raise
            await self._commit(records, requester)
        except Exception as exc:  # noqa: BLE001 - every error is mapped, none escapes as a bare 500
            code, message = grpc_status_for(exc)
            elapsed = (time.perf_counter() - started) * 1000
            if code is grpc.StatusCode.INTERNAL:
                # Engine hides bound parameters, so the traceback carries no personal data.
                log.error(
                    "%s %s status=%s ms=%.1f error=%s",
                    method,
                    who,
                    code.name,
                    elapsed,
                    type(exc).__name__,
                    exc_info=exc,
                )
            else:
                log.info(
                    "%s %s status=%s ms=%.1f",
                    method,
                    who,
                    code.name,
                    elapsed,
                )
            if code is grpc.StatusCode.UNAVAILABLE:
                # The assertion was accepted (and is now in the replay cache): a transparent gRPC retry
                # would re-send it and be refused as a replay. Tell the gateway's retry policy not to
                # retry this answer (gRFC A6: a negative pushback stops retries); it reports the council
                # unavailable instead.
                context.set_trailing_metadata(((RETRY_PUSHBACK_KEY, "-1"),))
            await context.abort(code, message)
            raise  # unreachable: abort raises
        log.info(
            "%s %s status=OK ms=%.1f results=%d",
            method,
            who,
            (time.perf_counter() - started) * 1000,
            size(result),
        )
        return result

    def _people_or_refuse(
        self, requester: Requester, maker: dr.RecordMaker, records: list[tuple[str, dict[str, Any]]]
    ) -> Disclosure:
        """The sharing policy's first question, asked before anything is read or looked up: may this
        council's people be disclosed to ``requester`` at all? Returns the decisions (people and person
        fields); on a refusal, adds its record to ``records`` and raises DisclosureRefused."""
        disclosure = self.policy.decide(requester, datasets=())
        try:
            return self.policy.require_people(requester, disclosure)
        except DisclosureRefused:
            records.append(maker.refused(disclosure))
            raise

    async def _commit(self, records: list[tuple[str, dict[str, Any]]] | None, requester: Requester) -> None:
        if records:
            await self.disclosure_log.commit(records, request_id=requester.request_id)

    async def Describe(
        self, request: adapter_pb2.DescribeRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.DescribeResponse:
        """familycontext.v1 ``Describe``: the council, its datasets, freshness and coverage.

        Needs the same caller checks as the data calls (the assertion's purpose may be empty)."""
        verified = await self.caller_check.verify(context, "Describe")
        return await self._call(
            context, "Describe", verified.requester, self.source.describe, lambda r: len(r.datasets)
        )

    async def FindPeople(
        self, request: adapter_pb2.FindPeopleRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.FindPeopleResponse:
        """familycontext.v1 ``FindPeople``: demographics of local candidates.

        UNAUTHENTICATED for a caller without a valid assertion; PERMISSION_DENIED when the sharing policy
        discloses no people to the requester, decided before the query is read or anything looked up;
        INVALID_ARGUMENT for a query without identifiers or with oversized or impossible values. Withheld
        fields are cleared by the policy.
        """
        verified = await self.caller_check.verify(context, "FindPeople")
        requester = verified.requester
        s = self.settings
        maker = dr.RecordMaker(s.council.gss_code, "FindPeople", verified, dr.asked_find_people(request))
        records: list[tuple[str, dict[str, Any]]] = []

        def run() -> adapter_pb2.FindPeopleResponse:
            disclosure = self._people_or_refuse(requester, maker, records)
            search = person_search_from_request(request, today=dt.date.today())
            limit = result_limit(request.max_results, default=s.default_max_results, cap=s.max_results_cap)
            response = adapter_pb2.FindPeopleResponse(candidates=self.source.find_people(search, limit))
            response = self.policy.filter_find_people(requester, response, disclosure=disclosure)
            records.append(maker.disclosed(response, dr.released_find_people(response, disclosure)))
            return response

        return await self._call(
            context, "FindPeople", requester, run, lambda r: len(r.candidates), records=records
        )

    async def GetFamilyContext(
        self, request: adapter_pb2.GetFamilyContextRequest, context: grpc.aio.ServicerContext
    ) -> adapter_pb2.GetFamilyContextResponse:
        """familycontext.v1 ``GetFamilyContext``: people, relationships, involvements and dataset outcomes;
        UNAUTHENTICATED without a valid assertion; PERMISSION_DENIED when the sharing policy discloses no
        people to the requester, whatever ids it asks for (decided before any id is looked up, so it is
        never told which exist); INVALID_ARGUMENT for too many ids, NOT_FOUND when none of them exists;
        datasets and fields the sharing policy withholds never leave (WITHHELD outcomes)."""
        verified = await self.caller_check.verify(context, "GetFamilyContext")
        requester = verified.requester
        council = self.settings.council.gss_code
        maker = dr.RecordMaker(council, "GetFamilyContext", verified, dr.asked_family_context(request))
        records: list[tuple[str, dict[str, Any]]] = []

        def run() -> adapter_pb2.GetFamilyContextResponse:
            self._people_or_refuse(requester, maker, records)
            ids = check_family_ids(list(request.local_person_ids))
            response = self.source.get_family_context(ids, request.include_relatives)
            present = dr.datasets_present(response)
            disclosure = self.policy.decide(requester, datasets=present)
            response = self.policy.filter_family_context(requester, response, disclosure=disclosure)
            records.append(
                maker.disclosed(response, dr.released_family_context(response, disclosure, present))
            )
            return response

        return await self._call(
            context, "GetFamilyContext", requester, run, lambda r: len(r.people), records=records
        )


class AdapterServer:
    """A built, not yet started, adapter server. ``port`` is the bound (mutual TLS) data port, useful
    with port 0; ``health_port`` the plaintext health-only port (None without ``health_listen``).

    ``tls``, ``caller_check``, ``policy`` and ``disclosure_log`` default to those the settings name (files
    read now; the disclosure log's database is first used by :meth:`start`). Raises
    :class:`~familyctx_adapter.errors.AdapterConfigError` for a missing or unusable file (naming the
    setting and path), ``OSError`` when an address cannot be bound.
    """

    def __init__(
        self,
        settings: AdapterSettings,
        source: WarehouseSource,
        *,
        tls: ServerTls | None = None,
        caller_check: CallerCheck | None = None,
        policy: SharingPolicy | None = None,
        disclosure_log: DisclosureLog | None = None,
    ) -> None:
        tls = load_server_tls(settings) if tls is None else tls
        self.caller_check = load_caller_check(settings) if caller_check is None else caller_check
        self.policy = load_sharing_policy(settings) if policy is None else policy
        self.disclosure_log = load_disclosure_log(settings) if disclosure_log is None else disclosure_log
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
        servicer = AdapterServicer(
            settings,
            source,
            self.executor,
            caller_check=self.caller_check,
            policy=self.policy,
            disclosure_log=self.disclosure_log,
        )
        adapter_pb2_grpc.add_AdapterServiceServicer_to_server(servicer, self.server)
        self.health = health_aio.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        address = f"{settings.listen.host}:{settings.listen.port}"
        try:
            self.port = self.server.add_secure_port(address, tls.credentials())
        except RuntimeError as exc:  # grpc reports a key that does not match the certificate this way
            raise OSError(f"could not bind {address} with the configured certificate and key") from exc
        if self.port == 0:
            raise OSError(f"could not bind {address}")
        self.health_server: grpc.aio.Server | None = None
        self.health_port: int | None = None
        if settings.health_listen is not None:
            # Health only (no AdapterService): for probes that cannot present a client certificate.
            self.health_server = grpc.aio.server()
            health_pb2_grpc.add_HealthServicer_to_server(self.health, self.health_server)
            health_address = f"{settings.health_listen.host}:{settings.health_listen.port}"
            self.health_port = self.health_server.add_insecure_port(health_address)
            if self.health_port == 0:
                raise OSError(f"could not bind {health_address}")
        self._health_task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        """host:port actually listened on (mutual TLS)."""
        return f"{self.settings.listen.host}:{self.port}"

    @property
    def health_address(self) -> str | None:
        """host:port of the plaintext health-only port, or None when ``health_listen`` is not set."""
        if self.settings.health_listen is None or self.health_port is None:
            return None
        return f"{self.settings.health_listen.host}:{self.health_port}"

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
        """Prepare the disclosure log (migrations, or a schema check: AdapterConfigError when it is
        unusable), check the warehouse, fetch the gateway's keys (``jwks_url``), publish health, serve."""
        await self.disclosure_log.start()
        await self.check_health()
        await self.caller_check.start()
        await self.server.start()
        if self.health_server is not None:
            await self.health_server.start()
            log.info("health only (plaintext) on %s", self.health_address)
        self._health_task = asyncio.create_task(self._watch_health())

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop serving (in-flight calls get ``grace`` seconds), commit queued disclosure records and sign
        a last tree head, release threads and connections."""
        if self._health_task is not None:
            self._health_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._health_task
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        if self.health_server is not None:
            await self.health_server.stop(None)
        await self.disclosure_log.close()
        if self.executor is not None:
            self.executor.shutdown(wait=True)
        self.source.close()


def build_server(
    settings: AdapterSettings,
    source: WarehouseSource,
    *,
    tls: ServerTls | None = None,
    caller_check: CallerCheck | None = None,
    policy: SharingPolicy | None = None,
    disclosure_log: DisclosureLog | None = None,
) -> AdapterServer:
    """Build (bind, not start) the adapter server for ``source``. Call inside a running event loop.

    Errors: see :class:`AdapterServer`."""
    return AdapterServer(
        settings, source, tls=tls, caller_check=caller_check, policy=policy, disclosure_log=disclosure_log
    )


async def _serve(settings: AdapterSettings, on_ready: Callable[[str], Any]) -> None:
    from familyctx_adapter.sql_source import SqlWarehouseSource

    # Keys, certificates, the sharing policy and the tree-head key first: a broken file stops the adapter
    # before it touches the warehouse, with a message naming the setting and the file.
    tls, caller_check, policy, disclosure_log = (
        load_server_tls(settings),
        load_caller_check(settings),
        load_sharing_policy(settings),
        load_disclosure_log(settings),
    )
    source = SqlWarehouseSource.from_settings(settings)
    try:
        server = build_server(
            settings, source, tls=tls, caller_check=caller_check, policy=policy, disclosure_log=disclosure_log
        )
    except BaseException:
        source.close()
        raise
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
    """Run the adapter until SIGTERM/SIGINT; prints "adapter ready on HOST:PORT" once listening.

    Raises :class:`~familyctx_adapter.errors.AdapterError` (e.g. AdapterConfigError, PolicyError) for a
    configuration the adapter cannot start with."""
    asyncio.run(_serve(settings, lambda address: print(f"adapter ready on {address}", flush=True)))
