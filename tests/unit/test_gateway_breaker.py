"""The per-adapter circuit breaker's state machine (a test clock), its log lines, how the adapter client
and the health watcher feed it, and the ``resilience`` settings."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from typing import Any

import grpc
import pytest
from familycontext.v1 import adapter_pb2
from familyctx_gateway.adapter_client import AdapterClient
from familyctx_gateway.api.schemas import SourceState
from familyctx_gateway.breaker import BreakerState, CallEnd, CircuitBreaker
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.health import HealthStatus, HealthWatch
from familyctx_gateway.settings import AdapterTarget, BreakerSettings, load_settings
from familyctx_gateway.testing.pki import session_pki
from grpc_health.v1 import health_pb2

from familyctx.trust.assertion import AssertionSigner, Requester


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def breaker(
    clock: Clock, failures: int = 3, window: float = 10.0, open_seconds: float = 30.0
) -> CircuitBreaker:
    settings = BreakerSettings(failures=failures, window_seconds=window, open_seconds=open_seconds)
    return CircuitBreaker(settings, clock=clock)


def fail(b: CircuitBreaker, times: int, request_id: str | None = None) -> None:
    """``times`` failed calls, all of request ``request_id`` (None: calls recorded without one)."""
    for _ in range(times):
        assert b.allow()
        b.record(CallEnd.failure, request_id=request_id)


def test_opens_after_n_failures_in_a_row_and_refuses_at_once() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 2)
    assert b.state is BreakerState.closed
    fail(b, 1)
    assert b.state is BreakerState.open
    assert not b.allow()
    view = b.view()
    assert (view.state, view.failures, view.retry_in_seconds) == (BreakerState.open, 3, 30.0)


def test_a_success_or_a_gap_longer_than_the_window_starts_the_count_again() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 2)
    assert b.allow()
    b.record(CallEnd.success)
    fail(b, 2)
    assert b.state is BreakerState.closed
    clock.now += 10.5  # past the window: the two failures before do not count
    fail(b, 2)
    assert b.state is BreakerState.closed
    fail(b, 1)
    assert b.state is BreakerState.open


def test_inconclusive_ends_do_not_count() -> None:
    b = breaker(Clock())
    for _ in range(10):
        assert b.allow()
        b.record(CallEnd.inconclusive)
    assert b.view().failures == 0 and b.state is BreakerState.closed


def test_one_trial_after_the_cool_off_closes_on_success() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now += 29.9
    assert not b.allow()
    clock.now += 0.2
    assert b.state is BreakerState.half_open
    assert b.allow()  # the trial
    assert not b.allow()  # a concurrent call while the trial is in flight
    b.record(CallEnd.success)
    assert b.state is BreakerState.closed and b.allow()
    b.record(CallEnd.success)


def test_a_failed_trial_opens_the_circuit_for_another_cool_off() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now += 31
    assert b.allow()
    b.record(CallEnd.failure)
    assert b.state is BreakerState.open and not b.allow()
    clock.now += 29
    assert not b.allow()
    clock.now += 2
    assert b.allow()


def test_an_inconclusive_trial_lets_the_next_call_be_the_trial() -> None:
    clock = Clock()
    b = breaker(clock)
    fail(b, 3)
    clock.now += 31
    assert b.allow()
    b.record(CallEnd.inconclusive)
    assert b.state is BreakerState.half_open
    assert b.allow()
    b.record(CallEnd.success)
    assert b.state is BreakerState.closed


def test_failed_calls_of_one_request_count_as_one_failure() -> None:
    """One family-context request sends one FindPeople per family member to a council at once: when they
    all fail, that is one failed request, not five failures in a row (found by a fresh-user test)."""
    b = breaker(Clock(), failures=5)
    fail(b, 5, request_id="r-1")
    assert (b.state, b.view().failures) == (BreakerState.closed, 1)
    fail(b, 7, request_id="r-1")  # more calls of the same request: still one
    assert (b.state, b.view().failures) == (BreakerState.closed, 1)


def test_five_requests_whose_calls_failed_open_the_circuit() -> None:
    b = breaker(Clock(), failures=5)
    for n in range(1, 5):
        fail(b, 3, request_id=f"r-{n}")
    assert (b.state, b.view().failures) == (BreakerState.closed, 4)
    fail(b, 1, request_id="r-5")
    assert (b.state, b.view().failures) == (BreakerState.open, 5)
    assert not b.allow()


def test_a_success_in_any_request_starts_the_count_again_and_the_window_still_applies() -> None:
    clock = Clock()
    b = breaker(clock, failures=3, window=10.0)
    fail(b, 2, request_id="r-1")
    fail(b, 1, request_id="r-2")
    assert b.allow()
    b.record(CallEnd.success, request_id="r-3")
    assert b.view().failures == 0
    fail(b, 1, request_id="r-1")  # r-1 failing again after the success counts again
    fail(b, 1, request_id="r-4")
    assert (b.state, b.view().failures) == (BreakerState.closed, 2)
    clock.now += 10.5  # past the window: the two before do not count, nor block r-1 from counting
    fail(b, 1, request_id="r-1")
    assert (b.state, b.view().failures) == (BreakerState.closed, 1)


def test_calls_without_a_request_id_count_one_by_one() -> None:
    b = breaker(Clock(), failures=3)
    fail(b, 3, request_id="")
    assert b.state is BreakerState.open


def test_serving_while_open_makes_the_next_call_the_trial_at_once() -> None:
    clock = Clock()
    b = breaker(clock, open_seconds=30.0)
    b.health_reported(True)  # closed: nothing changes
    assert b.state is BreakerState.closed
    fail(b, 3)
    clock.now += 1
    b.health_reported(False)  # the adapter still down: the circuit stays open
    assert b.state is BreakerState.open and not b.allow()
    b.health_reported(True)  # back: half-open now, not closed; the trial decides
    assert b.state is BreakerState.half_open
    assert b.view().retry_in_seconds is None
    assert b.allow()  # the trial, 29 s before the cool-off would have ended
    assert not b.allow()  # only one trial
    b.health_reported(True)  # another SERVING while the trial is in flight changes nothing
    assert not b.allow()
    b.record(CallEnd.success)
    assert b.state is BreakerState.closed and b.view().failures == 0


def test_a_failed_trial_granted_by_serving_waits_out_the_cool_off_until_health_changes() -> None:
    """An adapter that reports SERVING but fails its calls (a slow warehouse behind a live process) must
    not be tried at every health check: after one such trial fails, the full cool-off applies again."""
    clock = Clock()
    b = breaker(clock, open_seconds=30.0)
    fail(b, 3)
    b.health_reported(True)
    assert b.allow()
    b.record(CallEnd.failure)
    assert b.state is BreakerState.open
    b.health_reported(True)  # the data calls and the health check disagree: the data calls win
    assert b.state is BreakerState.open and not b.allow()
    clock.now += 30
    assert b.allow()  # the cool-off's own trial
    b.record(CallEnd.failure)
    b.health_reported(False)  # the adapter went away...
    b.health_reported(True)  # ...and came back: a new reason to try at once
    assert b.allow()
    b.record(CallEnd.success)
    assert b.state is BreakerState.closed


def test_an_inconclusive_trial_granted_by_serving_lets_the_next_call_be_the_trial() -> None:
    b = breaker(Clock())
    fail(b, 3)
    b.health_reported(True)
    assert b.allow()
    b.record(CallEnd.inconclusive)
    assert b.state is BreakerState.half_open and b.allow()


def test_each_transition_is_logged_once_with_the_council_and_counts(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="familyctx_gateway.breaker")
    clock = Clock()
    b = CircuitBreaker(
        BreakerSettings(failures=5, window_seconds=60, open_seconds=30), clock=clock, council="E08000035"
    )
    for n in range(5):  # two calls in parallel per request; the last ends after the circuit opened
        assert b.allow() and b.allow()
        b.record(CallEnd.failure, request_id=f"request-{n}")
        b.record(CallEnd.failure, request_id=f"request-{n}")
    for _ in range(3):
        assert not b.allow()  # refused calls log nothing of the breaker
    clock.now += 30
    assert b.allow()
    assert not b.allow()
    b.record(CallEnd.failure)
    b.health_reported(False)
    b.health_reported(True)
    b.health_reported(True)
    assert b.allow()
    b.record(CallEnd.success)
    assert b.allow()
    b.record(CallEnd.success)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "familyctx_gateway.breaker"]
    assert lines == [
        (logging.WARNING, "circuit opened council=E08000035 failures=5 open_seconds=30 reason=failures"),
        (logging.INFO, "circuit half-open council=E08000035 reason=cool_off"),
        (logging.WARNING, "circuit opened council=E08000035 failures=5 open_seconds=30 reason=trial_failed"),
        (logging.INFO, "circuit half-open council=E08000035 reason=health_serving"),
        (logging.INFO, "circuit closed council=E08000035"),
    ]
    assert not any("request-" in message for _level, message in lines)  # no request ids, no people


# --- the adapter client and the health watcher feed the breaker --------------------------------------

REQUESTER = Requester(
    sub="user-1",
    name="Sam Walker",
    organisation="E08000007",
    role="social_worker",
    client="familyctx-cli",
    purpose="s47_enquiry",
    case_reference="CASE-1",
    request_id="r-1",
)


class _Council:
    """A council's transport: every data call fails UNAVAILABLE while ``down``; Describe and the
    grpc.health.v1 check answer as ``health`` says (``None``: the check fails UNAVAILABLE too)."""

    def __init__(self) -> None:
        self.down = True
        self.health: int | None = health_pb2.HealthCheckResponse.SERVING
        self.calls: list[str] = []

    async def _answer(self, method: str, response: Any) -> Any:
        self.calls.append(method)
        await asyncio.sleep(0)
        if self.down:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "Connection refused"
            )
        return response

    async def describe(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._answer("describe", adapter_pb2.DescribeResponse())

    async def find_people(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._answer("find_people", adapter_pb2.FindPeopleResponse())

    async def get_family_context(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._answer("get_family_context", adapter_pb2.GetFamilyContextResponse())

    async def check_health(self, service: str, *, deadline_seconds: float) -> int:
        if self.health is None:
            raise grpc.aio.AioRpcError(
                grpc.StatusCode.UNAVAILABLE, grpc.aio.Metadata(), grpc.aio.Metadata(), "Connection refused"
            )
        return self.health

    async def close(self) -> None:
        return None


def _client(council: _Council, *, failures: int = 5, open_seconds: float = 600.0) -> AdapterClient:
    target = AdapterTarget(gss_code="E08000035", name="Leeds", address="127.0.0.1:1")
    signer = AssertionSigner.from_file(session_pki().assertion_key, issuer="https://gateway.test")
    settings = BreakerSettings(failures=failures, open_seconds=open_seconds)
    return AdapterClient(target, council, signer, breaker=CircuitBreaker(settings, council=target.gss_code))


async def _request(client: AdapterClient, request_id: str, lookups: int) -> list[SourceState]:
    """One request's look-ups in one council, in parallel (as a family context makes them)."""
    requester = replace(REQUESTER, request_id=request_id)
    results = await asyncio.gather(
        *(
            client.call("find_people", adapter_pb2.FindPeopleRequest(), requester=requester)
            for _ in range(lookups)
        )
    )
    return [r.state for r in results]


