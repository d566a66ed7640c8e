"""Terminal rendering of gateway answers and the client's error messages (no network needed)."""

# ruff: noqa: E501 - response fixtures read better one record per line

from __future__ import annotations

import socket

import httpx
import pytest
from familyctx_gateway.api.schemas import FamilyContextResponse, SearchResponse
from rich.console import Console

from familyctx.gateway_client import GatewayClient, GatewayHttpError, ServiceUnreachable, fetch_token
from familyctx.render import STATE_STYLES, render_family_context, render_search

STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"


def _record(gss: str, council: str, local_id: str, given: str, family: str, dob: str) -> dict[str, object]:
    return {
        "gss_code": gss, "council_name": council, "local_person_id": local_id, "nhs_number": "9998761042",
        "given_name": given, "family_name": family, "date_of_birth": dob,
        "provenance": {"council_gss_code": gss, "source_system": "Liquidlogic LCS", "source_table": "ssd_person"},
    }


def _sources() -> list[dict[str, object]]:
    return [
        {"gss_code": STOCKPORT, "name": "Stockport", "state": "ok", "latency_ms": 12, "datasets": [
            {"dataset_id": "csc", "name": "CSC", "category": "childrens_social_care",
             "refreshed_at": "2026-11-29T06:00:00Z", "stale": False}]},
        {"gss_code": LEEDS, "name": "Leeds", "state": "ok", "latency_ms": 20, "datasets": [
            {"dataset_id": "housing", "name": "Housing", "category": "housing",
             "refreshed_at": "2026-10-01T06:00:00Z", "stale": True}]},
        {"gss_code": MANCHESTER, "name": "Manchester", "state": "timed_out", "detail": "no answer within 2000 ms"},
    ]


def _family_context() -> FamilyContextResponse:
    return FamilyContextResponse.model_validate({
        "request_id": "req-1", "purpose": "s47_enquiry", "case_reference": "CASE-1", "subject_person_id": "p1",
        "people": [
            {"person_id": "p1", "is_subject": True, "given_name": "Zoë", "family_name": "O'Neill",
             "date_of_birth": "2016-03-05", "records": [_record(STOCKPORT, "Stockport", "100001", "Zoë",
                                                                "O'Neill", "2016-03-05")],
             "dataset_states": [
                 {"gss_code": STOCKPORT, "local_person_id": "100001", "dataset_id": "csc", "state": "records_found"},
                 {"gss_code": STOCKPORT, "local_person_id": "100001", "dataset_id": "asc", "state": "not_in_cohort"},
                 {"gss_code": STOCKPORT, "local_person_id": "100001", "dataset_id": "early_help",
                  "state": "withheld"},
             ],
             "council_states": [{"gss_code": LEEDS, "state": "none_found"},
                                {"gss_code": MANCHESTER, "state": "timed_out"}]},
            {"person_id": "p2", "given_name": "Siobhán", "family_name": "O'Neill", "date_of_birth": "1990-07-21",
             "records": [_record(STOCKPORT, "Stockport", "100004", "Siobhán", "O'Neill", "1990-07-21"),
                         _record(LEEDS, "Leeds", "5000001", "Siobhan", "ONeill", "1990-07-21")],
             "dataset_states": [
                 {"gss_code": LEEDS, "local_person_id": "5000001", "dataset_id": "housing", "state": "stale"},
                 {"gss_code": STOCKPORT, "local_person_id": "100004", "dataset_id": "csc", "state": "none_found"},
             ],
             "council_states": [{"gss_code": MANCHESTER, "state": "unavailable"}]},
        ],
        "relationships": [{"person_id": "p1", "related_person_id": "p2", "type": "parent", "description": "Mother",
                           "provenance": [{"council_gss_code": STOCKPORT}]}],
        "involvements": [
            {"involvement_id": "i1", "person_id": "p1", "gss_code": STOCKPORT, "local_person_id": "100001",
             "dataset_id": "csc", "category": "childrens_social_care", "service": "Child protection plan",
             "status": "open", "start_date": "2026-09-01",
             "practitioner": {"name": "Alex Practitioner", "role": "Social Worker", "team": "Safeguarding East",
                              "phone": "0161 000 0001", "email": "alex@example.invalid"},
             "provenance": {"council_gss_code": STOCKPORT, "source_system": "Liquidlogic LCS",
                            "source_table": "ssd_cp_plans"}},
            {"involvement_id": "i2", "person_id": "p2", "gss_code": LEEDS, "local_person_id": "5000001",
             "dataset_id": "housing", "category": "housing", "service": "Tenancy", "status": "closed",
             "start_date": "2019-01-01", "end_date": "2025-01-01", "summary": "Arrears",
             "provenance": {"council_gss_code": LEEDS, "source_system": "Northgate Housing",
                            "source_table": "housing_tenancies"}},
        ],
        "sources": _sources(),
    })


