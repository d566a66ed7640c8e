"""Graceful shutdown of the gateway's HTTP server: drain, then stop (used by ``familyctx gateway serve``).

From the moment the server is told to stop (SIGTERM or SIGINT: :func:`mark_stopping`) the gateway
*drains*. It keeps listening, and:

- ``GET /readyz`` answers 503 ``{"status": "draining", "detail": "draining: the gateway is shutting
  down"}`` (:data:`DRAINING_READINESS`), so a load balancer stops sending it work;
- ``GET /healthz`` stays 200 (liveness: the process is well, do not restart it) until the process
  stops listening; ``GET /.well-known/jwks.json`` is still served (an adapter checking the assertion of
  a request still running may fetch it);
- any other new request is answered at once with a whole 503, ``Retry-After`` (whole seconds) and
  ``Connection: close``, in the ErrorResponse shape, before a token is read or a council asked
  (nothing is audited: nothing was asked or disclosed); a client retrying reaches another replica.

The requests already in progress run on and commit their audit records; :func:`drain` returns once
none is left, or when ``listen.shutdown_grace_seconds`` is over. Then uvicorn's own graceful shutdown
follows (the listening socket is closed, the lifespan closes the channels and the audit store), and a
request still running when the grace period is over is cancelled and answered a whole 503
(:class:`StoppingAnswers`), never a bare 500 and never half an answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "DRAINING_READINESS",
    "ShutdownState",
    "StoppingAnswers",
    "drain",
    "is_stopping",
    "mark_stopping",
    "shutdown_state",
]

#: ``detail`` of ``GET /readyz`` while the gateway drains.
DRAINING_READINESS = "draining: the gateway is shutting down"

#: Paths answered as usual while draining and not waited for: probes and the public keys.
_SERVED_WHILE_DRAINING = frozenset({"/healthz", "/readyz", "/.well-known/jwks.json"})

#: Longest :func:`drain` waits before it looks at ``give_up()`` again (seconds).
_GIVE_UP_CHECK_SECONDS = 0.5


@dataclass
class ShutdownState:
    """One per application (``app.state.shutdown``): whether the server is stopping, and how many
    requests (other than probes and the JWKS) are in progress."""

    stopping: bool = False
    in_progress: int = 0
    #: Set whenever ``in_progress`` is 0.
    idle: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.idle.set()

    def started(self) -> None:
        """One more request in progress."""
        self.in_progress += 1
        self.idle.clear()

    def finished(self) -> None:
        """One request fewer in progress."""
        self.in_progress -= 1
        if self.in_progress == 0:
            self.idle.set()


def shutdown_state(app: Any) -> ShutdownState:
    """The :class:`ShutdownState` of ``app`` (a FastAPI/Starlette application; made on first use)."""
    state = getattr(app.state, "shutdown", None)
    if state is None:
        state = app.state.shutdown = ShutdownState()
    return state  # type: ignore[no-any-return]


def mark_stopping(app: Any) -> None:
    """Tell ``app`` its server is stopping (SIGTERM or SIGINT received): from now on ``/readyz``
    answers 503 (draining), new requests are refused with 503, and a request cancelled by the server
    because the grace period ran out is answered 503 (:class:`StoppingAnswers`). Idempotent; safe to
    call from a signal handler (it only sets a flag)."""
    shutdown_state(app).stopping = True


def is_stopping(app: Any) -> bool:
    """Whether :func:`mark_stopping` was called for ``app``."""
    return shutdown_state(app).stopping


async def drain(state: ShutdownState, *, deadline: float, give_up: Callable[[], bool]) -> int:
    """Wait until no request counted by :class:`StoppingAnswers` is in progress, ``deadline`` (a
    :func:`time.monotonic` instant) has passed, or ``give_up()`` is true (e.g. a second Ctrl-C).
    Returns how many requests are still in progress (0: drained)."""
    while state.in_progress and not give_up():
        left = deadline - time.monotonic()
        if left <= 0:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.idle.wait(), timeout=min(left, _GIVE_UP_CHECK_SECONDS))
    return state.in_progress


class StoppingAnswers:
    """Pure ASGI middleware for a stopping server (see the module docstring).

    While the server runs it only counts the requests in progress (``state.in_progress``; probes and
    the JWKS are not counted). While it stops: a new request other than a probe or the JWKS gets a
    whole 503 at once; a request cancelled by the server (uvicorn cancels the requests still running
    when ``listen.shutdown_grace_seconds`` is over) and not yet answered gets a whole 503. Both are in
    the ErrorResponse shape with ``Retry-After: retry_after_seconds`` and ``Connection: close``, with no
    data. Any other cancellation propagates unchanged, and a request whose answer has started is left
    to the server (the connection is closed).
    """

    def __init__(self, app: ASGIApp, *, state: ShutdownState, retry_after_seconds: int) -> None:
        self.app = app
        self.state = state
        self.retry_after_seconds = retry_after_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        counted = scope["path"] not in _SERVED_WHILE_DRAINING
        if counted and self.state.stopping:
            await self._unavailable(
                scope,
                send,
                "The gateway is shutting down and takes no new requests; no data was returned. Try again "
                f"in {self.retry_after_seconds} s",
            )
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        if counted:
            self.state.started()
        try:
            await self.app(scope, receive, watch)
        except asyncio.CancelledError:
            if started or not self.state.stopping:
                raise
            # The request's own task, cancelled once by the server, ends here with a whole answer.
            await self._unavailable(
                scope,
                send,
                "The gateway was stopping and could not finish your request in time; no data was "
                f"returned. Try again in {self.retry_after_seconds} s",
            )
        finally:
            if counted:
                self.state.finished()

    async def _unavailable(self, scope: Scope, send: Send, detail: str) -> None:
        body = json.dumps(
            {"detail": detail, "errors": [], "request_id": scope.get("state", {}).get("request_id")}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(self.retry_after_seconds).encode()),
            (b"connection", b"close"),
        ]
        await send({"type": "http.response.start", "status": 503, "headers": headers})
        await send({"type": "http.response.body", "body": body})
