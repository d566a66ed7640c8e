"""Sharing policies enforced at the source, shown on the wire: role x purpose x break glass x council.

Three real adapter processes (``familyctx adapter serve``), one per demo council with its own demo
policy (services/adapter/config/policies/*.cedar), each over a fixture warehouse with a known family.
They are called as the gateway calls them: mutual TLS with the gateway's client certificate and a
freshly signed assertion per call. For every answer the SERIALISED RESPONSE BYTES are checked against
the raw warehouse answer (read directly, without the adapter): no involvement of a withheld dataset,
no value that only a withheld dataset holds, no withheld field value (practitioner phone numbers), and
outcomes that say WITHHELD with the council's name. The expected decisions come from the policies'
plain-language rules written out below, not from the policy engine.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, adapter_pb2_grpc, types_pb2
from trust_support import Caller, adapter_trust_yaml, requester
from unit.test_adapter_fixture_warehouse import (
    CHILD,
    CHILD_NHS,
    LA,
    NAMES,
    build_warehouse,
    settings_for,
)

from familyctx.trust.pki import DevPki

T = types_pb2
REPO = Path(__file__).resolve().parents[2]
POLICIES = REPO / "services/adapter/config/policies"
STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"
CMS = {STOCKPORT: "systemc", LEEDS: "mosaic", MANCHESTER: "eclipse"}
SLUG = {STOCKPORT: "stockport", LEEDS: "leeds", MANCHESTER: "manchester"}
ALL = frozenset({"csc", "early_help", "asc", "housing"})
ROLES = ("social_worker", "team_manager", "ig_officer", "administrator", "service_client")
PURPOSES = ("s17_assessment", "s47_enquiry", "cp_conference", "cla_review", "early_help_assessment")
CASE_REF = "MATRIX-CASE-42"
GLASS_REASON = "Child missing overnight; mother's whereabouts unknown to the duty team"


def expected(
    council: str, role: str, org: str, purpose: str, glass: bool
) -> tuple[frozenset[str] | None, bool]:
    """(datasets disclosed, or None when the council discloses nothing at all; phone numbers withheld)."""
    if role not in ("social_worker", "team_manager"):
        return None, True  # IG officers, administrators, service clients: nothing, at every council
    if council == STOCKPORT:  # everything, but phone numbers only to Stockport's own workers
        return ALL, org != STOCKPORT
    if council == LEEDS:  # housing only for child protection work; break glass does not open it
        cp = purpose in ("s47_enquiry", "cp_conference")
        return ALL - ({"housing"} if not cp else set()), False
    # Manchester: adult social care only for an s47 enquiry, and then only under break glass
    return ALL - ({"asc"} if not (purpose == "s47_enquiry" and glass) else set()), False


@dataclass
class Council:
    gss: str
    name: str
    address: str
    log: Path
    reference: adapter_pb2.GetFamilyContextResponse  # the raw warehouse answer, no policy applied


def _familyctx(*args: str) -> list[str]:
    return [sys.executable, "-c", "from familyctx.cli import app; app()", *args]


def _start(gss: str, directory: Path, pki: DevPki, started: list[subprocess.Popen[str]]) -> Council:
    cms = CMS[gss]
    url = f"sqlite:///{directory}/{cms}.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, cms)
    engine.dispose()
    from familyctx_adapter.sql_source import SqlWarehouseSource

    source = SqlWarehouseSource.from_settings(settings_for(cms, url))
    try:
        reference = source.get_family_context([CHILD], True)
    finally:
        source.close()
    config = directory / f"{SLUG[gss]}.yaml"
    config.write_text(
        f"council: {{gss_code: {gss}, name: {NAMES[cms]}, dfe_la_number: {LA[cms]}}}\n"
        f"cms: {cms}\ndatabase_url: {url}\nlisten: {{host: 127.0.0.1, port: 0}}\n"
        + adapter_trust_yaml(pki, gss, policy_file=POLICIES / f"{SLUG[gss]}.cedar"),
        encoding="utf-8",
    )
    subprocess.run(_familyctx("adapter", "prepare", "--config", str(config)), check=True, capture_output=True)
    log = directory / f"{SLUG[gss]}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            _familyctx("adapter", "serve", "--config", str(config)),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    started.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith("adapter ready on "), line + log.read_text()
    return Council(gss, NAMES[cms], line.strip().rsplit(" ", 1)[1], log, reference)


@pytest.fixture(scope="module")
def councils(tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki) -> Iterator[dict[str, Council]]:
    started: list[subprocess.Popen[str]] = []
    out: dict[str, Council] = {}
    try:
        for gss in (STOCKPORT, LEEDS, MANCHESTER):
            out[gss] = _start(gss, tmp_path_factory.mktemp(SLUG[gss]), dev_pki, started)
        yield out
    finally:
        for proc in started:
            proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture(scope="module")
def caller(dev_pki: DevPki) -> Caller:
    return Caller.gateway(dev_pki)


def _strings(message: object) -> set[str]:
    """Every non-empty string value in a message, at any depth (ids, names, phones, provenance...)."""
    out: set[str] = set()
    for _, value in message.ListFields():  # type: ignore[attr-defined]
        values = value if isinstance(value, (list, tuple)) or hasattr(value, "extend") else [value]
        for item in values:
            if isinstance(item, str) and item:
                out.add(item)
            elif hasattr(item, "ListFields"):
                out |= _strings(item)
    return out


def _only_in(reference: adapter_pb2.GetFamilyContextResponse, dataset: str) -> set[str]:
    """Values that occur in ``dataset``'s involvements and nowhere else in the raw answer."""
    others = adapter_pb2.GetFamilyContextResponse(
        people=reference.people,
        relationships=reference.relationships,
        involvements=[i for i in reference.involvements if i.dataset_id != dataset],
    ).SerializeToString()
    mine = set().union(*(_strings(i) for i in reference.involvements if i.dataset_id == dataset))
    return {s for s in mine if s.encode() not in others and s != dataset}