def _text(render, response, width: int = 220) -> str:  # type: ignore[no-untyped-def]
    console = Console(record=True, width=width, color_system=None)
    render(response, console)
    return console.export_text()


def test_family_context_shows_people_relationships_involvements_and_provenance() -> None:
    text = _text(render_family_context, _family_context())
    for expected in ("Zoë O'Neill (subject)", "Siobhán O'Neill", "certain (merged), 2 council(s)",
                     "parent (Mother)", "Child protection plan", "Alex Practitioner", "Social Worker",
                     "Safeguarding East", "0161 000 0001", "alex@example.invalid",
                     "Stockport · Liquidlogic LCS (ssd_cp_plans)", "Leeds · Northgate Housing (housing_tenancies)", "no named practitioner", "2025-01-01"):
        assert expected in text, expected


def test_family_context_states_are_each_distinct_and_named() -> None:
    text = _text(render_family_context, _family_context())
    for state in ("records_found", "none_found", "not_in_cohort", "withheld", "stale", "unavailable",
                  "timed_out"):
        symbol, words, _ = STATE_STYLES[state]
        assert f"{symbol} {words}" in text, state
    assert "no answer within 2000 ms" in text
    assert "STALE" in text  # Leeds housing freshness


def test_the_six_domain_states_have_distinct_looks() -> None:
    six = ["records_found", "none_found", "not_in_cohort", "withheld", "unavailable", "stale"]
    looks = {(STATE_STYLES[s][0], STATE_STYLES[s][2]) for s in six}
    assert len(looks) == 6


def test_search_shows_candidates_with_per_council_records_and_grade() -> None:
    response = SearchResponse.model_validate({
        "request_id": "r", "purpose": "s17_assessment", "case_reference": "C1",
        "candidates": [{"candidate_id": "c1", "match_grade": "certain",
                        "records": [_record(STOCKPORT, "Stockport", "100004", "Siobhán", "O'Neill", "1990-07-21"),
                                    _record(LEEDS, "Leeds", "5000001", "Siobhan", "ONeill", "1990-07-21")]}],
        "sources": _sources(),
    })
    text = _text(render_search, response)
    assert "certain" in text and "Stockport: 100004" in text and "Leeds: 5000001" in text
    assert "⏱ timed out" in text


def test_search_shows_the_values_a_merged_candidates_records_disagree_on() -> None:
    refs = [[{"gss_code": STOCKPORT, "local_person_id": "100009"}], [{"gss_code": LEEDS, "local_person_id": "5000009"}]]
    response = SearchResponse.model_validate({
        "request_id": "r", "purpose": "s17_assessment", "case_reference": "C1",
        "candidates": [
            {"candidate_id": "c1", "match_grade": "certain",
             "records": [_record(STOCKPORT, "Stockport", "100009", "Robert", "Kowalski", "1979-12-15"),
                         _record(LEEDS, "Leeds", "5000009", "Robert", "Kowalski", "1979-12-09")],
             "conflicts": [{"field": "date_of_birth", "values": ["1979-12-15", "1979-12-09"], "sources": refs},
                           {"field": "address", "values": ["1 Road\x1b[2J, SK1 3XE", "LS7 2AB"], "sources": refs}],
             "possible_matches": [{"candidate_id": "c2", "match_grade": "possible", "evidence": {
                 "left": refs[0][0], "right": {"gss_code": MANCHESTER, "local_person_id": "M-1"},
                 "match_grade": "possible", "fields": []}}]},
            {"candidate_id": "c2", "records": [_record(MANCHESTER, "Manchester", "M-1", "Bob", "Kowalski", "1979-12-15")]},
        ],
        "sources": _sources(),
    })
    text = " ".join(_text(render_search, response).split())
    assert "recorded differently: date of birth 1979-12-15 / 1979-12-09" in text
    # Council text is shown escaped, never run: no terminal escape reaches the screen.
    assert "recorded differently: address 1 Road\\x1b[2J, SK1 3XE / LS7 2AB" in text and "\x1b" not in text
    assert "possible: c2 (possible)" in text
    assert text.count("recorded differently") == 2  # the single-record candidate has none


@pytest.mark.parametrize(("status", "hint"), [(401, "familyctx token"), (403, "role"), (422, "not valid"),
                                              (503, "audit")])
def test_gateway_errors_explain_what_to_do(status: int, hint: str) -> None:
    # A 503's hint depends on its detail: the audit store's here (a stopping gateway's: test_query_token_option).
    detail = "Audit store unavailable; no data returned" if status == 503 else "Refused"
    error = GatewayHttpError(status, detail, [{"field": "date_of_birth", "message": "must be a date"}], "r1")
    text = str(error)
    assert f"{status}" in text and hint in text and "date_of_birth: must be a date" in text and "r1" in text


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_gateway_and_provider_are_reported_plainly() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ServiceUnreachable, match="gateway .* not reachable"), GatewayClient(url, "t") as client:
        client.search({"purpose": "s47_enquiry"})
    with pytest.raises(ServiceUnreachable, match="OIDC provider .* not reachable"):
        fetch_token(url, "sw.stockport", "demo")