def test_the_default_breaker_of_an_adapter_client_logs_its_council() -> None:
    target = AdapterTarget(gss_code="E08000035", name="Leeds", address="127.0.0.1:1")
    signer = AssertionSigner.from_file(session_pki().assertion_key, issuer="https://gateway.test")
    assert AdapterClient(target, _Council(), signer).breaker.council == "E08000035"


async def test_one_family_context_request_does_not_open_the_circuit_five_requests_do() -> None:
    council = _Council()
    client = _client(council)
    assert await _request(client, "r-1", 5) == [SourceState.unavailable] * 5
    assert client.breaker.state is BreakerState.closed
    for n in range(2, 5):
        await _request(client, f"r-{n}", 5)
    assert client.breaker.state is BreakerState.closed
    assert await _request(client, "r-5", 5) == [SourceState.unavailable] * 5
    assert client.breaker.state is BreakerState.open
    calls = len(council.calls)
    states = await _request(client, "r-6", 5)
    assert states == [SourceState.circuit_open] * 5 and len(council.calls) == calls  # nothing sent
    result = await client.call("find_people", adapter_pb2.FindPeopleRequest(), requester=REQUESTER)
    assert result.detail is not None
    assert result.detail.startswith(
        "not asked: circuit open after 5 requests in a row whose calls to it failed; the next trial call in "
    )


