"""The adapter over the synthetic councils from ``familyctx synth``: the planted mother_moved family.

Real synth output (SQLite per council), real gRPC server in process on a free port, real mutual-TLS
channel with signed gateway assertions (the permit-all test policy: sharing policy is tested elsewhere).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc, types_pb2
from familyctx_adapter.indexes import prepare_indexes
from familyctx_adapter.server import build_server
from familyctx_adapter.settings import load_settings
from familyctx_adapter.sql_source import SqlWarehouseSource
from trust_support import AuthedStub, Caller, adapter_trust_settings

from familyctx.trust.pki import DevPki

pytestmark = pytest.mark.asyncio(loop_scope="module")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    out = tmp_path_factory.mktemp("synth")
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from familyctx.cli import app; app()",
            "synth",
            "--out",
            str(out),
            "--people",
            "120",
            "--seed",
            "7",
            "--noise",
            "0.2",
            "--force",
        ],
        check=True,
        capture_output=True,
        timeout=240,
    )
    yield out


@pytest.fixture(scope="module")
def scenario(synth_dir: Path) -> dict[str, Any]:
    return json.loads((synth_dir / "scenarios.json").read_text(encoding="utf-8"))["mother_moved"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def stubs(synth_dir: Path, dev_pki: DevPki) -> AsyncIterator[dict[str, AuthedStub]]:
    servers, channels, out = [], [], {}
    caller = Caller.gateway(dev_pki)
    for slug, gss in (("stockport", "E08000007"), ("leeds", "E08000035")):
        settings = load_settings(
            REPO / "services" / "adapter" / "config" / f"{slug}.yaml",
            database_url=f"sqlite:///{synth_dir / slug}.sqlite",
            listen={"port": 0},
            **adapter_trust_settings(dev_pki, gss),
        )
        assert settings.council.gss_code == gss
        source = SqlWarehouseSource.from_settings(settings)
        prepare_indexes(source.w)
        server = build_server(settings, source)
        await server.start()
        channel = caller.channel(f"127.0.0.1:{server.port}")
        servers.append(server)
        channels.append(channel)
        out[gss] = AuthedStub(adapter_pb2_grpc.AdapterServiceStub(channel), caller, gss)
    try:
        yield out
    finally:
        for channel in channels:
            await channel.close()
        for server in servers:
            await server.stop(grace=None)


def _query(record: dict[str, Any], *, with_nhs: bool) -> adapter_pb2.FindPeopleRequest:
    if with_nhs:
        return adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number=record["nhs_number"]))
    dob = dt.date.fromisoformat(record["date_of_birth"])
    return adapter_pb2.FindPeopleRequest(
        query=adapter_pb2.PersonQuery(
            given_name=record["given_name"],
            family_name=record["family_name"],
            date_of_birth=types_pb2.Date(year=dob.year, month=dob.month, day=dob.day),
        )
    )


async def test_child_found_by_nhs_number_and_by_name_and_dob(stubs, scenario) -> None:  # noqa: ANN001
    child = scenario["child"]
    stub = stubs[child["gss_code"]]
    by_nhs = await stub.FindPeople(_query(child, with_nhs=True), timeout=10)
    assert [p.local_person_id for p in by_nhs.candidates] == [child["local_person_id"]]
    assert by_nhs.candidates[0].nhs_number == child["nhs_number"]
    by_name = await stub.FindPeople(_query(child, with_nhs=False), timeout=10)
    assert by_name.candidates[0].local_person_id == child["local_person_id"]


async def test_child_family_context_shows_mother_siblings_and_named_practitioners(stubs, scenario) -> None:  # noqa: ANN001
    child = scenario["child"]
    ctx = await stubs[child["gss_code"]].GetFamilyContext(
        adapter_pb2.GetFamilyContextRequest(
            local_person_ids=[child["local_person_id"]], include_relatives=True
        ),
        timeout=10,
    )
    people = {p.local_person_id for p in ctx.people}
    mother_here = scenario["mother_previous_record"]["local_person_id"]
    siblings = {s["local_person_id"] for s in scenario["siblings"]}
    assert {child["local_person_id"], mother_here} | siblings <= people
    rels = {(r.local_person_id, r.related_local_person_id): r.type for r in ctx.relationships}
    assert rels[(child["local_person_id"], mother_here)] == types_pb2.RELATIONSHIP_TYPE_PARENT
    assert rels[(mother_here, child["local_person_id"])] == types_pb2.RELATIONSHIP_TYPE_CHILD
    for sibling in siblings:
        assert rels[(child["local_person_id"], sibling)] in (
            types_pb2.RELATIONSHIP_TYPE_SIBLING,
            types_pb2.RELATIONSHIP_TYPE_HALF_SIBLING,
        )
    child_csc = [
        i for i in ctx.involvements if i.local_person_id == child["local_person_id"] and i.dataset_id == "csc"
    ]
    assert {i.service for i in child_csc} >= {"Child in need", "Child protection plan"}
    for involvement in child_csc:
        assert involvement.practitioner.name and involvement.practitioner.email
        assert involvement.provenance.council_gss_code == child["gss_code"]
        assert involvement.provenance.source_system == "Liquidlogic LCS"  # warehouse_refresh's name


async def test_mother_in_leeds_has_adult_social_care_and_housing(stubs, scenario) -> None:  # noqa: ANN001
    mother = scenario["mother"]
    stub = stubs[mother["gss_code"]]
    found = await stub.FindPeople(_query(mother, with_nhs=True), timeout=10)
    assert [p.local_person_id for p in found.candidates] == [mother["local_person_id"]]
    ctx = await stub.GetFamilyContext(
        adapter_pb2.GetFamilyContextRequest(local_person_ids=[mother["local_person_id"]]), timeout=10
    )
    datasets = {i.dataset_id for i in ctx.involvements}
    assert {"asc", "housing"} <= datasets
    assert all(i.practitioner.name for i in ctx.involvements)
    states = {o.dataset_id: o.state for o in ctx.dataset_outcomes}
    assert states["csc"] == types_pb2.DATASET_STATE_NOT_IN_COHORT
