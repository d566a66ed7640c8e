"""Health watching: each adapter's grpc.health.v1 status and Describe, polled in the background.

A council reporting NOT_SERVING is ``unavailable`` with no data call, and is asked again once it
reports SERVING; a council whose Describe says a dataset is stale answers, and the answer (and its
audit record) says the data is stale; ``/readyz`` stays ready with every council down.

The councils are real gRPC servers over mutual TLS on 127.0.0.1 port 0 serving the AdapterService
(fake council data) beside grpc.health.v1 (grpc's own aio HealthServicer, as the adapter does). The
health watch polls every 1 s here (the shortest allowed); waits are bounded polls of GET /v1/sources.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from familycontext.v1 import adapter_pb2_grpc
from familyctx_gateway.app import create_app
from familyctx_gateway.settings import AdapterTarget, GatewaySettings, OidcSettings
from familyctx_gateway.testing.audit import committed_records
from familyctx_gateway.testing.fake_council import (
    CouncilData,
    CouncilTrust,
    FakeAdapterService,
    unreachable_address,
)
from familyctx_gateway.testing.gateway import RunningGateway, gateway_trust_settings, running_gateway
from familyctx_gateway.testing.issuer import AUDIENCE, TestIssuer, running_issuer
from familyctx_gateway.testing.pki import ASSERTION_ISSUER, session_pki
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT, councils
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio

PURPOSE = {"purpose": "s17_assessment", "case_reference": "CASE-HEALTH"}
SERVICE = "familycontext.v1.AdapterService"
WATCHED = "E08000032"  # Bradford: the spare council of the test PKI
WAIT_SECONDS = 20.0


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@asynccontextmanager
async def watched_council(
    data: CouncilData, address: str = "127.0.0.1:0"
) -> AsyncIterator[tuple[str, FakeAdapterService, Any]]:
    """``data`` served with grpc.health.v1 beside it (SERVING at first) on ``address`` (default: a free
    port); yields (address, servicer, health servicer)."""
    trust = CouncilTrust(session_pki(), ASSERTION_ISSUER)
    servicer = FakeAdapterService(data, trust.verifier(data.gss_code))
    health = health_aio.HealthServicer()
    await health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    server = grpc.aio.server()
    adapter_pb2_grpc.add_AdapterServiceServicer_to_server(servicer, server)
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    port = server.add_secure_port(address, trust.server_credentials(data.gss_code))
    await server.start()
    try:
        yield f"127.0.0.1:{port}", servicer, health
    finally:
        await server.stop(grace=None)


def bradford(**changes: Any) -> CouncilData:
    """Leeds's people (Claire among them) as Bradford's records."""
    leeds = councils()[LEEDS]
    return CouncilData(WATCHED, "Bradford", people=list(leeds.people), **changes)


@asynccontextmanager
async def gateway_watching(
    issuer: TestIssuer, tmp_path: Path, address: str, **settings: Any
) -> AsyncIterator[RunningGateway]:
    target = AdapterTarget(gss_code=WATCHED, name="Bradford", address=address, deadline_ms=3000)
    async with running_gateway(
        issuer,
        f"sqlite:///{tmp_path / 'audit.sqlite'}",
        extra_targets=[target],
        health_poll_seconds=1.0,
        **settings,
    ) as gw:
        yield gw


async def listed(gw: RunningGateway, code: str = WATCHED) -> dict[str, Any]:
    resp = await gw.client.get("/v1/sources", headers=gw.auth())
    assert resp.status_code == 200, resp.text
    source: dict[str, Any] = next(s for s in resp.json()["sources"] if s["gss_code"] == code)
    return source


async def wait_for(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    loop = asyncio.get_running_loop()
    ends = loop.time() + WAIT_SECONDS
    while not await check():
        if loop.time() > ends:
            raise AssertionError(f"not within {WAIT_SECONDS} s: {what}")
        await asyncio.sleep(0.05)


async def wait_for_health(gw: RunningGateway, status: str, code: str = WATCHED) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def check() -> bool:
        seen.update(await listed(gw, code))
        return bool(seen["health"]["status"] == status)

    await wait_for(f"{code} health {status}", check)
    return seen


async def search(gw: RunningGateway) -> dict[str, Any]:
    resp = await gw.client.post(
        "/v1/searches", json={**PURPOSE, "nhs_number": NHS["claire"]}, headers=gw.auth()
    )
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def source(body: dict[str, Any], code: str = WATCHED) -> dict[str, Any]:
    found: dict[str, Any] = next(s for s in body["sources"] if s["gss_code"] == code)
    return found


def finds(servicer: FakeAdapterService) -> int:
    return sum(1 for method, _ in servicer.calls if method == "FindPeople")


def audited(gw: RunningGateway, request_id: str) -> dict[str, dict[str, Any]]:
    [row] = committed_records(gw.settings.audit.database_url, request_id=request_id)
    return {c["gss_code"]: c for c in row["record"]["outcome"]["councils"]}


async def test_a_council_reporting_not_serving_is_unavailable_without_a_data_call_then_recovers(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    async with (
        watched_council(bradford()) as (address, servicer, health),
        gateway_watching(issuer, tmp_path, address) as gw,
    ):
        serving = await wait_for_health(gw, "serving")
        first = await search(gw)
        assert (source(first)["state"], finds(servicer)) == ("ok", 1)

        await health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
        down = await wait_for_health(gw, "not_serving")
        during = await search(gw)
        councils_during = audited(gw, during["request_id"])
        calls_during = finds(servicer)

        await health.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
        await wait_for_health(gw, "serving")
        after = await search(gw)
    assert serving["health"]["checked_at"] is not None and serving["health"]["detail"] is None
    assert down["state"] == "unavailable" and "reports not serving" in down["detail"]
    assert down["health"]["detail"] == "the adapter reports not serving"
    assert source(during)["state"] == "unavailable"
    assert source(during)["detail"] == "not asked: its adapter reports not serving (grpc.health.v1)"
    assert calls_during == 1  # no data call while it reported NOT_SERVING
    assert councils_during[WATCHED]["state"] == "unavailable"
    assert "reports not serving" in councils_during[WATCHED]["detail"]
    # The other councils answered: a partial answer, Claire found at Stockport and Leeds.
    assert {source(during, c)["state"] for c in (STOCKPORT, LEEDS, MANCHESTER)} == {"ok"}
    assert {r["gss_code"] for r in during["candidates"][0]["records"]} == {STOCKPORT, LEEDS}
    assert (source(after)["state"], finds(servicer)) == ("ok", 2)
    assert WATCHED in {r["gss_code"] for r in after["candidates"][0]["records"]}


async def test_an_open_circuit_lets_a_trial_through_as_soon_as_the_adapter_reports_serving_again(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    """The council goes away, its circuit opens (for 600 s here), it comes back on the same port: once its
    health check answers SERVING the next request is the trial call and is answered, without waiting out
    the cool-off (found by a fresh-user test: "next trial call in 16 s" with the adapter serving)."""
    settings = {
        "resilience": {"retry": {"max_attempts": 1}, "breaker": {"failures": 2, "open_seconds": 600}},
        # Only searches call the council (no Describe): the search after SERVING is the trial.
        "describe_cache_seconds": 600,
    }
    async with AsyncExitStack() as first_life:
        address, _servicer, _health = await first_life.enter_async_context(watched_council(bradford()))
        async with gateway_watching(issuer, tmp_path, address, **settings) as gw:
            await wait_for_health(gw, "serving")
            assert source(await search(gw))["state"] == "ok"
            await first_life.aclose()  # the council goes away

            for _ in range(2):
                assert source(await search(gw))["state"] == "unavailable"
            opened = source(await search(gw))
            assert opened["state"] == "circuit_open" and "the next trial call in" in opened["detail"]
            await wait_for_health(gw, "no_answer")

            async with watched_council(bradford(), address) as (_address, servicer, _health):
                await wait_for_health(gw, "serving")
                answered = await search(gw)
                listed_after = await listed(gw)
    assert source(answered)["state"] == "ok"
    assert WATCHED in {r["gss_code"] for r in answered["candidates"][0]["records"]}
    assert finds(servicer) == 1
    assert listed_after["state"] == "ok"


async def test_stale_data_is_named_in_the_answer_and_the_audit_record(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    # Refreshed three days ago, promised daily: stale (the watch's Describe says so before any request).
    three_days_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    async with (
        watched_council(bradford(refreshed_at=three_days_ago)) as (address, servicer, _health),
        gateway_watching(issuer, tmp_path, address) as gw,
    ):
        await wait_for("Bradford described by the health watch", lambda: _described(servicer))
        body = await search(gw)
        councils_ = audited(gw, body["request_id"])
        fresh = source(body, LEEDS)
    bradford_source = source(body)
    assert bradford_source["state"] == "ok"
    assert {d["dataset_id"]: d["stale"] for d in bradford_source["datasets"]} == {"csc": True, "asc": True}
    assert bradford_source["detail"] == "stale data: csc, asc not refreshed within the promised interval"
    assert councils_[WATCHED]["detail"] == bradford_source["detail"]
    assert fresh["detail"] is None
    # The watch's Describe is signed for the gateway itself, with no worker and no purpose.
    describes = [r for m, r in servicer.calls if m == "Describe"]
    assert describes and describes[0].sub == "familyctx-gateway/health-watch" and describes[0].purpose == ""


async def _described(servicer: FakeAdapterService) -> bool:
    return any(method == "Describe" for method, _ in servicer.calls)


async def test_readyz_stays_ready_with_every_council_down(issuer: TestIssuer, tmp_path: Path) -> None:
    with unreachable_address() as gone, unreachable_address() as also_gone:
        async with watched_council(bradford()) as (address, _servicer, health):
            await health.set(SERVICE, health_pb2.HealthCheckResponse.NOT_SERVING)
            targets = [
                AdapterTarget(gss_code=STOCKPORT, name="Stockport", address=gone, deadline_ms=1000),
                AdapterTarget(gss_code=LEEDS, name="Leeds", address=also_gone, deadline_ms=1000),
                AdapterTarget(gss_code=WATCHED, name="Bradford", address=address, deadline_ms=1000),
            ]
            settings = GatewaySettings(
                audit={"database_url": f"sqlite:///{tmp_path / 'audit.sqlite'}", "auto_migrate": True},
                oidc=[OidcSettings(issuer=issuer.issuer, audience=AUDIENCE)],
                adapters=targets,
                health_poll_seconds=1.0,
                **gateway_trust_settings(session_pki()),
            )
            app = create_app(settings)
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://gw.test"
                ) as client,
            ):
                gw = RunningGateway(app, client, settings, issuer)
                down = await wait_for_health(gw, "no_answer", STOCKPORT)
                await wait_for_health(gw, "not_serving", WATCHED)
                ready = await client.get("/readyz")
                body = await search(gw)
    assert ready.status_code == 200, ready.text
    assert ready.json() == {"status": "ready", "checks": {"audit_store": "ok", "jwks": "ok"}}
    assert down["health"]["detail"] == "adapter not reachable"
    assert {s["gss_code"]: s["state"] for s in body["sources"]} == dict.fromkeys(
        (STOCKPORT, LEEDS, WATCHED), "unavailable"
    )
    assert body["candidates"] == []
