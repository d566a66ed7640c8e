"""AdapterClient: its own timeout backstop (for a transport that ignores the gRPC deadline it is given),
the assertion and metadata each call carries, and how refusals by an adapter are reported.

The transports here are in-process stand-ins (not gRPC): real gRPC enforces the deadline itself, so
the backstop can only be reached through a transport that does not; refusals are the gRPC errors a
real channel raises (tests/integration/test_gateway_trust.py has them over real mutual TLS). The
assertions are really signed and verified.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import grpc
import pytest
from familycontext.v1 import adapter_pb2
from familyctx_gateway.adapter_client import AdapterClient
from familyctx_gateway.api.schemas import SourceState
from familyctx_gateway.settings import AdapterTarget
from familyctx_gateway.testing.pki import session_pki

from familyctx.trust.assertion import ASSERTION_METADATA_KEY, AssertionSigner, AssertionVerifier, Requester

ISSUER = "https://gateway.test"
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


def _signer() -> AssertionSigner:
    return AssertionSigner.from_file(session_pki().assertion_key, issuer=ISSUER)


def _client(transport: Any, *, deadline_ms: int = 2000, gss_code: str = "E08000007") -> AdapterClient:
    target = AdapterTarget(gss_code=gss_code, name="Council", address="127.0.0.1:1", deadline_ms=deadline_ms)
    return AdapterClient(target, transport, _signer())


class _DeafTransport:
    """Never answers and ignores ``deadline_seconds``; records whether its call was cancelled."""

    def __init__(self) -> None:
        self.cancelled = False

    async def _never(self) -> Any:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise

    async def describe(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._never()

    async def find_people(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._never()

    async def get_family_context(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._never()

    async def close(self) -> None:
        return None


async def test_a_call_that_never_returns_ends_timed_out_and_is_cancelled() -> None:
    transport = _DeafTransport()
    client = _client(transport, deadline_ms=10)
    result = await client.call("find_people", adapter_pb2.FindPeopleRequest(), requester=REQUESTER)
    assert result.state is SourceState.timed_out
    assert result.detail == "no answer within the 10 ms deadline"
    assert result.response is None
    assert transport.cancelled
    assert client.last.state is SourceState.timed_out


class _Recorder:
    """Answers every call; keeps the metadata it was given."""

    def __init__(self) -> None:
        self.metadata: list[dict[str, str]] = []

    async def _answer(self, metadata: Any, response: Any) -> Any:
        self.metadata.append(dict(metadata))
        return response

    async def describe(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._answer(metadata, adapter_pb2.DescribeResponse())

    async def find_people(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._answer(metadata, adapter_pb2.FindPeopleResponse())

    async def get_family_context(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
        return await self._answer(metadata, adapter_pb2.GetFamilyContextResponse())

    async def close(self) -> None:
        return None


@pytest.mark.parametrize("gss_code", ["E08000007", "E08000035"])
async def test_each_call_carries_a_fresh_assertion_for_that_council_and_the_request_id(gss_code: str) -> None:
    transport = _Recorder()
    client = _client(transport, gss_code=gss_code)
    for _ in range(2):
        result = await client.call("find_people", adapter_pb2.FindPeopleRequest(), requester=REQUESTER)
        assert result.ok
    jwks = json.loads(session_pki().assertion_jwks.read_text())
    verified = [
        AssertionVerifier(jwks, issuer=ISSUER, audience=gss_code).verify(m[ASSERTION_METADATA_KEY])
        for m in transport.metadata
    ]
    assert [v.requester for v in verified] == [REQUESTER, REQUESTER]
    assert {v.audience for v in verified} == {gss_code}
    assert verified[0].jti != verified[1].jti, "one assertion per call"
    assert [sorted(m) for m in transport.metadata] == [[ASSERTION_METADATA_KEY, "x-request-id"]] * 2
    assert transport.metadata[0]["x-request-id"] == "r-1"


class _Refusing(_Recorder):
    """Fails every call with a gRPC status, as a real channel raises it."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__()
        self.code, self.details = code, details

    async def _answer(self, metadata: Any, response: Any) -> Any:
        raise grpc.aio.AioRpcError(self.code, grpc.aio.Metadata(), grpc.aio.Metadata(), self.details)