def _check_family_context(
    council: Council,
    answer: adapter_pb2.GetFamilyContextResponse,
    disclosed: frozenset[str],
    phones_withheld: bool,
    label: str,
) -> None:
    wire = answer.SerializeToString()
    ref = council.reference
    ref_datasets = {i.dataset_id for i in ref.involvements}
    withheld = ALL - disclosed
    answer_strings = _strings(answer)
    assert {i.dataset_id for i in answer.involvements} == ref_datasets & disclosed, label
    for dataset in disclosed & ref_datasets:  # nothing more withheld than the policy says
        want = sum(i.dataset_id == dataset for i in ref.involvements)
        assert sum(i.dataset_id == dataset for i in answer.involvements) == want, (label, dataset)
    for dataset in withheld & ref_datasets:
        secrets = _only_in(ref, dataset)
        assert secrets, (label, dataset)  # the fixture holds values that only this dataset has
        # Every string field of the answer, and the raw bytes for values long enough not to occur by chance.
        leaked = sorted(s for s in secrets if s in answer_strings or (len(s) >= 6 and s.encode() in wire))
        assert not leaked, (label, dataset, leaked)
    phones = {i.practitioner.phone for i in ref.involvements if i.practitioner.phone}
    assert phones, label
    if phones_withheld:
        assert not any(p.encode() in wire for p in phones), label
        assert all(i.practitioner.phone == "" for i in answer.involvements), label
    else:
        shown = {i.practitioner.phone for i in ref.involvements if i.dataset_id in disclosed} - {""}
        assert all(p.encode() in wire for p in shown), label
    got = {(o.local_person_id, o.dataset_id): o for o in answer.dataset_outcomes}
    assert len(got) == len(ref.dataset_outcomes), label
    for raw in ref.dataset_outcomes:
        out = got[(raw.local_person_id, raw.dataset_id)]
        if raw.dataset_id in withheld and raw.state != T.DATASET_STATE_NOT_IN_COHORT:
            assert (out.state, out.reason) == (T.DATASET_STATE_WITHHELD, f"withheld by {council.name} policy")
        else:
            assert out.state == raw.state, (label, raw.dataset_id)
    if phones_withheld and disclosed:
        noted = [o.reason for o in answer.dataset_outcomes if o.state == T.DATASET_STATE_RECORDS_FOUND]
        assert noted and all(f"phone numbers withheld by {council.name} policy" in r for r in noted), label


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("gss", [STOCKPORT, LEEDS, MANCHESTER], ids=["stockport", "leeds", "manchester"])
def test_sharing_matrix(councils: dict[str, Council], caller: Caller, gss: str, role: str) -> None:
    council = councils[gss]
    other = LEEDS if gss != LEEDS else STOCKPORT
    orgs = [gss, other] + ([""] if role == "service_client" else [])
    with caller.sync_channel(council.address) as channel:
        stub = adapter_pb2_grpc.AdapterServiceStub(channel)
        for org in orgs:
            for purpose in PURPOSES:
                for glass in (False, True):
                    label = (
                        f"{council.name} role={role} org={org or '-'} purpose={purpose} break_glass={glass}"
                    )
                    who = requester(
                        role=role,
                        organisation=org,
                        purpose=purpose,
                        case_reference=CASE_REF,
                        break_glass=glass,
                        break_glass_reason=GLASS_REASON if glass else "",
                    )
                    metadata = caller.metadata(gss, who)
                    disclosed, phones_withheld = expected(gss, role, org, purpose, glass)
                    find = adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(nhs_number=CHILD_NHS))
                    family = adapter_pb2.GetFamilyContextRequest(
                        local_person_ids=[CHILD], include_relatives=True
                    )
                    if disclosed is None:
                        for call, request in ((stub.FindPeople, find), (stub.GetFamilyContext, family)):
                            with pytest.raises(grpc.RpcError) as refused:
                                # A fresh assertion per call, as the gateway signs: one is never replayed.
                                call(request, metadata=caller.metadata(gss, who), timeout=20)
                            assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, label
                            assert council.name in (refused.value.details() or ""), label
                        continue
                    found = stub.FindPeople(find, metadata=metadata, timeout=20)
                    assert [p.local_person_id for p in found.candidates] == [CHILD], label
                    assert found.candidates[0].address.postcode, label
                    answer = stub.GetFamilyContext(family, metadata=caller.metadata(gss, who), timeout=20)
                    _check_family_context(council, answer, disclosed, phones_withheld, label)


