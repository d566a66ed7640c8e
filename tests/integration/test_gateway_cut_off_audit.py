"""A request cut off before it ends (the shutdown grace period ran out, or the client went away) is
audited error 503 with what is known of each council at that moment, not ``councils: []``: a failure
already seen, ``timed_out`` "cut off" for each council asked for data, ``unknown`` for one not asked.
Real app and real gRPC councils; Bolton holds every data call at a gate, so "the request is waiting
for Bolton" is a fact the test waits for, not a guess about timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from familycontext.v1 import adapter_pb2_grpc
from familyctx_gateway.adapter_client import CallResult
from familyctx_gateway.api.auditing import CUT_OFF_DETAIL
from familyctx_gateway.api.schemas import SourceState
from familyctx_gateway.settings import AdapterTarget
from familyctx_gateway.sources import RequestSources, SourceTracker
from familyctx_gateway.testing.audit import flat_records
from familyctx_gateway.testing.fake_council import CouncilTrust
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer
from familyctx_gateway.testing.pki import ASSERTION_ISSUER, session_pki
from familyctx_gateway.testing.scenario import STOCKPORT
from test_gateway_limits import BOLTON, FAMILY, Gate, GatedAdapterService

LEEDS, MANCHESTER, BURY = "E08000035", "E08000003", "E08000002"
#: A safety net only: every wait below ends as soon as its condition holds.
WAIT_SECONDS = 60


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
async def gated(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[tuple[RunningGateway, Gate]]:
    """The scenario's three councils, unreachable Bury and gated Bolton behind a gateway."""
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
            issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}", unreachable=True, extra_targets=[bolton]
        ) as gw:
            yield gw, gate
            gate.open()
    finally:
        await server.stop(grace=None)


async def _record(gw: RunningGateway, request_id: str) -> dict[str, Any]:
    """The request's audit record, once committed (it is committed as the request is cut off)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not (records := flat_records(gw.settings.audit.database_url, request_id=request_id)):
        assert time.monotonic() < deadline, "the cut-off request was never audited"
        await asyncio.sleep(0.05)
    [record] = records
    return record


async def test_a_family_context_cut_off_is_audited_with_each_councils_state(
    gated: tuple[RunningGateway, Gate],
) -> None:
    gw, gate = gated
    headers = {**gw.auth("sw.stockport"), "X-Request-ID": "cut-off-1"}
    task = asyncio.create_task(gw.client.post("/v1/family-context", json=FAMILY, headers=headers))
    await gate.until_holding(1)  # Stockport answered, Bury failed; the family is being looked up in Bolton
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    record = await _record(gw, "cut-off-1")
    assert (record["outcome"], record["http_status"], record["response_sha256"]) == ("error", 503, None)
    councils = {c["gss_code"]: c for c in record["record"]["outcome"]["councils"]}
    assert set(councils) == {STOCKPORT, LEEDS, MANCHESTER, BURY, BOLTON}
    # Asked for data (Stockport for the subject's family, the others for each person): cut off.
    for code in (STOCKPORT, LEEDS, MANCHESTER, BOLTON):
        assert (councils[code]["state"], councils[code]["detail"]) == ("timed_out", CUT_OFF_DETAIL), code
    # Failed before the request was cut off: its own state and reason, as in any answer.
    assert councils[BURY]["state"] == "unavailable" and councils[BURY]["detail"]
    assert record["councils"] == {code: c["state"] for code, c in councils.items()}  # the index rows too


async def test_a_search_cut_off_names_every_council_asked(gated: tuple[RunningGateway, Gate]) -> None:
    gw, gate = gated
    search = {"purpose": "s17_assessment", "case_reference": "CASE-CUT-2", "nhs_number": "9990000018"}
    headers = {**gw.auth("sw.stockport"), "X-Request-ID": "cut-off-2"}
    task = asyncio.create_task(gw.client.post("/v1/searches", json=search, headers=headers))
    await gate.until_holding(1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    record = await _record(gw, "cut-off-2")
    assert record["http_status"] == 503
    states = {c["gss_code"]: c["state"] for c in record["record"]["outcome"]["councils"]}
    # One round, all at once, gathered only when Bolton answers: every council was asked (a call to
    # unreachable Bury was started too) and none of their answers or failures was gathered before the cut.
    assert states == dict.fromkeys((STOCKPORT, LEEDS, MANCHESTER, BOLTON, BURY), "timed_out")


async def test_the_tracker_made_by_the_work_is_seen_by_the_auditing_code_even_from_a_task() -> None:
    federation = SimpleNamespace(clients=dict.fromkeys(("A", "B", "C", "D")), request_deadline_ms=1000)
    sources = RequestSources()

    async def work() -> SourceTracker:
        return SourceTracker(federation)  # type: ignore[arg-type]

    with sources.watch():
        made = await asyncio.create_task(work())
    assert sources.tracker is made
    assert SourceTracker(federation).budget is not None and sources.tracker is made  # outside: not kept

    made.add(CallResult("A", "A", SourceState.unavailable, 3, "connection refused"))
    made.add(CallResult("B", "B", SourceState.ok, 3))
    made.add(CallResult("D", "D", SourceState.ok, 3))
    assert made.cut_off({"A", "B", "C"}, "cut off") == [
        ("A", "unavailable", "connection refused"),  # a failure seen is kept, asked or not
        ("B", "timed_out", "cut off"),  # answered once, asked again: nothing it said was used
        ("C", "timed_out", "cut off"),
        ("D", "unknown", "not asked for data before the request was cut off"),
    ]
