"""Possible matches in the CLI's text output: grade, match weight and each field's outcome and level."""

# ruff: noqa: E501 - response fixtures read better one record per line

from __future__ import annotations

from typing import Any

from familyctx_gateway.api.schemas import FamilyContextResponse, SearchResponse
from rich.console import Console

from familyctx.render import render_family_context, render_search

STOCKPORT, LEEDS = "E08000007", "E08000035"

EVIDENCE: dict[str, Any] = {
    "left": {"gss_code": STOCKPORT, "local_person_id": "S-1002"},
    "right": {"gss_code": LEEDS, "local_person_id": "L-78"},
    "match_grade": "probable", "match_weight": 9.254, "match_probability": 0.998, "rules": ["no NHS number to confirm"],
    "fields": [
        {"field": "nhs_number", "outcome": "missing", "level": "missing", "weight": 0.0},
        {"field": "given_name", "outcome": "similar", "level": "Jaro-Winkler >= 0.92", "weight": 4.1, "score": 95.3},
        {"field": "family_name", "outcome": "agree", "level": "exact", "weight": 8.2},
        {"field": "date_of_birth", "outcome": "agree", "level": "exact", "weight": 9.0},
        {"field": "sex", "outcome": "missing", "level": "missing", "weight": 0.0},
        {"field": "postcode", "outcome": "partial", "level": "district", "weight": 1.5},
    ],
}


def _record(gss: str, council: str, local_id: str, given: str) -> dict[str, object]:
    return {"gss_code": gss, "council_name": council, "local_person_id": local_id, "given_name": given,
            "family_name": "O'Neill", "date_of_birth": "2016-07-21",
            "provenance": {"council_gss_code": gss, "source_system": "systemc", "source_table": "ssd_person"}}


def _sources() -> list[dict[str, object]]:
    return [{"gss_code": STOCKPORT, "name": "Stockport", "state": "ok"}, {"gss_code": LEEDS, "name": "Leeds", "state": "ok"}]


def _text(render, response) -> str:  # type: ignore[no-untyped-def]
    console = Console(record=True, width=200, color_system=None)
    render(response, console)
    return console.export_text()


def _lines_of(text: str, start: str) -> list[str]:
    """The table lines from the one containing ``start`` on, cell borders stripped."""
    lines = text.splitlines()
    first = next(i for i, line in enumerate(lines) if start in line)
    return [" ".join(line.replace("│", " ").split()) for line in lines[first:first + 8]]


def test_search_lists_each_possible_match_once_with_grade_weight_and_field_levels() -> None:
    response = SearchResponse.model_validate({
        "request_id": "r", "purpose": "s17_assessment", "case_reference": "C1", "sources": _sources(),
        "candidates": [
            {"candidate_id": "c1", "records": [_record(STOCKPORT, "Stockport", "S-1002", "Jayden")],
             "possible_matches": [{"candidate_id": "c2", "match_grade": "probable", "evidence": EVIDENCE}]},
            {"candidate_id": "c2", "records": [_record(LEEDS, "Leeds", "L-78", "Jaydon")],
             "possible_matches": [{"candidate_id": "c1", "match_grade": "probable", "evidence": EVIDENCE}]},
        ],
    })
    text = _text(render_search, response)
    assert text.count("Possible matches (not merged") == 1
    assert text.count("match weight +9.3") == 1  # the pair is listed under both candidates, shown once
    block = _lines_of(text, "match weight")
    assert block[0] == "c1 c2 probable · match weight +9.3 (probability 0.9980)"
    assert block[1:6] == [
        "agreed: family name (exact), date of birth (exact)",
        "similar: given name (Jaro-Winkler >= 0.92, similarity 95.3)",
        "partly agreed: postcode (district)",
        "missing: NHS number, sex",
        "capped: no NHS number to confirm",
    ]
    assert "disagreed" not in text


def test_family_context_shows_a_persons_possible_match_in_another_council_with_its_evidence() -> None:
    disagreeing = {**EVIDENCE, "match_grade": "possible", "match_weight": -0.5, "match_probability": 0.41, "rules": [],
                   "fields": [*EVIDENCE["fields"][:5], {"field": "postcode", "outcome": "disagree", "level": "else", "weight": -3.2}]}
    response = FamilyContextResponse.model_validate({
        "request_id": "r", "purpose": "s47_enquiry", "case_reference": "C1", "subject_person_id": "p1",
        "people": [{"person_id": "p1", "is_subject": True, "given_name": "Jayden", "family_name": "O'Neill",
                    "records": [_record(STOCKPORT, "Stockport", "S-1002", "Jayden")],
                    "possible_matches": [{"record": _record(LEEDS, "Leeds", "L-78", "Jaydon"),
                                          "match_grade": "possible", "evidence": disagreeing}]}],
        "relationships": [], "involvements": [], "sources": _sources(),
    })
    text = _text(render_family_context, response)
    assert "possible match (possible) in Leeds: not merged" in text
    block = _lines_of(text, "match weight")
    assert block[0] == "p1 Jayden O'Neill Leeds: L-78 possible · match weight -0.5 (probability 0.4100)"
    assert "disagreed: postcode (else)" in block
    assert "capped:" not in text


def test_no_possible_matches_no_table() -> None:
    response = SearchResponse.model_validate({
        "request_id": "r", "purpose": "s17_assessment", "case_reference": "C1", "sources": _sources(),
        "candidates": [{"candidate_id": "c1", "records": [_record(STOCKPORT, "Stockport", "S-1002", "Jayden")]}],
    })
    assert "Possible matches" not in _text(render_search, response)
