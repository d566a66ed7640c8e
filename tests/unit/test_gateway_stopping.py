"""familyctx_gateway.stopping: what a stopping gateway answers, and the drain of the requests in progress.

A bare ASGI application stands in for the gateway; the real process is tested end to end in
tests/e2e/test_gateway_shutdown.py.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest
from familyctx_gateway.stopping import ShutdownState, StoppingAnswers, drain
from starlette.types import Message, Receive, Scope, Send


class Held:
    """An ASGI app that answers 200 once ``release`` is set; ``entered`` is set when a request arrives."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.entered.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def _scope(path: str) -> dict[str, Any]:
    return {"type": "http", "path": path, "state": {"request_id": "req-1"}}


async def _call(app: StoppingAnswers, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(_scope(path), receive, send)
    return sent


def _answer(sent: list[Message]) -> tuple[int, dict[str, str], dict[str, Any]]:
    start, body = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body["body"])


async def test_requests_in_progress_are_counted_but_probes_and_keys_are_not() -> None:
    state = ShutdownState()
    held = Held()
    app = StoppingAnswers(held, state=state, retry_after_seconds=2)
    search = asyncio.create_task(_call(app, "/v1/searches"))
    await held.entered.wait()
    assert (state.in_progress, state.idle.is_set()) == (1, False)
    probes = [asyncio.create_task(_call(app, p)) for p in ("/healthz", "/readyz", "/.well-known/jwks.json")]
    await asyncio.sleep(0)
    assert state.in_progress == 1
    held.release.set()
    assert [m["status"] for m in (await search)[:1]] == [200]
    for probe in probes:
        await probe
    assert (state.in_progress, state.idle.is_set()) == (0, True)


async def test_a_stopping_gateway_refuses_new_requests_with_a_whole_503_but_answers_probes() -> None:
    state = ShutdownState(stopping=True)
    held = Held()
    held.release.set()
    app = StoppingAnswers(held, state=state, retry_after_seconds=3)
    status, headers, body = _answer(await _call(app, "/v1/family-context"))
    assert status == 503
    assert headers["retry-after"] == "3" and headers["connection"] == "close"
    assert body == {
        "detail": "The gateway is shutting down and takes no new requests; no data was returned. "
        "Try again in 3 s",
        "errors": [],
        "request_id": "req-1",
    }
    assert not held.entered.is_set()  # the application never saw it
    assert (await _call(app, "/healthz"))[0]["status"] == 200
    assert state.in_progress == 0


async def test_a_request_cut_off_by_a_stopping_server_is_answered_503() -> None:
    state = ShutdownState()
    held = Held()
    app = StoppingAnswers(held, state=state, retry_after_seconds=2)
    task = asyncio.create_task(_call(app, "/v1/searches"))
    await held.entered.wait()
    state.stopping = True
    task.cancel()  # what uvicorn does when the grace period is over
    status, _, body = _answer(await task)
    assert status == 503 and body["detail"].startswith("The gateway was stopping")
    assert state.in_progress == 0


async def test_a_cancellation_while_running_is_not_turned_into_an_answer() -> None:
    state = ShutdownState()
    held = Held()
    app = StoppingAnswers(held, state=state, retry_after_seconds=2)
    task = asyncio.create_task(_call(app, "/v1/searches"))
    await held.entered.wait()
    task.cancel()  # e.g. the client went away: not the server stopping
    with pytest.raises(asyncio.CancelledError):
        await task
    assert state.in_progress == 0


async def test_drain_returns_when_the_last_request_finishes() -> None:
    state = ShutdownState(stopping=True)
    state.started()

    async def finish_later() -> None:
        await asyncio.sleep(0.01)
        state.finished()

    finishing = asyncio.create_task(finish_later())
    assert await drain(state, deadline=time.monotonic() + 60, give_up=lambda: False) == 0
    await finishing


async def test_drain_gives_up_at_the_deadline_or_when_told() -> None:
    state = ShutdownState(stopping=True)
    state.started()
    assert await drain(state, deadline=time.monotonic() + 0.05, give_up=lambda: False) == 1
    assert await drain(state, deadline=time.monotonic() + 60, give_up=lambda: True) == 1
