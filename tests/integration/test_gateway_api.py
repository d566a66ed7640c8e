"""The gateway end to end in-process: real FastAPI app (lifespan), real gRPC fake councils on loopback,
real JWTs from a real JWKS endpoint, real SQLite audit file."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from familycontext.v1 import types_pb2 as t
from familyctx_gateway.settings import AdapterTarget
from familyctx_gateway.testing.fake_council import CouncilData, CouncilTrust, person, start_council
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer
from familyctx_gateway.testing.pki import ASSERTION_ISSUER, session_pki
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT

from familyctx.linkage import Thresholds

PURPOSE = {"purpose": "s47_enquiry", "case_reference": "CASE-2026-0042"}
SUBJECT = {"gss_code": STOCKPORT, "local_person_id": "S-1001"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    # Module-wide: these tests never change the issuer's keys (test_gateway_auth.py does, per test).
    with running_issuer() as running:
        yield running


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        yield running


#: Per-field (outcome, level) of the scenario's two cross-council links.
JAYDEN_OR_MOTHER = {
    # Claire (Stockport) and Clare (Leeds): same NHS number, she moved.
    "mother": {
        "nhs_number": ("agree", "exact"),
        "given_name": ("similar", "short form (Bob/Robert)"),
        "family_name": ("agree", "exact"),
        "date_of_birth": ("agree", "exact"),
        "sex": ("agree", "exact"),
        "postcode": ("disagree", "different"),
    },
    # Jayden O'Neill (Stockport, male) and Jayden ONeill (Leeds, sex not recorded), no NHS numbers.
    "jayden": {
        "nhs_number": ("missing", "missing"),
        "given_name": ("agree", "exact"),
        "family_name": ("agree", "exact"),
        "date_of_birth": ("agree", "exact"),
        "sex": ("missing", "missing"),
        "postcode": ("disagree", "different"),
    },
}


async def test_search_by_nhs_number_links_nothing_else_and_reports_every_source(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/searches", json={**PURPOSE, "nhs_number": "999 000 0018"}, headers=gw.auth()
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert [c["records"][0]["local_person_id"] for c in body["candidates"]] == ["S-1001"]
    assert {s["gss_code"]: s["state"] for s in body["sources"]} == {
        STOCKPORT: "ok",
        LEEDS: "ok",
        MANCHESTER: "ok",
    }
    assert all(isinstance(s["latency_ms"], int) for s in body["sources"])


async def test_search_by_name_links_certain_merges_and_shows_probable_as_possible(gw: RunningGateway) -> None:
    resp = await gw.client.post("/v1/searches", json={**PURPOSE, "family_name": "O'Neill"}, headers=gw.auth())
    assert resp.status_code == 200, resp.text
    candidates = resp.json()["candidates"]
    by_records = {tuple(sorted(r["local_person_id"] for r in c["records"])): c for c in candidates}
    # The mother: same valid NHS number in Stockport and Leeds -> one candidate, two records, certain.
    mother = by_records[("L-77", "S-1003")]
    assert mother["match_grade"] == "certain"
    assert {r["gss_code"] for r in mother["records"]} == {STOCKPORT, LEEDS}
    [merge] = mother["evidence"]
    assert merge["match_grade"] == "certain" and merge["rules"] == []
    assert {f["field"]: (f["outcome"], f["level"]) for f in merge["fields"]} == JAYDEN_OR_MOTHER["mother"]
    assert merge["match_probability"] >= Thresholds.default().certain
    # Jayden: no NHS number on either side, names and date of birth agree, another address -> probable,
    # not merged.
    jayden_s, jayden_l = by_records[("S-1002",)], by_records[("L-78",)]
    assert jayden_s["match_grade"] is None
    assert [(m["candidate_id"], m["match_grade"]) for m in jayden_s["possible_matches"]] == [
        (jayden_l["candidate_id"], "probable")
    ]
    jayden_evidence = jayden_s["possible_matches"][0]["evidence"]
    assert {f["field"]: (f["outcome"], f["level"]) for f in jayden_evidence["fields"]} == JAYDEN_OR_MOTHER[
        "jayden"
    ]
    # The other Zoe in Manchester has a different valid NHS number: never linked, not even possible.
    zoe_s, zoe_m = by_records[("S-1001",)], by_records[("M-5",)]
    assert zoe_m["candidate_id"] not in {m["candidate_id"] for m in zoe_s["possible_matches"]}


async def test_search_passes_request_id_and_purpose_to_every_council(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/searches",
        json={**PURPOSE, "given_name": "Zoe", "date_of_birth": "2014-03-05"},
        headers={**gw.auth(), "X-Request-ID": "req-abc-123"},
    )
    assert resp.status_code == 200
    assert resp.headers["x-request-id"] == "req-abc-123"
    assert resp.json()["request_id"] == "req-abc-123"
    for servicer in gw.servicers.values():
        method, requester = servicer.calls[-1]
        assert method == "FindPeople"
        assert servicer.metadata[-1]["x-request-id"] == "req-abc-123"
        # Purpose and request id reach the council inside the verified assertion, not as loose metadata.
        assert (requester.request_id, requester.purpose) == ("req-abc-123", "s47_enquiry")
        assert "x-purpose" not in servicer.metadata[-1]


async def test_family_context_child_with_mother_in_another_council(gw: RunningGateway) -> None:
    resp = await gw.client.post("/v1/family-context", json={**PURPOSE, "subject": SUBJECT}, headers=gw.auth())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    people = {p["given_name"]: p for p in body["people"]}
    assert set(people) == {"Zoë", "Jayden", "Claire"}
    zoe, jayden, mother = people["Zoë"], people["Jayden"], people["Claire"]
    assert zoe["is_subject"] and body["subject_person_id"] == zoe["person_id"]

    # The mother is merged from Stockport and Leeds by NHS number, each record with its provenance.
    assert [(r["gss_code"], r["local_person_id"]) for r in mother["records"]] == [
        (STOCKPORT, "S-1003"),
        (LEEDS, "L-77"),
    ]
    assert {r["provenance"]["council_gss_code"] for r in mother["records"]} == {STOCKPORT, LEEDS}
    assert mother["evidence"][0]["match_grade"] == "certain"
    conflicts = {c["field"]: c["values"] for c in mother["conflicts"]}
    assert conflicts["given_name"] == ["Claire", "Clare"]
    assert len(conflicts["address"]) == 2
    assert {s["gss_code"]: s["state"] for s in mother["council_states"]} == {
        STOCKPORT: "records_found",
        LEEDS: "records_found",
        MANCHESTER: "none_found",
    }

    # Jayden has no NHS number in Stockport: Leeds' "Jayden ONeill" is a probable match, shown, not merged.
    assert len(jayden["records"]) == 1
    assert [(m["record"]["local_person_id"], m["match_grade"]) for m in jayden["possible_matches"]] == [
        ("L-78", "probable")
    ]
    [maybe] = jayden["possible_matches"]
    assert {f["field"]: (f["outcome"], f["level"]) for f in maybe["evidence"]["fields"]} == JAYDEN_OR_MOTHER[
        "jayden"
    ]
    assert maybe["evidence"]["match_weight"] > 0 and maybe["evidence"]["rules"] == []
    assert {
        f["field"]: (f["outcome"], f["level"]) for f in mother["evidence"][0]["fields"]
    } == JAYDEN_OR_MOTHER["mother"]
    assert {s["gss_code"]: s["state"] for s in jayden["council_states"]}[LEEDS] == "possible_match_only"

    # Relationships between merged people; involvements from both councils with practitioners.
    rels = {(r["person_id"], r["related_person_id"], r["type"]) for r in body["relationships"]}
    assert (zoe["person_id"], mother["person_id"], "parent") in rels
    assert (zoe["person_id"], jayden["person_id"], "sibling") in rels
    services = {(i["person_id"], i["gss_code"], i["service"]): i for i in body["involvements"]}
    assert (zoe["person_id"], STOCKPORT, "Child protection plan") in services
    tenancy = services[(mother["person_id"], LEEDS, "Tenancy")]
    assert tenancy["practitioner"]["name"] == "Alex Hughes"
    assert tenancy["practitioner"]["phone"] and tenancy["practitioner"]["email"]
    assert tenancy["provenance"]["council_gss_code"] == LEEDS
    assert (mother["person_id"], LEEDS, "Adult social care: carer support") in services

    # Per person, per council, per dataset states; council-level states with freshness.
    mother_states = {(d["gss_code"], d["dataset_id"]): d["state"] for d in mother["dataset_states"]}
    assert mother_states[(LEEDS, "housing")] == "records_found"
    assert mother_states[(STOCKPORT, "csc")] == "none_found"
    sources = {s["gss_code"]: s for s in body["sources"]}
    assert {code: s["state"] for code, s in sources.items()} == {
        STOCKPORT: "ok",
        LEEDS: "ok",
        MANCHESTER: "ok",
    }
    assert {d["dataset_id"] for d in sources[LEEDS]["datasets"]} == {"asc", "housing"}
    assert all(d["refreshed_at"] and d["stale"] is False for d in sources[LEEDS]["datasets"])

    # Leeds was asked for the mother's details without relatives, after a FindPeople by NHS number.
    assert [m for m, _ in gw.servicers[LEEDS].calls if m != "Describe"] == [
        "FindPeople",
        "FindPeople",
        "FindPeople",
        "GetFamilyContext",
    ]


async def test_family_context_unknown_council_and_unknown_person(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/family-context",
        json={**PURPOSE, "subject": {"gss_code": "E09000001", "local_person_id": "S-1001"}},
        headers=gw.auth(),
    )
    assert resp.status_code == 404
    assert "not part of this federation" in resp.json()["detail"]
    resp = await gw.client.post(
        "/v1/family-context",
        json={**PURPOSE, "subject": {"gss_code": STOCKPORT, "local_person_id": "S-9999"}},
        headers=gw.auth(),
    )
    assert resp.status_code == 404
    assert "search again" in resp.json()["detail"]


async def test_unknown_subject_answered_not_found_by_its_council_is_404_naming_the_council(
    gw: RunningGateway, caplog: pytest.LogCaptureFixture
) -> None:
    # The fake council answers NOT_FOUND for unknown ids, as the SQL adapter does (PeopleNotFound).
    caplog.set_level("DEBUG", logger="familyctx_gateway.adapter_client")
    resp = await gw.client.post(
        "/v1/family-context",
        json={**PURPOSE, "subject": {"gss_code": STOCKPORT, "local_person_id": "S-9999"}},
        headers={**gw.auth(), "X-Request-ID": "rid-unknown-subject"},
    )
    assert resp.status_code == 404, resp.text
    assert resp.json() == {
        "detail": "No person with that local_person_id at Stockport (E08000007); "
        "search again and choose a result",
        "errors": [],
        "request_id": "rid-unknown-subject",
    }
    assert "S-9999" not in resp.text
    assert "GetFamilyContext" in [m for m, _ in gw.servicers[STOCKPORT].calls]
    # NOT_FOUND is a healthy council's answer: logged as not_found (its own line only at DEBUG, like
    # ok; counted in the request's summary line at INFO), and the council stays "ok".
    records = [r for r in caplog.records if r.name == "familyctx_gateway.adapter_client"]
    own = [
        r
        for r in records
        if f"council={STOCKPORT} method=get_family_context state=not_found" in r.getMessage()
    ]
    assert [r.levelname for r in own] == ["DEBUG"], [r.getMessage() for r in records]
    summary = [
        r for r in records if r.getMessage().startswith("adapter calls request_id=rid-unknown-subject ")
    ]
    assert len(summary) == 1 and summary[0].levelname == "INFO"
    assert " not_found=1 " in summary[0].getMessage()
    sources = (await gw.client.get("/v1/sources", headers=gw.auth())).json()["sources"]
    assert {s["gss_code"]: s["state"] for s in sources}[STOCKPORT] == "ok"


async def test_ig_officer_may_not_search(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth("ig.stockport")
    )
    assert resp.status_code == 403
    assert "S-1001" not in resp.text


async def test_team_manager_may_search(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth("tm.leeds")
    )
    assert resp.status_code == 200


async def test_sources_health_and_readiness(gw: RunningGateway) -> None:
    assert (await gw.client.get("/healthz")).json() == {"status": "ok"}
    ready = await gw.client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    assert (await gw.client.get("/v1/sources")).status_code == 401
    resp = await gw.client.get("/v1/sources", headers=gw.auth())
    assert resp.status_code == 200
    sources = {s["gss_code"]: s for s in resp.json()["sources"]}
    assert set(sources) == {STOCKPORT, LEEDS, MANCHESTER}
    assert sources[STOCKPORT]["state"] == "ok"
    assert sources[STOCKPORT]["contract_version"] == "1.0.0"
    assert {d["dataset_id"] for d in sources[STOCKPORT]["datasets"]} == {"csc", "early_help"}


async def test_openapi_document_lists_the_api(gw: RunningGateway) -> None:
    paths = (await gw.client.get("/openapi.json")).json()["paths"]
    assert {"/v1/searches", "/v1/family-context", "/v1/sources", "/healthz", "/readyz"} <= set(paths)


# --- linkage through the API: two more councils holding one child (a typo) and a pair of twins ---------

BOLTON, BRADFORD = "E08000001", "E08000032"
AMELIA_DOB = dt.date(2017, 4, 12)


def _kowalski_councils() -> list[CouncilData]:
    """Bolton holds Amelia Kowalski; Bradford (where the family moved) holds her as "Amelai" (a typo) with
    no NHS number on either side, and her twin sister Olivia, also without an NHS number."""
    girl = {"sex": t.SEX_FEMALE}
    return [
        CouncilData(
            BOLTON,
            "Bolton",
            people=[person(BOLTON, "BO-1", "Amelia", "Kowalski", AMELIA_DOB, postcode="BL1 4AB", **girl)],
        ),
        CouncilData(
            BRADFORD,
            "Bradford",
            people=[
                person(BRADFORD, "BR-1", "Amelai", "Kowalski", AMELIA_DOB, postcode="BD3 9QT", **girl),
                person(BRADFORD, "BR-2", "Olivia", "Kowalski", AMELIA_DOB, postcode="BD3 9QT", **girl),
            ],
        ),
    ]


async def test_same_child_with_a_typo_and_no_nhs_number_is_probable_shown_not_merged_and_twins_not_linked(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    trust = CouncilTrust(session_pki(), ASSERTION_ISSUER)
    async with AsyncExitStack() as stack:
        targets = []
        for data in _kowalski_councils():
            address, _ = await stack.enter_async_context(start_council(data, trust))
            targets.append(AdapterTarget(gss_code=data.gss_code, name=data.name, address=address))
        gw = await stack.enter_async_context(
            running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}", extra_targets=targets)
        )
        resp = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "family_name": "Kowalski"}, headers=gw.auth()
        )
    assert resp.status_code == 200, resp.text
    candidates = {c["records"][0]["local_person_id"]: c for c in resp.json()["candidates"]}
    # Three records, three candidates: nothing merged.
    assert sorted(candidates) == ["BO-1", "BR-1", "BR-2"]
    assert all(len(c["records"]) == 1 and c["match_grade"] is None for c in candidates.values())
    amelia, amelai, olivia = candidates["BO-1"], candidates["BR-1"], candidates["BR-2"]
    # Amelia and "Amelai": a probable match, offered on both sides with the same evidence.
    [match] = amelia["possible_matches"]
    assert (match["candidate_id"], match["match_grade"]) == (amelai["candidate_id"], "probable")
    assert [(m["candidate_id"], m["match_grade"]) for m in amelai["possible_matches"]] == [
        (amelia["candidate_id"], "probable")
    ]
    evidence = match["evidence"]
    assert evidence == amelai["possible_matches"][0]["evidence"]
    assert (evidence["left"], evidence["right"]) == (
        {"gss_code": BOLTON, "local_person_id": "BO-1"},
        {"gss_code": BRADFORD, "local_person_id": "BR-1"},
    )
    fields = {f["field"]: f for f in evidence["fields"]}
    assert list(fields) == ["nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode"]
    assert {name: (f["outcome"], f["level"]) for name, f in fields.items()} == {
        "nhs_number": ("missing", "missing"),
        "given_name": ("similar", "Jaro-Winkler >= 0.92"),
        "family_name": ("agree", "exact"),
        "date_of_birth": ("agree", "exact"),
        "sex": ("agree", "exact"),
        "postcode": ("disagree", "different"),
    }
    assert 90 < fields["given_name"]["score"] < 100
    assert fields["date_of_birth"]["weight"] > 0 > fields["postcode"]["weight"]
    assert fields["nhs_number"]["weight"] == 0
    thresholds = Thresholds.default()
    assert thresholds.probable <= evidence["match_probability"] < thresholds.certain
    assert evidence["match_weight"] > 0 and evidence["rules"] == []
    # The twins: same family name, date of birth and sex, different given names: never linked.
    assert olivia["possible_matches"] == []
    assert olivia["candidate_id"] not in {m["candidate_id"] for m in amelia["possible_matches"]}


async def test_linkage_thresholds_are_configured_and_loaded_once(issuer: TestIssuer, tmp_path: Path) -> None:
    thresholds = {"certain": 0.99999, "probable": 0.95, "possible": 0.3}
    async with running_gateway(
        issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}", linkage={"thresholds": thresholds}
    ) as gw:
        linker = gw.app.state.gateway.linker
        assert linker.thresholds == Thresholds(**thresholds)
        resp = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
        )
        assert resp.status_code == 200
        assert gw.app.state.gateway.linker is linker


def test_gateway_refuses_to_start_on_a_broken_linkage_model(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    model.write_text('{"comparisons": ')
    config = tmp_path / "gateway.yaml"
    config.write_text(f"linkage: {{model_path: '{model}'}}\n")
    done = subprocess.run(
        [sys.executable, "-m", "familyctx.cli", "gateway", "serve", "--config", str(config), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "gateway ready" not in done.stdout
    assert (
        f"error: gateway settings: linkage.model_path: model file {model} is not valid JSON (line 1): "
        "retrain with make linkage-train"
    ) in done.stderr, done.stderr
