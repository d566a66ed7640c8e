"""The adapter's real gRPC server, in process on a free port, over SQLite and PostgreSQL.

Calls go through a real mutual-TLS channel (grpc.aio) with a signed gateway assertion, as the gateway
makes them (tests/trust_support.py); the warehouse is real SQL built with build_metadata.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import grpc
import pytest
import pytest_asyncio
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc, types_pb2
from familyctx_adapter.indexes import prepare_indexes
from familyctx_adapter.server import build_server
from familyctx_adapter.sql_source import SqlWarehouseSource
from grpc_health.v1 import health_pb2, health_pb2_grpc
from trust_support import Caller, requester
from unit.test_adapter_fixture_warehouse import BROTHER, CHILD, GSS, MOTHER, build_warehouse, settings_for

from familyctx.trust.pki import DevPki

#: Same server and variable as tests/conftest.py's postgres_url (not imported: tests/e2e has its own
#: conftest module, and the name "conftest" is ambiguous in a full run).
POSTGRES_ADMIN_URL = os.environ.get(
    "FAMILYCTX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)

BACKENDS = [
    ("sqlite", "systemc"),
    ("sqlite", "mosaic"),
    ("sqlite", "eclipse"),
    ("postgres", "systemc"),
    ("postgres", "mosaic"),
    ("postgres", "eclipse"),
]

# One server per backend and flavour for the whole module (the tests only read), on one event loop.
pytestmark = pytest.mark.asyncio(loop_scope="module")


class Adapter:
    def __init__(
        self, stub: adapter_pb2_grpc.AdapterServiceStub, channel: grpc.aio.Channel, cms: str, caller: Caller
    ) -> None:
        self.stub, self.channel, self.cms, self.caller = stub, channel, cms, caller

    def meta(self, **changes: object) -> tuple[tuple[str, str], ...]:
        """A fresh assertion for this adapter's council (request id req-123, purpose s47_enquiry)."""
        return self.caller.metadata(GSS[self.cms], requester(request_id="req-123", **changes))


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this module (same server and rules as conftest's postgres_url:
    fails, never skips, when the server is down); dropped afterwards."""
    name = f"fctest_adapter_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest_asyncio.fixture(
    scope="module", loop_scope="module", params=BACKENDS, ids=[f"{b}-{c}" for b, c in BACKENDS]
)
async def adapter(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki
) -> AsyncIterator[Adapter]:
    backend, cms = request.param
    if backend == "postgres":
        base = request.getfixturevalue("module_postgres_url")
        # one schema per flavour inside the module's database
        engine = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {cms}"))
        engine.dispose()
        url = f"{base}?options=-csearch_path%3D{cms}"
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp(cms)}/w.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, cms)
    engine.dispose()
    settings = settings_for(cms, url, pki=dev_pki)
    source = SqlWarehouseSource.from_settings(settings)
    prepare_indexes(source.w)
    server = build_server(settings, source)
    await server.start()
    caller = Caller.gateway(dev_pki)
    channel = caller.channel(f"127.0.0.1:{server.port}")
    try:
        yield Adapter(adapter_pb2_grpc.AdapterServiceStub(channel), channel, cms, caller)
    finally:
        await channel.close()
        await server.stop(grace=None)


async def test_health_and_describe(adapter: Adapter) -> None:
    health = health_pb2_grpc.HealthStub(adapter.channel)
    for service in ("", "familycontext.v1.AdapterService"):
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    d = await adapter.stub.Describe(
        adapter_pb2.DescribeRequest(), metadata=adapter.meta(purpose=""), timeout=10
    )
    assert d.contract_version == "1.0.0" and d.source_system == adapter.cms
    assert {ds.dataset_id for ds in d.datasets} == {"csc", "early_help", "asc", "housing"}


async def test_find_people_by_nhs_number_and_by_name_and_dob(adapter: Adapter) -> None:
    by_nhs = await adapter.stub.FindPeople(
        adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number="943-476-5919")),
        metadata=adapter.meta(),
        timeout=10,
    )
    assert [p.local_person_id for p in by_nhs.candidates] == [CHILD]
    assert by_nhs.candidates[0].address.postcode == "SK1 3XE"
    by_name = await adapter.stub.FindPeople(
        adapter_pb2.FindPeopleRequest(
            query=adapter_pb2.PersonQuery(
                given_name="ZOE",
                family_name="o'neill",
                date_of_birth=types_pb2.Date(year=2014, month=3, day=5),
            ),
            max_results=1,
        ),
        metadata=adapter.meta(),
        timeout=10,
    )
    assert [(p.local_person_id, p.given_name, p.family_name) for p in by_name.candidates] == [
        (CHILD, "Zoë", "O'Neill")
    ]


async def test_family_context(adapter: Adapter) -> None:
    ctx = await adapter.stub.GetFamilyContext(
        adapter_pb2.GetFamilyContextRequest(local_person_ids=[CHILD, "UNKNOWN"], include_relatives=True),
        metadata=adapter.meta(),
        timeout=10,
    )
    assert {p.local_person_id for p in ctx.people} == {CHILD, BROTHER, MOTHER}
    named = {(i.local_person_id, i.service): i.practitioner.name for i in ctx.involvements}
    assert named[(CHILD, "Child protection plan")] == "Priya Shah"
    assert named[(MOTHER, "Tenancy")] == "Dan Price"
    assert len(ctx.dataset_outcomes) == 3 * 4


async def test_invalid_argument_and_not_found(adapter: Adapter) -> None:
    bad_searches = [
        (adapter_pb2.FindPeopleRequest(), "give at least one of"),
        (
            adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(family_name="x" * 300)),
            "longer than 200",
        ),
        (
            adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(family_name="Smith"), max_results=-5),
            "max_results",
        ),
        (
            adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number="9434765918")),
            "NHS number check",
        ),
        (
            adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number="9999999999")),
            "placeholder",
        ),
        (  # a family name that is only a title: no identifier left to search on
            adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(family_name="Mrs", given_name="Zoe")),
            "family_name has nothing to match on",
        ),
    ]
    for request_message, message in bad_searches:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await adapter.stub.FindPeople(request_message, metadata=adapter.meta(), timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in (info.value.details() or "")
        details = info.value.details() or ""
        assert "9999999999" not in details and "9434765918" not in details and "Mrs" not in details

    with pytest.raises(grpc.aio.AioRpcError) as info:
        await adapter.stub.GetFamilyContext(
            adapter_pb2.GetFamilyContextRequest(local_person_ids=[f"P{i}" for i in range(51)]),
            metadata=adapter.meta(),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "at most 50" in (info.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await adapter.stub.GetFamilyContext(
            adapter_pb2.GetFamilyContextRequest(local_person_ids=["NOPE-1", "NOPE-2"]),
            metadata=adapter.meta(),
            timeout=10,
        )
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "NOPE" not in (info.value.details() or "")


async def test_logs_carry_request_id_and_purpose_but_no_personal_data(
    adapter: Adapter, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="familyctx.adapter")
    await adapter.stub.FindPeople(
        adapter_pb2.FindPeopleRequest(
            query=adapter_pb2.PersonQuery(nhs_number="9434765919", family_name="O'Neill", given_name="Zoë")
        ),
        metadata=adapter.meta(),
        timeout=10,
    )
    lines = [r.getMessage() for r in caplog.records if r.name == "familyctx.adapter"]
    assert any(
        "FindPeople" in line
        and "request_id=req-123" in line
        and "purpose=s47_enquiry" in line
        and "role=social_worker" in line
        and "org=E08000007" in line
        for line in lines
    )
    text = "\n".join(lines)
    for personal in ("9434765919", "O'Neill", "Zoë", "2014", "Test Worker", "TEST-CASE-1"):
        assert personal not in text


async def test_warehouse_gone_is_unavailable_and_not_serving(postgres_url: str, dev_pki: DevPki) -> None:
    engine = sa.create_engine(postgres_url)
    build_warehouse(engine, "systemc")
    engine.dispose()
    settings = settings_for("systemc", postgres_url, pki=dev_pki)
    server = build_server(settings, SqlWarehouseSource.from_settings(settings))
    await server.start()
    caller = Caller.gateway(dev_pki)
    try:
        async with caller.channel(f"127.0.0.1:{server.port}") as channel:
            stub = adapter_pb2_grpc.AdapterServiceStub(channel)
            request = adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number="9434765919"))
            meta = caller.metadata(GSS["systemc"])
            assert len((await stub.FindPeople(request, metadata=meta, timeout=10)).candidates) == 1
            admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                name = postgres_url.rsplit("/", 1)[1]
                conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            admin.dispose()
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await stub.FindPeople(request, metadata=caller.metadata(GSS["systemc"]), timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "9434765919" not in (info.value.details() or "")
            # The assertion was accepted before the warehouse failed: the gateway must not retry it.
            assert ("grpc-retry-pushback-ms", "-1") in tuple(info.value.trailing_metadata() or ())
            assert await server.check_health() is False
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    finally:
        await server.stop(grace=None)