async def test_the_health_watch_lets_the_trial_go_as_soon_as_the_adapter_reports_serving() -> None:
    council = _Council()
    client = _client(council, failures=1, open_seconds=600.0)
    watch = HealthWatch(poll_seconds=10.0, describe_cache_seconds=0.0)
    council.health = None  # the adapter is gone: no answer to the health check either
    await _request(client, "r-1", 3)
    assert client.breaker.state is BreakerState.open

    record = await watch.check_once(client)  # no answer: the circuit stays open, no call is made
    assert record.status is HealthStatus.no_answer
    assert client.breaker.state is BreakerState.open and council.calls.count("describe") == 0

    council.down, council.health = False, health_pb2.HealthCheckResponse.SERVING  # it is back
    record = await watch.check_once(client)
    # SERVING made the watch's own Describe the trial call, long before the 600 s cool-off, and it closed
    # the circuit: the next request is answered.
    assert record.status is HealthStatus.serving
    assert council.calls.count("describe") == 1
    assert client.breaker.state is BreakerState.closed
    assert await _request(client, "r-2", 2) == [SourceState.ok] * 2


async def test_serving_while_the_data_calls_still_fail_reopens_the_circuit_at_the_trial() -> None:
    council = _Council()
    client = _client(council, failures=1, open_seconds=600.0)
    watch = HealthWatch(poll_seconds=10.0, describe_cache_seconds=0.0)
    await _request(client, "r-1", 1)
    assert client.breaker.state is BreakerState.open
    await watch.check_once(client)  # SERVING, but the trial (its Describe) still fails
    assert council.calls == ["find_people", "describe"]
    assert client.breaker.state is BreakerState.open
    await watch.check_once(client)  # SERVING again: no second early trial; nothing is sent
    assert council.calls == ["find_people", "describe"]
    assert await _request(client, "r-2", 1) == [SourceState.circuit_open]


