"""In-flight limits of data requests (``limits`` settings; familyctx_gateway/limits.py), against the real
app and real gRPC councils: a council that holds every data call at a gate until the test opens it, so
"N requests in progress" is a fact the test waits for (no sleeps), not a guess about timing.

Per worker and overall: one request past the limit is 429 with ``Retry-After`` and a message naming
the setting, audited ``denied``; the others still run; health, readiness, JWKS and the IG API are
never counted. Slots are given back on success, refusal, error and cancellation; the bookkeeping is
empty after many requests of many workers.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from familycontext.v1 import adapter_pb2_grpc
from familyctx_gateway.errors import GatewayConfigError, TooManyInFlight
from familyctx_gateway.limits import InFlightLimits
from familyctx_gateway.settings import AdapterTarget, load_settings
from familyctx_gateway.testing.audit import flat_records
from familyctx_gateway.testing.fake_council import CouncilData, CouncilTrust, FakeAdapterService
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer
from familyctx_gateway.testing.pki import ASSERTION_ISSUER, session_pki
from familyctx_gateway.testing.scenario import NHS, STOCKPORT

BOLTON = "E08000001"
SEARCH = {"purpose": "s17_assessment", "case_reference": "CASE-LIMITS-1", "nhs_number": NHS["zoe"]}
FAMILY = {
    "purpose": "s17_assessment",
    "case_reference": "CASE-LIMITS-1",
    "subject": {"gss_code": STOCKPORT, "local_person_id": "S-1001"},
}
#: A safety net only: every wait below ends as soon as its condition holds.
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


class Gate:
    """Holds every data call that reaches it until :meth:`open`; knows which requests it holds."""

    def __init__(self) -> None:
        self._open = asyncio.Event()
        self._changed = asyncio.Condition()
        self.held: Counter[str] = Counter()

    async def pass_through(self, context: Any) -> None:
        request_id = dict(context.invocation_metadata() or ()).get("x-request-id", "")
        async with self._changed:
            self.held[request_id] += 1
            self._changed.notify_all()
        try:
            await self._open.wait()
        finally:
            async with self._changed:
                self.held[request_id] -= 1
                self.held += Counter()  # drop zero counts
                self._changed.notify_all()

    async def until_holding(self, requests: int) -> None:
        """Wait until calls of ``requests`` distinct requests are held here."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.held) == requests), WAIT_SECONDS)

    def open(self) -> None:
        self._open.set()


class GatedAdapterService(FakeAdapterService):
    """Bolton, holding no one: answers FindPeople and GetFamilyContext once the gate is open."""

    def __init__(self, gate: Gate, trust: CouncilTrust) -> None:
        super().__init__(CouncilData(BOLTON, "Bolton"), trust.verifier(BOLTON))
        self.gate = gate

    async def FindPeople(self, request: Any, context: Any) -> Any:  # noqa: N802
        await self.gate.pass_through(context)
        return await super().FindPeople(request, context)

    async def GetFamilyContext(self, request: Any, context: Any) -> Any:  # noqa: N802
        await self.gate.pass_through(context)
        return await super().GetFamilyContext(request, context)


@asynccontextmanager
async def gated_gateway(
    issuer: TestIssuer, tmp_path: Path, **limits: int
) -> AsyncIterator[tuple[RunningGateway, Gate]]:
    """The scenario's three councils plus gated Bolton, behind a gateway with ``limits``."""
    gate = Gate()
    trust = CouncilTrust(session_pki(), ASSERTION_ISSUER)
    server = grpc.aio.server()
    adapter_pb2_grpc.add_AdapterServiceServicer_to_server(GatedAdapterService(gate, trust), server)
    port = server.add_secure_port("127.0.0.1:0", trust.server_credentials(BOLTON))
    await server.start()
    try:
        bolton = AdapterTarget(
            gss_code=BOLTON, name="Bolton", address=f"127.0.0.1:{port}", deadline_ms=60_000
        )
        async with running_gateway(
            issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}", extra_targets=[bolton], limits=limits
        ) as gw:
            yield gw, gate
            gate.open()
    finally:
        await server.stop(grace=None)


def worker(gw: RunningGateway, sub: str, request_id: str | None = None) -> dict[str, str]:
    return {**gw.auth("sw.stockport", sub=sub), "X-Request-ID": request_id or f"lim-{uuid.uuid4()}"}


def limits_of(gw: RunningGateway) -> InFlightLimits:
    limits: InFlightLimits = gw.app.state.gateway.limits
    return limits


