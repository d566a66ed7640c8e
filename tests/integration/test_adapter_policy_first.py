"""The adapter is no existence oracle: the sharing policy's first question ("may this requester see this
council's people at all?", ``disclose_people``) is answered before anything is read or looked up.

In process: real mutual TLS and signed assertions (tests/trust_support.py), Stockport's real sharing
policy, a real SQLite warehouse wrapped in a spy that counts what the adapter asked it. A requester the
policy refuses (an IG officer; a service client) gets PERMISSION_DENIED whatever ids or query it sends:
never NOT_FOUND for ids that do not exist, never INVALID_ARGUMENT, and the warehouse is never asked. Each
refusal is recorded in the disclosure log. A requester the policy admits still gets NOT_FOUND and
INVALID_ARGUMENT, so the difference is the policy's, not the request's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc, types_pb2
from familyctx_adapter import disclosure_schema
from familyctx_adapter.queries import PersonSearch
from familyctx_adapter.server import AdapterServer, build_server
from familyctx_adapter.source import WarehouseSource
from familyctx_adapter.sql_source import SqlWarehouseSource
from trust_support import Caller, requester
from unit.test_adapter_fixture_warehouse import CHILD, CHILD_NHS, build_warehouse, settings_for

from familyctx.trust.pki import DevPki

STOCKPORT = "E08000007"
POLICY = Path(__file__).resolve().parents[2] / "services/adapter/config/policies/stockport.cedar"
MISSING = ["NOPE-1", "NOPE-2"]
TOO_MANY = [f"P{i}" for i in range(51)]
REFUSED_MESSAGE = "Stockport's sharing policy discloses no records to this requester"


@dataclass
class SpySource(WarehouseSource):
    """The real warehouse, counting the lookups the adapter makes (``calls``: method names in order)."""

    inner: SqlWarehouseSource
    calls: list[str] = field(default_factory=list)

    def describe(self) -> adapter_pb2.DescribeResponse:
        return self.inner.describe()

    def find_people(self, search: PersonSearch, max_results: int) -> list[types_pb2.Person]:
        self.calls.append("find_people")
        return self.inner.find_people(search, max_results)

    def get_family_context(
        self, local_person_ids: Sequence[str], include_relatives: bool
    ) -> adapter_pb2.GetFamilyContextResponse:
        self.calls.append("get_family_context")
        return self.inner.get_family_context(local_person_ids, include_relatives)

    def check(self) -> bool:
        return self.inner.check()

    def close(self) -> None:
        self.inner.close()


@dataclass
class Running:
    server: AdapterServer
    source: SpySource
    stub: adapter_pb2_grpc.AdapterServiceStub
    caller: Caller
    disclosure_url: str


@pytest_asyncio.fixture
async def adapter(tmp_path: Path, dev_pki: DevPki) -> AsyncIterator[Running]:
    url = f"sqlite:///{tmp_path}/stockport.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "systemc")
    engine.dispose()
    settings = settings_for("systemc", url, pki=dev_pki, policy_file=POLICY)
    source = SpySource(SqlWarehouseSource.from_settings(settings))
    server = build_server(settings, source)
    await server.start()
    caller = Caller.gateway(dev_pki)
    channel = caller.channel(server.address)
    try:
        yield Running(
            server,
            source,
            adapter_pb2_grpc.AdapterServiceStub(channel),
            caller,
            settings.disclosure_log.database_url,
        )
    finally:
        await channel.close()
        await server.stop(grace=None)


async def _code(call: Any, request: Any, metadata: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call(request, metadata=metadata, timeout=10)
    return info.value.code(), info.value.details() or ""


def _recorded(url: str) -> dict[str, tuple[str, str]]:
    """{request id: (method, outcome)} of every disclosure record committed."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            table = disclosure_schema.disclosure_index
            rows = conn.execute(sa.select(table.c.request_id, table.c.method, table.c.outcome))
            return {r.request_id: (r.method, r.outcome) for r in rows}
    finally:
        engine.dispose()