@pytest.mark.parametrize(
    ("code", "details", "state", "detail"),
    [
        (
            grpc.StatusCode.UNAUTHENTICATED,
            "requester assertion refused",
            SourceState.refused,
            "Council's adapter refused the gateway's credentials (certificate or assertion): "
            "ask the federation's operators",
        ),
        (
            grpc.StatusCode.PERMISSION_DENIED,
            "Sam Walker may not",
            SourceState.refused,
            # The requester, not the gateway, was refused: said so, distinctly, without the adapter's words.
            "Council refused this request under its sharing policy",
        ),
        (
            grpc.StatusCode.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Ssl handshake failed",
            SourceState.unavailable,
            "adapter not reachable: the mutual TLS handshake failed (certificate not trusted, wrong name, "
            "or the adapter refused the gateway's client certificate)",
        ),
        (
            grpc.StatusCode.UNAVAILABLE,
            "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Connection refused",
            SourceState.unavailable,
            "adapter not reachable",
        ),
        (
            grpc.StatusCode.UNAVAILABLE,
            "disclosure log unavailable",
            SourceState.unavailable,
            "the adapter answered but could not record the disclosure in its own log, so it sent nothing "
            "(fail closed)",
        ),
        (
            grpc.StatusCode.UNAVAILABLE,
            "the council's warehouse did not answer; try again later",
            SourceState.unavailable,
            "the council's warehouse did not answer",
        ),
    ],
)
async def test_refusals_and_failed_handshakes_are_explicit_states_without_the_adapters_words(
    code: grpc.StatusCode, details: str, state: SourceState, detail: str
) -> None:
    client = _client(_Refusing(code, details))
    result = await client.call(
        "get_family_context", adapter_pb2.GetFamilyContextRequest(), requester=REQUESTER
    )
    assert (result.state, result.detail) == (state, detail)
    assert result.failed and not result.ok
    assert client.last.state is state


# --- break glass: only councils asked for data get it, each after its notification hook ---------------


async def test_describe_never_carries_break_glass_and_data_calls_await_the_hook_first() -> None:
    from dataclasses import replace

    from familyctx_gateway.adapter_client import before_data_call

    transport = _Recorder()
    client = _client(transport, gss_code="E08000035")
    glass = replace(REQUESTER, break_glass=True, break_glass_reason="Police report tonight, child at risk")
    seen: list[tuple[str, int]] = []

    async def hook(council: str) -> None:
        seen.append((council, len(transport.metadata)))  # how many calls had been sent when it ran

    token = before_data_call.set(hook)
    try:
        await client.call("describe", adapter_pb2.DescribeRequest(), requester=glass)
        await client.call("find_people", adapter_pb2.FindPeopleRequest(), requester=glass)
    finally:
        before_data_call.reset(token)
    jwks = json.loads(session_pki().assertion_jwks.read_text())
    described, asked = (
        AssertionVerifier(jwks, issuer=ISSUER, audience="E08000035")
        .verify(m[ASSERTION_METADATA_KEY])
        .requester
        for m in transport.metadata
    )
    assert (described.break_glass, described.break_glass_reason) == (False, "")
    assert asked == glass
    assert seen == [("E08000035", 1)]  # once, for the data call, before it was sent


async def test_a_failing_hook_sends_nothing() -> None:
    from familyctx_gateway.adapter_client import before_data_call
    from familyctx_gateway.errors import AuditUnavailable

    transport = _Recorder()
    client = _client(transport)

    async def hook(council: str) -> None:
        raise AuditUnavailable()

    token = before_data_call.set(hook)
    try:
        with pytest.raises(AuditUnavailable):
            await client.call(
                "get_family_context", adapter_pb2.GetFamilyContextRequest(), requester=REQUESTER
            )
    finally:
        before_data_call.reset(token)
    assert transport.metadata == []


# --- logs: one summary line per request, failures one line each ---------------------------------------