def test_withholding_is_logged_without_personal_data(councils: dict[str, Council], caller: Caller) -> None:
    """Each council logs its decisions not to share, with the deciding policy, once per request and
    dataset; the logs hold ids and codes only."""
    leeds, manchester = councils[LEEDS], councils[MANCHESTER]
    family = adapter_pb2.GetFamilyContextRequest(local_person_ids=[CHILD], include_relatives=True)
    who = requester(organisation=STOCKPORT, purpose="cla_review", case_reference=CASE_REF)
    for council, rid in ((leeds, "req-log-leeds"), (manchester, "req-log-manchester")):
        with caller.sync_channel(council.address) as channel:
            adapter_pb2_grpc.AdapterServiceStub(channel).GetFamilyContext(
                family, metadata=caller.metadata(council.gss, who, request_id=rid), timeout=20
            )
    with caller.sync_channel(councils[STOCKPORT].address) as channel:
        adapter_pb2_grpc.AdapterServiceStub(channel).GetFamilyContext(
            family,
            metadata=caller.metadata(
                STOCKPORT, requester(organisation=LEEDS, case_reference=CASE_REF), request_id="req-log-phones"
            ),
            timeout=20,
        )
        with pytest.raises(grpc.RpcError):
            adapter_pb2_grpc.AdapterServiceStub(channel).GetFamilyContext(
                family,
                metadata=caller.metadata(STOCKPORT, requester(role="ig_officer"), request_id="req-log-ig"),
                timeout=20,
            )
    leeds_log, manchester_log = leeds.log.read_text(), manchester.log.read_text()
    stockport_log = councils[STOCKPORT].log.read_text()
    decisions = [
        ln.split(" disclosure decision ", 1)[1] for ln in leeds_log.splitlines() if "decision r" in ln
    ]
    assert [d for d in decisions if "req-log-leeds" in d] == [
        "request_id=req-log-leeds role=social_worker org=E08000007 purpose=cla_review break_glass=false "
        "dataset=housing decision=withheld policies=default-deny"
    ]
    assert (
        "request_id=req-log-manchester" in manchester_log
        and "dataset=asc decision=withheld" in manchester_log
    )
    assert (
        "request_id=req-log-ig role=ig_officer org=E08000007 purpose=s47_enquiry break_glass=false dataset=- "
        "what=people decision=withheld policies=no-family-data-for-non-practitioners"
    ) in stockport_log
    everything = leeds_log + manchester_log + stockport_log
    phones = [
        ln for ln in stockport_log.splitlines() if "req-log-phones" in ln and "field=practitioner.phone" in ln
    ]
    assert len(phones) == len({i.dataset_id for i in councils[STOCKPORT].reference.involvements})
    assert all("org=E08000035" in ln and "policies=phone-numbers-stockport-only" in ln for ln in phones)
    for council in councils.values():
        for person in council.reference.people:
            for value in (person.given_name, person.family_name, person.nhs_number, person.address.postcode):
                assert not value or value not in everything
        for involvement in council.reference.involvements:
            assert not involvement.practitioner.phone or involvement.practitioner.phone not in everything
    assert CASE_REF not in everything and GLASS_REASON not in everything
