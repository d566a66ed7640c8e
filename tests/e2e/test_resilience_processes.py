"""Issue 6, with real processes: councils that die, restart, or whose network drops or resets.

Each test starts a gateway process of its own (``familyctx gateway serve``, its own SQLite audit log)
in front of the session's real adapters; one council is reached through a loopback TCP proxy
(:class:`familyctx_gateway.testing.proxy.LoopbackProxy`) that misbehaves on demand, so that "the call
is in progress" or "the connection is blackholed" is a fact the test sets up, not a timing guess.
Every answer is a 200 naming the missing council and why (in the API and in the audit record), never a
500; the other councils still answer. Deadlines, hangs, malformed and oversized answers are covered
in-process (tests/integration/test_gateway_resilience_councils.py).
"""

from __future__ import annotations

import hashlib
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from e2e_support import (
    CASE_REFERENCE,
    LEEDS,
    MANCHESTER,
    PROCESS_WAIT_SECONDS,
    PURPOSE,
    STOCKPORT,
    GatewayProcess,
    audit_rows,
    source_states,
    start_gateway_process,
    write_gateway_config,
)
from familyctx_gateway.testing.proxy import LoopbackProxy

from familyctx.councils import DEMO_COUNCILS
from familyctx.demo import Federation, adapter_child_name

pytestmark = pytest.mark.e2e


def _search(process: GatewayProcess, token: str, scenario: dict[str, Any]) -> tuple[str, httpx.Response]:
    request_id = f"resil-{uuid.uuid4()}"
    body = {"purpose": PURPOSE, "case_reference": CASE_REFERENCE,
            "family_name": scenario["child"]["family_name"]}
    headers = {"Authorization": f"Bearer {token}", "X-Request-ID": request_id}
    with httpx.Client(base_url=process.url, timeout=PROCESS_WAIT_SECONDS) as http:
        return request_id, http.post("/v1/searches", json=body, headers=headers)


def _labelled(audit_url: str, request_id: str, response: httpx.Response) -> dict[str, str]:
    """The answer's source states, checked to be the audit record's too (same response hash)."""
    assert response.status_code == 200, response.text
    states = source_states(response.json())
    [record] = audit_rows(audit_url, request_id)
    assert record["response_sha256"] == hashlib.sha256(response.content).hexdigest()
    assert record["councils"] == states
    return states


def _adapter(federation: Federation, gss_code: str) -> tuple[str, int]:
    host, port = federation.adapter_address(gss_code).rsplit(":", 1)
    return host, int(port)


@pytest.fixture
def revive(federation: Federation) -> Iterator[list[str]]:
    """Adapters named in the yielded list are started again after the test if they are not running."""
    killed: list[str] = []
    yield killed
    for gss_code in killed:
        council = next(c for c in DEMO_COUNCILS if c.gss_code == gss_code)
        if federation.child(adapter_child_name(council)).exited() is not None:
            federation.restart_adapter(gss_code)


@pytest.fixture
def own_gateway(
    federation: Federation, tmp_path: Path
) -> Iterator[Any]:
    """Starts gateway processes with :func:`write_gateway_config` options; all are killed afterwards.
    Yields ``start(**options) -> (process, audit_url)``."""
    started: list[GatewayProcess] = []

    def start(**options: Any) -> tuple[GatewayProcess, str]:
        audit_url = f"sqlite:///{tmp_path / f'audit-{len(started)}.sqlite'}"
        config = write_gateway_config(federation, tmp_path / f"gateway-{len(started)}.yaml",
                                      audit_url=audit_url, **options)
        process = start_gateway_process(config)
        started.append(process)
        return process, audit_url

    yield start
    for process in started:
        process.stop()
        assert "Traceback" not in process.text, process.text[-3000:]


def test_adapter_killed_while_the_gateway_waits_on_it_gives_a_labelled_partial_answer(
    federation: Federation, scenario: dict[str, Any], token: str, own_gateway: Any, revive: list[str]
) -> None:
    with LoopbackProxy(_adapter(federation, MANCHESTER)) as proxy:
        # A long deadline: Manchester can only end "unavailable" because it died, never by timing out.
        process, audit_url = own_gateway(addresses={MANCHESTER: proxy.address}, deadline_ms=30_000)
        request_id, warm = _search(process, token, scenario)  # opens the channel to Manchester
        assert _labelled(audit_url, request_id, warm) == {STOCKPORT: "ok", LEEDS: "ok", MANCHESTER: "ok"}

        proxy.hold()
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(_search, process, token, scenario)
            assert proxy.answer_held.wait(PROCESS_WAIT_SECONDS), "Manchester never answered the call"
            manchester = federation.child("adapter-manchester")
            revive.append(MANCHESTER)
            os.kill(manchester.pid, signal.SIGKILL)
            manchester.popen.wait(timeout=PROCESS_WAIT_SECONDS)
            request_id, response = pending.result(timeout=PROCESS_WAIT_SECONDS)

    states = _labelled(audit_url, request_id, response)
    assert states == {STOCKPORT: "ok", LEEDS: "ok", MANCHESTER: "unavailable"}
    answer = response.json()
    [manchester_source] = [s for s in answer["sources"] if s["gss_code"] == MANCHESTER]
    assert manchester_source["detail"]  # a reason, in words
    # The others still answered: the child is found at Stockport.
    key = (scenario["child"]["gss_code"], scenario["child"]["local_person_id"])
    found = {(r["gss_code"], r["local_person_id"]) for p in answer["candidates"] for r in p["records"]}
    assert key in found