def test_resilience_settings_reach_every_adapter_and_the_request_deadline_defaults_to_twice_the_longest() -> (
    None
):
    adapters = [
        AdapterTarget(gss_code="E08000007", name="Stockport", address="127.0.0.1:1", deadline_ms=1500),
        AdapterTarget(gss_code="E08000035", name="Leeds", address="127.0.0.1:2", deadline_ms=2500),
    ]
    trust = {
        "assertion": {"issuer": "x", "signing_key_file": "k.json"},
        "adapter_tls": {"ca_file": "a", "cert_file": "b", "key_file": "c"},
    }
    settings = load_settings(adapters=adapters, **trust)
    assert settings.resilience.request_deadline_ms == 5000
    assert all(a.resilience is settings.resilience for a in settings.adapters)
    settings = load_settings(
        adapters=adapters, resilience={"request_deadline_ms": 3000, "max_answer_mib": 2}, **trust
    )
    assert [a.resilience.request_deadline_ms for a in settings.adapters] == [3000, 3000]
    assert settings.adapters[0].resilience.max_answer_mib == 2


@pytest.mark.parametrize(
    ("resilience", "problem"),
    [
        ({"retry": {"max_attempts": 6}}, "resilience.retry.max_attempts"),
        ({"retry": {"max_attempts": 0}}, "resilience.retry.max_attempts"),
        ({"retry": {"initial_backoff_ms": 500, "max_backoff_ms": 100}}, "max_backoff_ms must not be less"),
        ({"breaker": {"failures": 0}}, "resilience.breaker.failures"),
        ({"request_deadline_ms": 10}, "resilience.request_deadline_ms"),
        ({"max_answer_mib": 0}, "resilience.max_answer_mib"),
        ({"retries": 3}, "resilience: has a key that is not a known setting: retries;"),
    ],
)
def test_bad_resilience_settings_are_refused_clearly(resilience: dict[str, object], problem: str) -> None:
    with pytest.raises(GatewayConfigError) as caught:
        load_settings(resilience=resilience)
    assert problem in str(caught.value)