def test_gateway_error_body_is_parsed() -> None:
    """A stand-in gateway (httpx.MockTransport: the real one runs in tests/e2e) answering 422."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == "Bearer tok"
        assert request.headers["x-request-id"]
        return httpx.Response(422, json={"detail": "Invalid", "errors": [{"field": "purpose", "message": "m"}],
                                         "request_id": "abc"})

    with GatewayClient("http://gw", "tok", transport=httpx.MockTransport(handler)) as client:
        with pytest.raises(GatewayHttpError) as caught:
            client.family_context({})
    assert caught.value.status == 422 and caught.value.request_id == "abc"
    assert caught.value.errors == [{"field": "purpose", "message": "m"}]


def test_family_context_without_people_says_why() -> None:
    answer = _family_context().model_dump(mode="json")
    answer.update(people=[], relationships=[], involvements=[], subject_person_id=None)
    answer["sources"][0].update(state="unavailable", detail="connection refused")
    text = _text(render_family_context, FamilyContextResponse.model_validate(answer))
    assert "No family context: the subject's council did not answer" in text
    assert "Stockport: source unavailable" in text and "Nothing here means 'no records'" in text


MANCHESTER_MISSING = ("INCOMPLETE: Manchester (E08000003) did not answer (timed out): people, links and "
                      "services held there are missing from this answer.")


def test_partial_answer_is_announced_before_the_tables() -> None:
    text = _text(render_family_context, _family_context())
    assert MANCHESTER_MISSING in text
    assert "PARTIAL ANSWER" in text
    assert text.index(MANCHESTER_MISSING) < text.index("People")  # before the first table
    stale = ("STALE: Leeds (E08000035) Housing data was last refreshed 2026-10-01 06:00 UTC: "
             "it may be out of date.")
    assert stale in text and text.index(stale) < text.index("People")
    # The person whose other council did not answer says so in their own row too.
    assert "Manchester did not answer: any records there are missing" in text


def test_one_incomplete_line_per_missing_council_with_its_reason() -> None:
    answer = _family_context().model_dump(mode="json")
    answer["sources"][1].update(state="unavailable", datasets=[])
    answer["sources"][2].update(state="error")
    answer["people"][1]["dataset_states"][0]["state"] = "records_found"  # not marked stale either
    text = _text(render_family_context, FamilyContextResponse.model_validate(answer))
    assert text.count("INCOMPLETE:") == 2
    assert "INCOMPLETE: Leeds (E08000035) did not answer (source unavailable)" in text
    assert "INCOMPLETE: Manchester (E08000003) did not answer (source error)" in text
    assert "STALE:" not in text


def test_complete_fresh_answer_has_no_banner() -> None:
    answer = _family_context().model_dump(mode="json")
    answer["sources"][1]["datasets"][0]["stale"] = False
    answer["people"][1]["dataset_states"][0]["state"] = "records_found"
    answer["sources"][2].update(state="ok", detail=None)
    answer["people"][0]["council_states"][1]["state"] = "none_found"
    answer["people"][1]["council_states"][0]["state"] = "none_found"
    text = _text(render_family_context, FamilyContextResponse.model_validate(answer))
    assert "INCOMPLETE" not in text and "STALE:" not in text and "PARTIAL ANSWER" not in text


def test_search_announces_a_council_that_did_not_answer_first() -> None:
    response = SearchResponse.model_validate({
        "request_id": "r", "purpose": "s17_assessment", "case_reference": "C1", "candidates": [],
        "sources": _sources(),
    })
    text = _text(render_search, response)
    line = ("INCOMPLETE: Manchester (E08000003) did not answer (timed out): people recorded there are "
            "missing from these results.")
    assert line in text and text.index(line) < text.index("Search results")


LONG_EMAIL = "alexandra.practitioner-smith@manchester.example.gov.uk"


@pytest.mark.parametrize("width", [80, 100, 220])
def test_contact_details_and_sources_are_never_cut(width: int) -> None:
    answer = _family_context().model_dump(mode="json")
    answer["involvements"][0]["practitioner"].update(
        email=LONG_EMAIL, phone="0161 496 0123 ext 12", role="Senior Practitioner (Child Protection)")
    text = _text(render_family_context, FamilyContextResponse.model_validate(answer), width=width)
    assert "…" not in text
    for whole in (LONG_EMAIL, "0161 496 0123 ext 12", "Senior Practitioner (Child Protection)",
                  "Stockport · Liquidlogic LCS (ssd_cp_plans)", "Alex Practitioner"):
        assert whole in text, (width, whole)