def test_adapter_that_restarts_is_unavailable_then_circuit_open_then_answers_again(
    federation: Federation, scenario: dict[str, Any], token: str, own_gateway: Any, revive: list[str]
) -> None:
    process, audit_url = own_gateway(
        deadline_ms=10_000,
        resilience={"breaker": {"failures": 2, "window_seconds": 60, "open_seconds": 1}},
        extra={"describe_cache_seconds": 600},  # only FindPeople reaches Leeds: one call per request
    )
    request_id, warm = _search(process, token, scenario)
    assert _labelled(audit_url, request_id, warm)[LEEDS] == "ok"

    leeds = federation.child("adapter-leeds")
    revive.append(LEEDS)
    os.kill(leeds.pid, signal.SIGKILL)
    leeds.popen.wait(timeout=PROCESS_WAIT_SECONDS)

    seen: list[str] = []
    for _ in range(10):  # two failures open the circuit; the trial after 1 s fails again and re-opens it
        request_id, response = _search(process, token, scenario)
        states = _labelled(audit_url, request_id, response)
        assert states[STOCKPORT] == states[MANCHESTER] == "ok"
        seen.append(states[LEEDS])
        if states[LEEDS] == "circuit_open":
            break
    assert seen[0] == "unavailable" and seen[-1] == "circuit_open", seen
    assert set(seen) == {"unavailable", "circuit_open"}, seen

    federation.restart_adapter(LEEDS)  # the same port; returns once it is SERVING
    give_up = time.monotonic() + PROCESS_WAIT_SECONDS
    while True:
        request_id, response = _search(process, token, scenario)
        state = _labelled(audit_url, request_id, response)[LEEDS]
        seen.append(state)
        if state == "ok":
            break
        assert state in ("circuit_open", "unavailable"), seen
        assert time.monotonic() < give_up, f"Leeds not answering again after its restart: {seen}"
        time.sleep(0.25)


def test_a_connection_that_drops_traffic_times_out_within_the_deadline_and_others_answer(
    federation: Federation, scenario: dict[str, Any], token: str, own_gateway: Any
) -> None:
    deadline_ms = 4000
    with LoopbackProxy(_adapter(federation, LEEDS)) as proxy:
        process, audit_url = own_gateway(addresses={LEEDS: proxy.address}, deadline_ms=deadline_ms)
        request_id, warm = _search(process, token, scenario)
        assert _labelled(audit_url, request_id, warm)[LEEDS] == "ok"

        proxy.blackhole()  # the open connection, and any new one, swallows every byte: no FIN, no RST
        started = time.monotonic()
        request_id, response = _search(process, token, scenario)
        elapsed = time.monotonic() - started

    states = _labelled(audit_url, request_id, response)
    assert states == {STOCKPORT: "ok", LEEDS: "timed_out", MANCHESTER: "ok"}
    [leeds] = [s for s in response.json()["sources"] if s["gss_code"] == LEEDS]
    assert f"{deadline_ms} ms" in leeds["detail"]
    # Waited for the deadline, not for TCP's own timeouts (minutes); generous for a loaded 2-core host.
    assert deadline_ms / 1000 <= elapsed < deadline_ms / 1000 + 15


def test_a_connection_reset_mid_answer_is_unavailable_never_a_500(
    federation: Federation, scenario: dict[str, Any], token: str, own_gateway: Any
) -> None:
    with LoopbackProxy(_adapter(federation, MANCHESTER)) as proxy:
        process, audit_url = own_gateway(addresses={MANCHESTER: proxy.address}, deadline_ms=30_000)
        request_id, warm = _search(process, token, scenario)
        assert _labelled(audit_url, request_id, warm)[MANCHESTER] == "ok"

        proxy.reset_answers()  # half of the answer's first bytes, then RST; new connections likewise
        request_id, response = _search(process, token, scenario)
        assert proxy.resets >= 1

    states = _labelled(audit_url, request_id, response)
    assert states[STOCKPORT] == states[LEEDS] == "ok"
    assert states[MANCHESTER] in ("unavailable", "error"), states
