"""AdapterClient's own timeout backstop, for a transport that ignores the gRPC deadline it is given.

The transport here is an in-process stand-in (not gRPC): real gRPC enforces the deadline itself, so
the backstop can only be reached through a transport that does not.
"""

from __future__ import annotations

import asyncio
from typing import Any

from familycontext.v1 import adapter_pb2
from familyctx_gateway.adapter_client import AdapterClient
from familyctx_gateway.api.schemas import SourceState
from familyctx_gateway.settings import AdapterTarget


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
    client = AdapterClient(
        AdapterTarget(gss_code="E08000007", name="Stockport", address="127.0.0.1:1", deadline_ms=10),
        transport,
    )
    result = await client.call(
        "find_people", adapter_pb2.FindPeopleRequest(), request_id="r-1", purpose="s47_enquiry"
    )
    assert result.state is SourceState.timed_out
    assert result.detail == "no answer within the 10 ms deadline"
    assert result.response is None
    assert transport.cancelled
    assert client.last.state is SourceState.timed_out
