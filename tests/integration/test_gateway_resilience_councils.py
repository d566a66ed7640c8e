"""Councils that hang, are slow, send too much or garbage, fail for a moment or keep failing: each ends in
a labelled partial answer (200 with every source's state and detail), never a 500.

The councils here are real gRPC servers (``grpc.aio``, mutual TLS, on 127.0.0.1 port 0) whose FindPeople
is scripted per test; they count the calls (attempts) that reach them, so retries and an open circuit
(no network call) are seen at the server.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from familycontext.v1 import adapter_pb2
from familyctx_gateway.adapter_client import resilience_channel_options
from familyctx_gateway.settings import AdapterTarget, ResilienceSettings
from familyctx_gateway.testing.audit import committed_records
from familyctx_gateway.testing.fake_council import CouncilTrust, FakeAdapterService, person
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer
from familyctx_gateway.testing.pki import ASSERTION_ISSUER, session_pki
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT

PURPOSE = {"purpose": "s17_assessment", "case_reference": "CASE-6"}
SCRIPTED = "E08000032"  # Bradford (the spare council of the test PKI): scripted in every test
SERVICE = "familycontext.v1.AdapterService"

Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


class ScriptedCouncil:
    """A council whose FindPeople runs ``find`` (raw request bytes -> raw answer bytes); Describe and
    GetFamilyContext answer as an empty council. ``attempts``: FindPeople calls that reached it."""

    def __init__(self, find: Handler) -> None:
        self.find = find
        self.attempts = 0
        self.describes = 0

    async def _find(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.attempts += 1
        return await self.find(request, context)

    async def _describe(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        self.describes += 1
        return adapter_pb2.DescribeResponse(contract_version="1.0.0").SerializeToString()

    async def _family(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.NOT_FOUND, "none of the local_person_ids asked for exist")
        raise AssertionError("unreachable")

    def handler(self) -> grpc.GenericRpcHandler:
        # No (de)serialisers: the handlers see and send raw bytes, so one can send bytes that do not parse.
        return grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "FindPeople": grpc.unary_unary_rpc_method_handler(self._find),
                "Describe": grpc.unary_unary_rpc_method_handler(self._describe),
                "GetFamilyContext": grpc.unary_unary_rpc_method_handler(self._family),
            },
        )


@asynccontextmanager
async def serve(council: ScriptedCouncil, address: str = "127.0.0.1:0") -> AsyncIterator[str]:
    """Serve ``council`` over mutual TLS (the session PKI's adapter certificate of SCRIPTED)."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((council.handler(),))
    port = server.add_secure_port(
        address, CouncilTrust(session_pki(), ASSERTION_ISSUER).server_credentials(SCRIPTED)
    )
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


def empty_answer() -> bytes:
    return adapter_pb2.FindPeopleResponse().SerializeToString()


def sleeps(seconds: float) -> Handler:
    async def find(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await asyncio.sleep(seconds)  # the behaviour under test: a slow warehouse
        return empty_answer()

    return find


async def hangs(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.Event().wait()  # never answers; gRPC cancels it at the caller's deadline
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@asynccontextmanager
async def gateway_with(
    issuer: TestIssuer, tmp_path: Path, address: str, *, deadline_ms: int = 1000, **resilience: Any
) -> AsyncIterator[RunningGateway]:
    target = AdapterTarget(gss_code=SCRIPTED, name="Bradford", address=address, deadline_ms=deadline_ms)
    async with running_gateway(
        issuer,
        f"sqlite:///{tmp_path / 'audit.sqlite'}",
        extra_targets=[target],
        resilience=ResilienceSettings(**resilience),
    ) as gw:
        yield gw


async def search(gw: RunningGateway) -> dict[str, Any]:
    """POST /v1/searches for Claire (held at Stockport and Leeds): must be a 200; returns the body."""
    resp = await gw.client.post(
        "/v1/searches", json={**PURPOSE, "nhs_number": NHS["claire"]}, headers=gw.auth()
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def source(body: dict[str, Any], gss_code: str = SCRIPTED) -> dict[str, Any]:
    return next(s for s in body["sources"] if s["gss_code"] == gss_code)


def audited_councils(gw: RunningGateway, request_id: str) -> dict[str, dict[str, Any]]:
    [row] = committed_records(gw.settings.audit.database_url, request_id=request_id)
    return {c["gss_code"]: c for c in row["record"]["outcome"]["councils"]}


def assert_others_answered(body: dict[str, Any]) -> None:
    assert {code: source(body, code)["state"] for code in (STOCKPORT, LEEDS, MANCHESTER)} == dict.fromkeys(
        (STOCKPORT, LEEDS, MANCHESTER), "ok"
    )
    [mother] = body["candidates"]
    assert {r["local_person_id"] for r in mother["records"]} == {"S-1003", "L-77"}


# ---------------------------------------------------------------------------------------------- deadlines


async def test_a_council_that_hangs_times_out_and_the_answer_is_partial(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    council = ScriptedCouncil(hangs)
    async with serve(council) as address, gateway_with(issuer, tmp_path, address) as gw:
        body = await search(gw)
        councils = audited_councils(gw, body["request_id"])
    bradford = source(body)
    assert (bradford["state"], bradford["detail"]) == ("timed_out", "no answer within the 1000 ms deadline")
    assert_others_answered(body)
    assert council.attempts == 1  # DEADLINE_EXCEEDED is never retried
    assert councils[SCRIPTED]["state"] == "timed_out"
    assert councils[SCRIPTED]["detail"] == "no answer within the 1000 ms deadline"


async def test_just_under_the_deadline_answers_and_just_past_it_times_out(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    # Wide margins for a loaded 2-core machine: deadline 1000 ms; 300 ms is under it, 2500 ms past it.
    under = ScriptedCouncil(sleeps(0.3))
    async with serve(under) as address, gateway_with(issuer, tmp_path / "under", address) as gw:
        body = await search(gw)
    assert source(body)["state"] == "ok"
    assert source(body)["latency_ms"] >= 300

    past = ScriptedCouncil(sleeps(2.5))
    async with serve(past) as address, gateway_with(issuer, tmp_path / "past", address) as gw:
        body = await search(gw)
    assert source(body)["state"] == "timed_out"
    assert 1000 <= source(body)["latency_ms"] < 2500
    assert past.attempts == 1
    assert_others_answered(body)


async def test_the_request_deadline_caps_a_slow_second_round(issuer: TestIssuer, tmp_path: Path) -> None:
    # Bradford's own deadline (5 s) is longer than the whole request's (1.5 s): its FindPeople in the second
    # round of the family context is cut at what is left of the request's budget.
    council = ScriptedCouncil(hangs)
    async with (
        serve(council) as address,
        gateway_with(issuer, tmp_path, address, deadline_ms=5000, request_deadline_ms=1500) as gw,
    ):
        resp = await gw.client.post(
            "/v1/family-context",
            json={**PURPOSE, "subject": {"gss_code": STOCKPORT, "local_person_id": "S-1001"}},
            headers=gw.auth(),
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        councils = audited_councils(gw, body["request_id"])
    bradford = source(body)
    assert bradford["state"] == "timed_out"
    assert "left of the request's 1500 ms deadline" in bradford["detail"]
    assert bradford["latency_ms"] < 5000
    assert council.describes == 1 and council.attempts >= 1
    assert (source(body, STOCKPORT)["state"], source(body, MANCHESTER)["state"]) == ("ok", "ok")
    # Leeds answered the second round (the mother is there), but the budget was spent by then: the third
    # round (her details) was not asked, and the answer says so.
    not_asked = "not asked: the request's 1500 ms deadline had run out"
    assert (source(body, LEEDS)["state"], source(body, LEEDS)["detail"]) == ("timed_out", not_asked)
    assert councils[SCRIPTED]["state"] == "timed_out"
    assert (councils[LEEDS]["state"], councils[LEEDS]["detail"]) == ("timed_out", not_asked)
    mother = next(p for p in body["people"] if p["given_name"] == "Claire")
    states = {s["gss_code"]: s for s in mother["council_states"]}
    assert states[SCRIPTED]["state"] == "timed_out"
    assert states[LEEDS]["state"] == "timed_out" and not_asked in states[LEEDS]["detail"]


async def test_councils_not_asked_once_the_request_deadline_has_run_out(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    # Bradford hangs on Describe (first round, 5 s deadline) and eats the whole 1 s budget: the second
    # round's councils are not called at all, and say why.
    council = ScriptedCouncil(hangs)

    async def describe_hangs(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        council.describes += 1
        return await hangs(request, context)

    council._describe = describe_hangs  # type: ignore[method-assign]
    async with (
        serve(council) as address,
        gateway_with(issuer, tmp_path, address, deadline_ms=5000, request_deadline_ms=1000) as gw,
    ):
        leeds: FakeAdapterService = gw.servicers[LEEDS]
        resp = await gw.client.post(
            "/v1/family-context",
            json={**PURPOSE, "subject": {"gss_code": STOCKPORT, "local_person_id": "S-1001"}},
            headers=gw.auth(),
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        councils = audited_councils(gw, body["request_id"])
    assert source(body)["state"] == "timed_out"
    assert re.fullmatch(
        r"no answer within the \d+ ms left of the request's 1000 ms deadline", source(body)["detail"]
    )
    for code in (LEEDS, MANCHESTER):
        assert source(body, code)["state"] == "timed_out"
        assert source(body, code)["detail"] == "not asked: the request's 1000 ms deadline had run out"
        assert councils[code]["detail"] == "not asked: the request's 1000 ms deadline had run out"
    assert "FindPeople" not in [method for method, _ in leeds.calls]
    assert source(body, STOCKPORT)["state"] == "ok"


# ------------------------------------------------------------------------------------- oversized, garbage


async def test_an_oversized_answer_is_cut_off_and_reported(issuer: TestIssuer, tmp_path: Path) -> None:
    async def floods(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        big = [person(SCRIPTED, f"O-{i}", "X" * 1000, "Y" * 1000, None) for i in range(1200)]  # ~2.4 MB
        return adapter_pb2.FindPeopleResponse(candidates=big).SerializeToString()

    council = ScriptedCouncil(floods)
    async with serve(council) as address, gateway_with(issuer, tmp_path, address, max_answer_mib=1) as gw:
        body = await search(gw)
        councils = audited_councils(gw, body["request_id"])
    bradford = source(body)
    assert (bradford["state"], bradford["detail"]) == (
        "error",
        "answer larger than the 1 MiB limit: cut off and not used",
    )
    assert councils[SCRIPTED]["detail"] == bradford["detail"]
    assert_others_answered(body)


async def test_malformed_bytes_are_an_error_not_a_500(issuer: TestIssuer, tmp_path: Path) -> None:
    async def garbage(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return b"\xff\xff\xff\xff\x0f not a protobuf message"

    async with serve(ScriptedCouncil(garbage)) as address, gateway_with(issuer, tmp_path, address) as gw:
        body = await search(gw)
    bradford = source(body)
    assert (bradford["state"], bradford["detail"]) == (
        "error",
        "malformed answer: its bytes are not the contract's message",
    )
    assert_others_answered(body)


# ------------------------------------------------------------------------------------------------ retries


async def test_a_transient_unavailable_is_retried_by_grpc(issuer: TestIssuer, tmp_path: Path) -> None:
    async def fails_once(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        if council.attempts == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "overloaded, try again")
        return empty_answer()

    council = ScriptedCouncil(fails_once)
    async with serve(council) as address, gateway_with(issuer, tmp_path, address) as gw:
        body = await search(gw)
    assert source(body)["state"] == "ok"
    assert council.attempts == 2


async def test_retries_stop_at_max_attempts_and_internal_is_not_retried(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    async def always_unavailable(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        raise AssertionError("unreachable")

    down = ScriptedCouncil(always_unavailable)
    retry = {"max_attempts": 4, "initial_backoff_ms": 10, "max_backoff_ms": 50}
    async with serve(down) as address, gateway_with(issuer, tmp_path / "a", address, retry=retry) as gw:
        body = await search(gw)
    assert source(body)["state"] == "unavailable"
    assert down.attempts == 4

    async def internal(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.INTERNAL, "broken")
        raise AssertionError("unreachable")

    broken = ScriptedCouncil(internal)
    async with serve(broken) as address, gateway_with(issuer, tmp_path / "b", address, retry=retry) as gw:
        body = await search(gw)
    assert (source(body)["state"], broken.attempts) == ("error", 1)


async def test_an_unavailable_with_retry_pushback_is_not_retried(issuer: TestIssuer, tmp_path: Path) -> None:
    # What an adapter does when it answers UNAVAILABLE after accepting the assertion (a retry would be a
    # replay): gRPC's pushback trailer with a negative value stops the retries (gRFC A6).
    async def no_retry(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        context.set_trailing_metadata((("grpc-retry-pushback-ms", "-1"),))
        await context.abort(grpc.StatusCode.UNAVAILABLE, "the council's warehouse did not answer")
        raise AssertionError("unreachable")

    council = ScriptedCouncil(no_retry)
    async with serve(council) as address, gateway_with(issuer, tmp_path, address) as gw:
        body = await search(gw)
    assert (source(body)["state"], council.attempts) == ("unavailable", 1)


def test_no_retry_policy_with_one_attempt() -> None:
    options = dict(resilience_channel_options(ResilienceSettings(retry={"max_attempts": 1})))
    assert options["grpc.enable_retries"] == 0 and "grpc.service_config" not in options
    options = dict(resilience_channel_options(ResilienceSettings()))
    [config] = json.loads(options["grpc.service_config"])["methodConfig"]
    assert config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert options["grpc.max_receive_message_length"] == 8 * 1024 * 1024


# ------------------------------------------------------------------------------------------ circuit breaker


async def test_the_circuit_opens_after_repeated_failures_and_closes_after_the_cool_off(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    async def down(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        raise AssertionError("unreachable")

    async def answers(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        return empty_answer()

    failing, healthy = ScriptedCouncil(down), ScriptedCouncil(answers)
    settings = {"retry": {"max_attempts": 1}, "breaker": {"failures": 3, "open_seconds": 1.0}}
    async with AsyncExitStack() as failing_server:
        address = await failing_server.enter_async_context(serve(failing))
        async with gateway_with(issuer, tmp_path, address, **settings) as gw:
            for _ in range(3):
                assert source(await search(gw))["state"] == "unavailable"
            assert failing.attempts == 3

            # Open: answered at once, no call reaches the council; the answer and the audit say why.
            body = await search(gw)
            bradford = source(body)
            assert bradford["state"] == "circuit_open"
            assert bradford["detail"].startswith(
                "not asked: circuit open after 3 requests in a row whose calls to it failed"
            )
            assert failing.attempts == 3
            assert_others_answered(body)
            audited = audited_councils(gw, body["request_id"])[SCRIPTED]
            assert (audited["state"], audited["detail"]) == ("circuit_open", bradford["detail"])
            sources = (await gw.client.get("/v1/sources", headers=gw.auth())).json()
            assert source(sources)["state"] == "circuit_open"

            # The council restarts, healthy, on the same port; after the cool-off one trial call closes it.
            await failing_server.aclose()
            async with serve(healthy, address):
                await asyncio.sleep(1.2)  # the configured 1 s cool-off must pass: the behaviour under test
                assert source(await search(gw))["state"] == "ok"
                assert source(await search(gw))["state"] == "ok"
                assert healthy.attempts == 2
                sources = (await gw.client.get("/v1/sources", headers=gw.auth())).json()
                assert source(sources)["state"] == "ok"
    assert failing.attempts == 3


async def test_one_family_context_request_counts_once_however_many_of_its_look_ups_failed(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    """A family context looks each family member up in every other council at once: their failures are
    one failed request, so one slow or failing request cannot open a council's circuit for everyone
    (found by a fresh-user test). Two requests (``failures: 2``) do open it."""

    async def down(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.UNAVAILABLE, "down")
        raise AssertionError("unreachable")

    async def family_context() -> dict[str, Any]:
        resp = await gw.client.post(
            "/v1/family-context",
            json={**PURPOSE, "subject": {"gss_code": STOCKPORT, "local_person_id": "S-1001"}},
            headers=gw.auth(),
        )
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        return body

    council = ScriptedCouncil(down)
    settings = {"retry": {"max_attempts": 1}, "breaker": {"failures": 2, "open_seconds": 600.0}}
    async with serve(council) as address, gateway_with(issuer, tmp_path, address, **settings) as gw:
        first = await family_context()
        look_ups = council.attempts
        assert look_ups >= 2  # one FindPeople per family member: more than the breaker's 2 failures
        assert source(first)["state"] == "unavailable"

        second = await family_context()  # still asked: the first request was one failure
        assert source(second)["state"] == "unavailable"
        assert council.attempts == 2 * look_ups

        third = await family_context()  # two failed requests in a row: open
    assert source(third)["state"] == "circuit_open"
    assert source(third)["detail"].startswith(
        "not asked: circuit open after 2 requests in a row whose calls to it failed"
    )
    assert council.attempts == 2 * look_ups
    assert {source(third, code)["state"] for code in (STOCKPORT, LEEDS, MANCHESTER)} == {"ok"}


async def test_a_council_rejecting_queries_stays_in_circuit(issuer: TestIssuer, tmp_path: Path) -> None:
    """INVALID_ARGUMENT means the council works and refused the question: one worker's odd queries must
    not open its circuit and cut it off for everyone (found by a fresh-user test)."""

    async def rejects(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "query has no identifier")
        raise AssertionError("unreachable")

    council = ScriptedCouncil(rejects)
    settings = {"retry": {"max_attempts": 1}, "breaker": {"failures": 3, "open_seconds": 60.0}}
    async with serve(council) as address, gateway_with(issuer, tmp_path, address, **settings) as gw:
        for _ in range(6):
            assert source(await search(gw))["state"] == "error"
        assert council.attempts == 6  # every question reached the council: no circuit opened
        sources = (await gw.client.get("/v1/sources", headers=gw.auth())).json()
        assert source(sources)["state"] != "circuit_open"
