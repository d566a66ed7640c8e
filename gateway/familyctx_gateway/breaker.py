"""A circuit breaker per council adapter, so that a dead council costs nothing once detected.

States (the usual three, as in Nygard's *Release It!* and resilience4j):

- ``closed``: calls go through; ``failures`` failed calls in a row, the last within ``window_seconds``
  of the first, open the circuit (a success, or a gap longer than the window, starts the count again).
- ``open``: for ``open_seconds`` no call is made (:meth:`CircuitBreaker.allow` is False at once).
- ``half_open``: after the cool-off, exactly one trial call is let through; concurrent callers are
  still refused while it is in flight. Its success closes the circuit, its failure opens it again for
  another ``open_seconds``; an inconclusive end (the request's own deadline cut it short) lets the
  next call be the trial.

Why not a library: the asyncio breakers on PyPI were checked (November 2026). ``purgatory`` 3.0.1
(maintained, MIT) counts failures with no time window, lets every concurrent call through when
half-open (a family-context request sends many calls to one council at once) and reads the wall
clock (``time.time``), which jumps; ``aiobreaker`` 1.2.0 is unmaintained since 2021; ``pybreaker``
and ``circuitbreaker`` are built around raised exceptions and synchronous calls, while an adapter call
here ends in a :class:`~familyctx_gateway.adapter_client.CallResult`, never an exception. The state
machine is small enough to own and test directly. Single event loop, no locks: every method runs
without awaiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from familyctx_gateway.settings import BreakerSettings

__all__ = ["BreakerState", "BreakerView", "CallEnd", "CircuitBreaker"]


class BreakerState(StrEnum):
    """Where a breaker is: ``closed`` (calls go), ``open`` (no calls), ``half_open`` (one trial)."""

    closed = "closed"
    open = "open"
    half_open = "half_open"


class CallEnd(StrEnum):
    """How a call let through by the breaker ended, as the breaker counts it."""

    success = "success"  # the adapter answered (ok, NOT_FOUND, or a refusal: it is alive)
    failure = "failure"  # unavailable, timed out within the adapter's own deadline, error
    inconclusive = "inconclusive"  # cut short by the request's deadline: says nothing of the adapter


@dataclass(frozen=True, slots=True)
class BreakerView:
    """A breaker's state for ``GET /v1/sources``: ``failures`` in a row so far, and while ``open``,
    ``retry_in_seconds`` until the trial call may be made."""

    state: BreakerState
    failures: int
    retry_in_seconds: float | None


class CircuitBreaker:
    """One adapter's breaker with ``settings`` (failures, window_seconds, open_seconds).

    ``clock``: monotonic seconds (default :func:`time.monotonic`; tests pass their own). Use:
    ``if breaker.allow(): ...call...; breaker.record(end)``; every ``allow()`` that returned True must be
    followed by exactly one ``record``.
    """

    def __init__(self, settings: BreakerSettings, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self._clock = clock
        self._state = BreakerState.closed
        self._failures = 0
        self._first_failure_at = 0.0
        self._opened_at = 0.0
        self._trial_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The current state (an open circuit whose cool-off has passed reads ``half_open``)."""
        if self._state is BreakerState.open and self._clock() - self._opened_at >= self.settings.open_seconds:
            return BreakerState.half_open
        return self._state

    def view(self) -> BreakerView:
        """The state, failures in a row, and seconds left of the cool-off (``None`` unless open)."""
        state = self.state
        left = None
        if state is BreakerState.open:
            left = max(0.0, self.settings.open_seconds - (self._clock() - self._opened_at))
        return BreakerView(state, self._failures, left)

    def allow(self) -> bool:
        """True when a call may be made now (closed; or half-open and no trial in flight, which makes
        this call the trial). False while open, or while another call is the trial."""
        state = self.state
        if state is BreakerState.closed:
            return True
        if state is BreakerState.half_open and not self._trial_in_flight:
            self._state = BreakerState.half_open
            self._trial_in_flight = True
            return True
        return False

    def record(self, end: CallEnd) -> None:
        """Count the end of a call that :meth:`allow` let through."""
        now = self._clock()
        trial = self._trial_in_flight
        self._trial_in_flight = False
        if end is CallEnd.inconclusive:
            return
        if end is CallEnd.success:
            self._state = BreakerState.closed
            self._failures = 0
            return
        if trial or self._state is BreakerState.half_open:
            self._open(now)
            return
        if self._state is BreakerState.open:
            return  # a call let through before the circuit opened, ending late
        if self._failures == 0 or now - self._first_failure_at > self.settings.window_seconds:
            self._failures = 0
            self._first_failure_at = now
        self._failures += 1
        if self._failures >= self.settings.failures:
            self._open(now)

    def _open(self, now: float) -> None:
        self._state = BreakerState.open
        self._opened_at = now
        self._failures = max(self._failures, self.settings.failures)