async def test_a_request_logs_one_summary_line_and_a_line_only_for_each_failed_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from familyctx_gateway.adapter_client import Federation, logged_calls

    transports: dict[str, Any] = {f"E0990000{n}": _Recorder() for n in range(1, 5)}
    transports["E09900005"] = _Refusing(grpc.StatusCode.UNAVAILABLE, "Connection refused")
    transports["E09900006"] = _Refusing(grpc.StatusCode.PERMISSION_DENIED, "no")
    federation = Federation(
        {code: _client(transport, gss_code=code) for code, transport in transports.items()}
    )
    caplog.set_level("INFO", logger="familyctx_gateway.adapter_client")
    with logged_calls("r-1"):
        results = await federation.fan_out(
            "find_people", {code: adapter_pb2.FindPeopleRequest() for code in transports}, requester=REQUESTER
        )
    assert sum(r.ok for r in results.values()) == 4
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    per_call = [(level, m) for level, m in lines if m.startswith("adapter call ")]
    assert per_call == [
        (
            "INFO",
            "adapter call request_id=r-1 council=E09900005 method=find_people state=unavailable "
            f"latency_ms={results['E09900005'].latency_ms}",
        ),
        (
            "WARNING",
            "adapter call request_id=r-1 council=E09900006 method=find_people state=refused "
            f"latency_ms={results['E09900006'].latency_ms}",
        ),
    ]
    summary = [m for _level, m in lines if m.startswith("adapter calls ")]
    assert len(summary) == 1
    assert summary[0].startswith(
        "adapter calls request_id=r-1 calls=6 ok=4 refused=1 unavailable=1 slowest=E0990"
    )


async def test_ok_calls_are_still_logged_one_by_one_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    from familyctx_gateway.adapter_client import logged_calls

    caplog.set_level("DEBUG", logger="familyctx_gateway.adapter_client")
    client = _client(_Recorder())
    with logged_calls("r-2"):
        await client.call("describe", adapter_pb2.DescribeRequest(), requester=REQUESTER)
    messages = [(r.levelname, r.getMessage().split(" latency_ms")[0]) for r in caplog.records]
    assert ("DEBUG", "adapter call request_id=r-1 council=E08000007 method=describe state=ok") in messages
    assert [m for _l, m in messages if m.startswith("adapter calls request_id=r-2 calls=1 ok=1")]


async def test_no_summary_line_when_no_council_was_called(caplog: pytest.LogCaptureFixture) -> None:
    from familyctx_gateway.adapter_client import logged_calls

    caplog.set_level("DEBUG", logger="familyctx_gateway.adapter_client")
    with logged_calls("r-3"):
        pass
    assert caplog.records == []


async def test_calls_cut_off_by_a_cancelled_request_are_counted_in_its_summary_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from familyctx_gateway.adapter_client import Federation, logged_calls

    class _Called(_DeafTransport):
        def __init__(self) -> None:
            super().__init__()
            self.called = asyncio.Event()

        async def find_people(self, request: Any, *, deadline_seconds: float, metadata: Any) -> Any:
            self.called.set()
            return await super().find_people(request, deadline_seconds=deadline_seconds, metadata=metadata)

    deaf = _Called()
    federation = Federation(
        {
            "E09900001": _client(_Recorder(), gss_code="E09900001"),
            "E09900002": _client(deaf, gss_code="E09900002"),
        }
    )
    caplog.set_level("INFO", logger="familyctx_gateway.adapter_client")

    async def request() -> None:
        with logged_calls("r-cut"):
            await federation.fan_out(
                "find_people",
                {code: adapter_pb2.FindPeopleRequest() for code in ("E09900001", "E09900002")},
                requester=REQUESTER,
            )

    task = asyncio.create_task(request())
    await asyncio.wait_for(deaf.called.wait(), timeout=30)
    task.cancel()  # as the shutdown grace period running out does
    with pytest.raises(asyncio.CancelledError):
        await task
    summary = [r.getMessage() for r in caplog.records if r.getMessage().startswith("adapter calls ")]
    assert len(summary) == 1
    assert summary[0].startswith("adapter calls request_id=r-cut calls=2 cut_off=1 ok=1 slowest=")