REFUSED_REQUESTERS = [
    pytest.param({"role": "ig_officer"}, id="ig-officer"),
    pytest.param({"role": "service_client", "organisation": ""}, id="service-client"),
]


@pytest.mark.parametrize("who", REFUSED_REQUESTERS)
async def test_a_refused_requester_gets_permission_denied_whatever_ids_it_asks_for(
    adapter: Running, who: dict[str, str]
) -> None:
    asked = {
        "existing": [CHILD],
        "missing": MISSING,
        "too-many": TOO_MANY,
        "none": [],
    }
    for label, ids in asked.items():
        metadata = adapter.caller.metadata(STOCKPORT, requester(request_id=f"rid-{label}", **who))
        code, details = await _code(
            adapter.stub.GetFamilyContext,
            adapter_pb2.GetFamilyContextRequest(local_person_ids=ids, include_relatives=True),
            metadata,
        )
        assert (code, details) == (grpc.StatusCode.PERMISSION_DENIED, REFUSED_MESSAGE), label
    assert adapter.source.calls == []  # the warehouse was never asked
    recorded = _recorded(adapter.disclosure_url)
    assert recorded == {f"rid-{label}": ("GetFamilyContext", "refused") for label in asked}


@pytest.mark.parametrize("who", REFUSED_REQUESTERS)
async def test_a_refused_requester_gets_permission_denied_whatever_it_searches_for(
    adapter: Running, who: dict[str, str]
) -> None:
    queries = {
        "known": adapter_pb2.PersonQuery(nhs_number=CHILD_NHS),
        "unknown": adapter_pb2.PersonQuery(nhs_number="4010232137"),
        "empty": adapter_pb2.PersonQuery(),
        "impossible": adapter_pb2.PersonQuery(nhs_number="9999999999"),
    }
    for label, query in queries.items():
        metadata = adapter.caller.metadata(STOCKPORT, requester(request_id=f"rid-{label}", **who))
        code, details = await _code(
            adapter.stub.FindPeople, adapter_pb2.FindPeopleRequest(query=query), metadata
        )
        assert (code, details) == (grpc.StatusCode.PERMISSION_DENIED, REFUSED_MESSAGE), label
    assert adapter.source.calls == []
    assert set(_recorded(adapter.disclosure_url).values()) == {("FindPeople", "refused")}


async def test_an_admitted_requester_still_learns_what_does_not_exist(adapter: Running) -> None:
    """Control: the same requests from a social worker the policy admits are looked up and answered."""
    meta = adapter.caller.metadata
    code, _ = await _code(
        adapter.stub.GetFamilyContext,
        adapter_pb2.GetFamilyContextRequest(local_person_ids=MISSING),
        meta(STOCKPORT, requester(request_id="rid-missing")),
    )
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = await _code(
        adapter.stub.GetFamilyContext,
        adapter_pb2.GetFamilyContextRequest(local_person_ids=TOO_MANY),
        meta(STOCKPORT, requester(request_id="rid-too-many")),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, _ = await _code(
        adapter.stub.FindPeople,
        adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery()),
        meta(STOCKPORT, requester(request_id="rid-empty")),
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    family = await adapter.stub.GetFamilyContext(
        adapter_pb2.GetFamilyContextRequest(local_person_ids=[CHILD]),
        metadata=meta(STOCKPORT, requester(request_id="rid-child")),
        timeout=10,
    )
    assert [p.local_person_id for p in family.people] == [CHILD]
    found = await adapter.stub.FindPeople(
        adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number=CHILD_NHS)),
        metadata=meta(STOCKPORT, requester(request_id="rid-find")),
        timeout=10,
    )
    assert [c.local_person_id for c in found.candidates] == [CHILD]
    assert adapter.source.calls == ["get_family_context", "get_family_context", "find_people"]
    assert _recorded(adapter.disclosure_url) == {
        "rid-child": ("GetFamilyContext", "disclosed"),
        "rid-find": ("FindPeople", "disclosed"),
    }
