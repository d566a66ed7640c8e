"""(a) A child whose mother now lives in another council: the whole family, with provenance, live."""

from __future__ import annotations

from typing import Any

from e2e_support import (
    CASE_REFERENCE,
    LEEDS,
    MANCHESTER,
    PURPOSE,
    STOCKPORT,
    Gateway,
    audit_rows,
    person_holding,
)


def test_search_finds_the_child_by_name_and_date_of_birth(gateway: Gateway, scenario: dict[str, Any]) -> None:
    child = scenario["child"]
    response = gateway.post("/v1/searches", {
        "purpose": PURPOSE, "case_reference": CASE_REFERENCE, "given_name": child["given_name"],
        "family_name": child["family_name"], "date_of_birth": child["date_of_birth"],
    })
    assert response.status_code == 200, response.text
    answer = response.json()
    keys = {(r["gss_code"], r["local_person_id"]) for c in answer["candidates"] for r in c["records"]}
    assert (child["gss_code"], child["local_person_id"]) in keys
    states = {s["gss_code"]: s["state"] for s in answer["sources"]}
    assert states == {STOCKPORT: "ok", LEEDS: "ok", MANCHESTER: "ok"}


def test_search_by_nhs_number_links_the_mother_across_councils(
    gateway: Gateway, scenario: dict[str, Any]
) -> None:
    mother = scenario["mother"]
    response = gateway.post("/v1/searches", {"purpose": PURPOSE, "case_reference": CASE_REFERENCE,
                                             "nhs_number": mother["nhs_number"]})
    assert response.status_code == 200, response.text
    candidates = response.json()["candidates"]
    merged = [c for c in candidates if {r["gss_code"] for r in c["records"]} >= {STOCKPORT, LEEDS}]
    assert len(merged) == 1 and merged[0]["match_grade"] == "certain"


def test_family_context_of_the_child_whose_mother_moved(gateway: Gateway, scenario: dict[str, Any]) -> None:
    response = gateway.family_context(scenario["child"])
    assert response.status_code == 200, response.text
    answer = response.json()

    child = person_holding(answer, scenario["child"])
    assert child["is_subject"] and answer["subject_person_id"] == child["person_id"]

    # The mother: her Leeds record and her old Stockport record merged into one person, certainly.
    mother = person_holding(answer, scenario["mother"])
    assert mother is person_holding(answer, scenario["mother_previous_record"])
    assert {r["gss_code"] for r in mother["records"]} == {STOCKPORT, LEEDS}
    assert [e["match_grade"] for e in mother["evidence"]] and all(
        e["match_grade"] == "certain" for e in mother["evidence"]
    )
    # The evidence says why: the model's level and weight per field, the match weight and probability.
    for link in mother["evidence"]:
        fields = {f["field"]: f for f in link["fields"]}
        assert list(fields) == ["nhs_number", "given_name", "family_name", "date_of_birth", "sex", "postcode"]
        assert (fields["nhs_number"]["outcome"], fields["nhs_number"]["level"]) == ("agree", "exact")
        assert fields["nhs_number"]["weight"] > 0
        assert all(f["level"] and f["weight"] is not None for f in link["fields"])
        assert link["match_probability"] > 0.999 and link["match_weight"] > 10

    siblings = [person_holding(answer, s) for s in scenario["siblings"]]
    assert siblings, "the scenario plants at least one sibling"

    relations = {(r["person_id"], r["related_person_id"]): r["type"] for r in answer["relationships"]}
    assert relations[(child["person_id"], mother["person_id"])] == "parent"
    for sibling in siblings:
        assert relations[(child["person_id"], sibling["person_id"])] in {"sibling", "half_sibling"}

    # Involvements from every council that knows the family, each with provenance and a named practitioner.
    by_person: dict[str, list[dict[str, Any]]] = {}
    for involvement in answer["involvements"]:
        by_person.setdefault(involvement["person_id"], []).append(involvement)
        provenance = involvement["provenance"]
        assert provenance["council_gss_code"] == involvement["gss_code"]
        assert provenance["source_system"] and provenance["source_table"]
    assert {i["gss_code"] for i in by_person[child["person_id"]]} == {STOCKPORT}
    assert LEEDS in {i["gss_code"] for i in by_person[mother["person_id"]]}
    mother_in_leeds = {i["dataset_id"] for i in by_person[mother["person_id"]] if i["gss_code"] == LEEDS}
    assert {"asc", "housing"} <= mother_in_leeds
    # Manchester's sharing policy discloses adult social care only for an s47 enquiry under break glass:
    # the grandmother's adult social care there is withheld, and the answer says so.
    grandparent = person_holding(answer, scenario["grandparent"])
    assert MANCHESTER not in {i["gss_code"] for i in by_person.get(grandparent["person_id"], [])}
    states = grandparent["dataset_states"]
    withheld = [d for d in states if (d["gss_code"], d["dataset_id"]) == (MANCHESTER, "asc")]
    assert withheld and all(
        (d["state"], d["reason"]) == ("withheld", "withheld by Manchester policy") for d in withheld
    )
    assert {i["gss_code"] for i in answer["involvements"]} == {STOCKPORT, LEEDS}

    named = [i for i in answer["involvements"] if i["practitioner"] and i["practitioner"]["name"]]
    assert named, "involvements carry named practitioners"
    for involvement in named:
        practitioner = involvement["practitioner"]
        assert practitioner["role"] and practitioner["team"]
        assert practitioner["phone"] or practitioner["email"]
    child_csc = [i for i in by_person[child["person_id"]]
                 if i["dataset_id"] == "csc" and i["status"] == "open"]
    assert child_csc and child_csc[0]["practitioner"]["name"]

    # Every source answered and says how fresh it is.
    for source in answer["sources"]:
        assert source["state"] == "ok"
        assert source["datasets"] and all(d["refreshed_at"] for d in source["datasets"])

    # The access is audited with who, why and whom.
    (record,) = audit_rows(gateway.audit_engine, response.headers["x-request-id"])
    assert record["user_sub"] == "sw.stockport" and record["organisation"] == STOCKPORT
    assert record["purpose"] == PURPOSE and record["case_reference"] == CASE_REFERENCE
    returned = {(s["gss_code"], s["local_person_id"]) for s in record["subjects_returned"]}
    assert (scenario["child"]["gss_code"], scenario["child"]["local_person_id"]) in returned
    assert record["outcome"] == "success"


def test_unknown_subject_is_404_naming_the_council_and_audited_as_error(gateway: Gateway) -> None:
    # The real adapter answers gRPC NOT_FOUND when none of the ids asked for exist.
    response = gateway.family_context({"gss_code": STOCKPORT, "local_person_id": "NO-SUCH-PERSON-42"})
    assert response.status_code == 404, response.text
    assert response.json()["detail"] == (
        "No person with that local_person_id at Stockport (E08000007); search again and choose a result"
    )
    assert "NO-SUCH-PERSON-42" not in response.text
    rows = audit_rows(gateway.audit_engine, response.headers["x-request-id"])
    assert [(r["outcome"], r["http_status"]) for r in rows] == [("error", 404)]
