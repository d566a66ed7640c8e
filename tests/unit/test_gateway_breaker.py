"""The per-adapter circuit breaker's state machine (a test clock), and the ``resilience`` settings."""

from __future__ import annotations

import pytest
from familyctx_gateway.breaker import BreakerState, CallEnd, CircuitBreaker
from familyctx_gateway.errors import GatewayConfigError
from familyctx_gateway.settings import AdapterTarget, BreakerSettings, load_settings


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


def fail(b: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        assert b.allow()
        b.record(CallEnd.failure)


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
        ({"retries": 3}, "resilience.retries"),
    ],
)
def test_bad_resilience_settings_are_refused_clearly(resilience: dict[str, object], problem: str) -> None:
    with pytest.raises(GatewayConfigError) as caught:
        load_settings(resilience=resilience)
    assert problem in str(caught.value)
