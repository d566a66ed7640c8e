"""A circuit breaker per council adapter, so that a dead council costs nothing once detected.

States (the usual three, as in Nygard's *Release It!* and resilience4j):

- ``closed``: calls go through; ``failures`` failed *requests* in a row, the last within
  ``window_seconds`` of the first, open the circuit (a success in any request, or a gap longer than
  the window, starts the count again). A request is the unit, not a call: one family-context request
  sends several calls to one council at once (one FindPeople per family member), and several failed
  calls of one request (the same ``request_id``) count as one failure, so that one slow request cannot
  cut a council off for everyone. A call recorded without a request id counts on its own.
- ``open``: for ``open_seconds`` no call is made (:meth:`CircuitBreaker.allow` is False at once), unless
  the adapter's health check reports SERVING meanwhile (:meth:`CircuitBreaker.health_reported`): then
  the next call is the trial at once.
- ``half_open``: after the cool-off (or that SERVING report), exactly one trial call is let through;
  concurrent callers are still refused while it is in flight. Its success closes the circuit, its
  failure opens it again for another ``open_seconds``; an inconclusive end (the request's own deadline
  cut it short) lets the next call be the trial. After a trial granted by a SERVING report has failed,
  further SERVING reports do not shorten the cool-off again until the circuit closes or a health check
  reports anything but SERVING (the health check and the data calls disagree: the data calls win).

Each transition is logged once (logger ``familyctx_gateway.breaker``; GSS code and counts, never
personal data): ``circuit opened council=E08000035 failures=5 open_seconds=30 reason=failures`` (or
``reason=trial_failed``) at WARNING; ``circuit half-open council=E08000035 reason=cool_off`` (or
``reason=health_serving``) and ``circuit closed council=E08000035`` at INFO.

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

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from familyctx_gateway.settings import BreakerSettings

__all__ = ["BreakerState", "BreakerView", "CallEnd", "CircuitBreaker"]

log = logging.getLogger("familyctx_gateway.breaker")


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
    """A breaker's state for ``GET /v1/sources``: ``failures``, the failed requests in a row so far
    (several failed calls of one request count once), and while ``open``, ``retry_in_seconds`` until
    the trial call may be made (``None`` otherwise)."""

    state: BreakerState
    failures: int
    retry_in_seconds: float | None


class CircuitBreaker:
    """One adapter's breaker with ``settings`` (failures, window_seconds, open_seconds).

    ``clock``: monotonic seconds (default :func:`time.monotonic`; tests pass their own). ``council``:
    the council's GSS code, for log lines only. Use: ``if breaker.allow(): ...call...;
    breaker.record(end, request_id=...)``; every ``allow()`` that returned True must be followed by
    exactly one ``record``. The health watcher reports each check with :meth:`health_reported`.
    """

    def __init__(
        self, settings: BreakerSettings, *, clock: Callable[[], float] = time.monotonic, council: str = "-"
    ) -> None:
        self.settings = settings
        self.council = council
        self._clock = clock
        self._state = BreakerState.closed
        self._failures = 0
        self._first_failure_at = 0.0
        #: The request ids already counted in the current run of failures (at most ``failures`` of them).
        self._failed_requests: set[str] = set()
        self._opened_at = 0.0
        self._trial_in_flight = False
        #: The present half-open state was granted by a SERVING health check, not by the cool-off.
        self._half_open_by_health = False
        #: A trial granted by a SERVING health check failed: SERVING no longer shortens the cool-off.
        self._health_trial_failed = False

    @property
    def state(self) -> BreakerState:
        """The current state (an open circuit whose cool-off has passed reads ``half_open``)."""
        if self._state is BreakerState.open and self._clock() - self._opened_at >= self.settings.open_seconds:
            return BreakerState.half_open
        return self._state

    def view(self) -> BreakerView:
        """The state, failed requests in a row, and seconds left of the cool-off (``None`` unless open)."""
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
            if self._state is BreakerState.open:  # the cool-off has just passed
                self._state = BreakerState.half_open
                log.info("circuit half-open council=%s reason=cool_off", self.council)
            self._trial_in_flight = True
            return True
        return False

    def health_reported(self, serving: bool) -> None:
        """Take one health check of the adapter: ``serving`` True when it answered SERVING.

        While the circuit is open, SERVING makes it half-open at once: the next call is the trial, which
        decides (it does not close the circuit by itself). Not after a trial so granted has failed, until
        the circuit closes or a check answers anything but SERVING (``serving`` False). Otherwise nothing.
        """
        if not serving:
            self._health_trial_failed = False
            return
        if self.state is not BreakerState.open or self._health_trial_failed:
            return
        self._state = BreakerState.half_open
        self._half_open_by_health = True
        log.info("circuit half-open council=%s reason=health_serving", self.council)

    def record(self, end: CallEnd, *, request_id: str | None = None) -> None:
        """Count the end of a call that :meth:`allow` let through, made for ``request_id``.

        A failure of a request already counted in the current run of failures is not counted again; a
        call with no ``request_id`` (None or empty) counts on its own.
        """
        now = self._clock()
        trial = self._trial_in_flight
        self._trial_in_flight = False
        if end is CallEnd.inconclusive:
            return
        if end is CallEnd.success:
            if self._state is not BreakerState.closed:
                log.info("circuit closed council=%s", self.council)
            self._state = BreakerState.closed
            self._reset_count()
            self._half_open_by_health = False
            self._health_trial_failed = False
            return
        if trial or self._state is BreakerState.half_open:
            if self._half_open_by_health:
                self._health_trial_failed = True
            self._open(now, "trial_failed")
            return
        if self._state is BreakerState.open:
            return  # a call let through before the circuit opened, ending late
        if self._failures == 0 or now - self._first_failure_at > self.settings.window_seconds:
            self._reset_count()
            self._first_failure_at = now
        if request_id:
            if request_id in self._failed_requests:
                return  # this request has failed here already: one request, one failure
            self._failed_requests.add(request_id)
        self._failures += 1
        if self._failures >= self.settings.failures:
            self._open(now, "failures")

    def _reset_count(self) -> None:
        self._failures = 0
        self._failed_requests.clear()

    def _open(self, now: float, reason: str) -> None:
        self._state = BreakerState.open
        self._opened_at = now
        self._half_open_by_health = False
        self._failures = max(self._failures, self.settings.failures)
        self._failed_requests.clear()
        log.warning(
            "circuit opened council=%s failures=%d open_seconds=%g reason=%s",
            self.council,
            self._failures,
            self.settings.open_seconds,
            reason,
        )