async def test_a_worker_past_their_limit_gets_429_with_retry_after_and_it_is_audited(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    limits = {"max_in_flight_per_user": 2, "max_in_flight_total": 10, "retry_after_seconds": 3}
    async with gated_gateway(issuer, tmp_path, **limits) as (gw, gate):
        held = [
            asyncio.create_task(gw.client.post("/v1/searches", json=SEARCH, headers=worker(gw, "user-a"))),
            asyncio.create_task(
                gw.client.post("/v1/family-context", json=FAMILY, headers=worker(gw, "user-a"))
            ),
        ]
        await gate.until_holding(2)
        assert limits_of(gw).in_flight_of((issuer.issuer, "user-a")) == 2

        refused = await gw.client.post(
            "/v1/searches", json=SEARCH, headers=worker(gw, "user-a", "lim-refused-1")
        )
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "3"
        body = refused.json()
        assert "2 searches or family-context requests in progress" in body["detail"]
        assert "limits.max_in_flight_per_user" in body["detail"]
        assert "try again in 3 s" in body["detail"]
        assert NHS["zoe"] not in refused.text
        [record] = flat_records(gw.settings.audit.database_url, request_id="lim-refused-1")
        assert (record["outcome"], record["http_status"]) == ("denied", 429)
        assert record["endpoint"] == "POST /v1/searches"
        assert record["purpose"] == "s17_assessment" and record["case_reference"] == "CASE-LIMITS-1"
        assert record["query_terms"] == {"nhs_number": NHS["zoe"]}

        # Another worker is not held back by user-a's limit.
        other = asyncio.create_task(gw.client.post("/v1/searches", json=SEARCH, headers=worker(gw, "user-b")))
        await gate.until_holding(3)
        gate.open()
        answers = await asyncio.gather(*held, other)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert limits_of(gw).in_flight == 0 and limits_of(gw).workers_in_flight == 0
        again = await gw.client.post("/v1/searches", json=SEARCH, headers=worker(gw, "user-a"))
        assert again.status_code == 200, again.text


async def test_the_gateway_wide_limit_refuses_everyone_but_never_health_keys_or_the_ig_api(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    limits = {"max_in_flight_per_user": 2, "max_in_flight_total": 3}
    async with gated_gateway(issuer, tmp_path, **limits) as (gw, gate):
        held = [
            asyncio.create_task(gw.client.post("/v1/searches", json=SEARCH, headers=worker(gw, sub)))
            for sub in ("user-a", "user-a", "user-b")
        ]
        await gate.until_holding(3)

        refused = await gw.client.post(
            "/v1/family-context", json=FAMILY, headers=worker(gw, "user-c", "lim-refused-total")
        )
        assert refused.status_code == 429, refused.text
        assert refused.headers["retry-after"] == "2"  # the default retry_after_seconds
        assert "limits.max_in_flight_total" in refused.json()["detail"]
        [record] = flat_records(gw.settings.audit.database_url, request_id="lim-refused-total")
        assert (record["outcome"], record["http_status"], record["endpoint"]) == (
            "denied",
            429,
            "POST /v1/family-context",
        )
        assert record["query_terms"] == {"subject": FAMILY["subject"]}

        # Not data requests: answered while every slot is taken.
        assert (await gw.client.get("/healthz")).status_code == 200
        assert (await gw.client.get("/readyz")).status_code == 200
        assert (await gw.client.get("/.well-known/jwks.json")).status_code == 200
        ig_read = await gw.client.get("/v1/audit/events", headers=gw.auth("ig.stockport"))
        assert ig_read.status_code == 200, ig_read.text
        # Invalid tokens and bodies are answered as before (401, 422), never 429.
        assert (await gw.client.post("/v1/searches", json=SEARCH)).status_code == 401
        bad = await gw.client.post("/v1/searches", json={"purpose": "x"}, headers=worker(gw, "user-c"))
        assert bad.status_code == 422

        gate.open()
        assert [a.status_code for a in await asyncio.gather(*held)] == [200, 200, 200]
        assert limits_of(gw).in_flight == 0


async def test_slots_are_given_back_after_errors_refusals_and_cancellation(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    limits = {"max_in_flight_per_user": 1, "max_in_flight_total": 2}
    async with gated_gateway(issuer, tmp_path, **limits) as (gw, gate):
        user_a = (issuer.issuer, "user-a")
        # A request whose work fails (404: no such council), one the access policy refuses (403), and
        # one with a token but no roles (403): each leaves nothing held.
        unknown = {**FAMILY, "subject": {"gss_code": "E08000999", "local_person_id": "X-1"}}
        answer = await gw.client.post("/v1/family-context", json=unknown, headers=worker(gw, "user-a"))
        assert answer.status_code == 404, answer.text
        no_roles = {**gw.auth("sw.stockport", sub="user-a", roles=[]), "X-Request-ID": "lim-no-roles"}
        answer = await gw.client.post("/v1/searches", json=SEARCH, headers=no_roles)
        assert answer.status_code == 403, answer.text
        assert limits_of(gw).in_flight_of(user_a) == 0

        # Cancelled while its council holds the call (a client gone, a server stopping): given back.
        task = asyncio.create_task(gw.client.post("/v1/searches", json=SEARCH, headers=worker(gw, "user-a")))
        await gate.until_holding(1)
        assert limits_of(gw).in_flight_of(user_a) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert limits_of(gw).in_flight == 0 and limits_of(gw).workers_in_flight == 0

        gate.open()
        answer = await gw.client.post("/v1/searches", json=SEARCH, headers=worker(gw, "user-a"))
        assert answer.status_code == 200, answer.text


async def test_no_slot_or_worker_entry_is_left_after_many_requests_of_many_workers(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    limits = {"max_in_flight_per_user": 2, "max_in_flight_total": 8}
    async with gated_gateway(issuer, tmp_path, **limits) as (gw, gate):
        gate.open()
        statuses: list[int] = []
        for batch in range(5):  # 5 batches of 12 concurrent requests from 6 workers
            answers = await asyncio.gather(
                *(
                    gw.client.post("/v1/searches", json=SEARCH, headers=worker(gw, f"user-{batch}-{i % 6}"))
                    for i in range(12)
                )
            )
            statuses += [a.status_code for a in answers]
            for answer in answers:
                if answer.status_code == 429:
                    assert answer.headers["retry-after"] == "2"
        assert set(statuses) <= {200, 429} and statuses.count(200) >= 5
        assert limits_of(gw).in_flight == 0 and limits_of(gw).workers_in_flight == 0


def test_the_limiter_refuses_per_worker_first_then_overall_and_keeps_no_idle_workers() -> None:
    limits = InFlightLimits(per_user=2, total=3, retry_after_seconds=5)
    limits.acquire(("iss", "a"))
    limits.acquire(("iss", "a"))
    with pytest.raises(TooManyInFlight) as mine:
        limits.acquire(("iss", "a"))
    assert (mine.value.scope, mine.value.status, mine.value.headers()) == ("user", 429, {"Retry-After": "5"})
    limits.acquire(("other-iss", "a"))  # the same subject from another issuer is another worker
    with pytest.raises(TooManyInFlight) as everyone:
        limits.acquire(("iss", "b"))
    assert everyone.value.scope == "total"
    assert limits.in_flight == 3 and limits.in_flight_of(("iss", "b")) == 0
    with pytest.raises(RuntimeError):
        limits.release(("iss", "b"))
    for user in (("iss", "a"), ("iss", "a"), ("other-iss", "a")):
        limits.release(user)
    assert limits.in_flight == 0 and limits.workers_in_flight == 0
    for n in range(10_000):  # ten thousand workers come and go: nothing is kept for them
        with limits.slot(("iss", f"user-{n}")):
            assert limits.workers_in_flight == 1
    assert limits.workers_in_flight == 0


@pytest.mark.parametrize(
    ("limits", "problem"),
    [
        (
            {"max_in_flight_per_user": 10, "max_in_flight_total": 5},
            "limits: max_in_flight_per_user (10) must not exceed max_in_flight_total (5)",
        ),
        ({"max_in_flight_per_user": 0}, "limits.max_in_flight_per_user"),
        ({"retry_after_seconds": 0}, "limits.retry_after_seconds"),
        ({"max_in_flight": 3}, "limits: has a key that is not a known setting: max_in_flight;"),
    ],
)
def test_limits_settings_are_checked_with_clear_errors(limits: dict[str, int], problem: str) -> None:
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(limits=limits)
    assert any(p.startswith(problem) for p in raised.value.problems), raised.value.problems


def test_the_shutdown_grace_period_is_checked(tmp_path: Path) -> None:
    config = tmp_path / "gateway.yaml"
    config.write_text("listen:\n  shutdown_grace_seconds: 0\n", encoding="utf-8")
    with pytest.raises(GatewayConfigError) as raised:
        load_settings(config)
    assert any(p.startswith("listen.shutdown_grace_seconds") for p in raised.value.problems)
    config.write_text("listen:\n  shutdown_grace_seconds: 25\nlimits:\n  max_in_flight_total: 200\n")
    settings = load_settings(config)
    assert settings.listen.shutdown_grace_seconds == 25
    assert (settings.limits.max_in_flight_total, settings.limits.max_in_flight_per_user) == (200, 4)
