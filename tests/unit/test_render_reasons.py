"""The command line prints each council's reason for a dataset state, so what a sharing policy withheld
is visible as withheld (a dataset, or a field such as practitioner phone numbers), never silently
missing; reasons are printed whole at 80 columns, each once, escaped like any text from elsewhere."""

from __future__ import annotations

import re
from typing import Any

import pytest
from familyctx_gateway.api.schemas import FamilyContextResponse
from rich.console import Console

from familyctx.render import render_family_context

STOCKPORT, MANCHESTER = "E08000007", "E08000003"
PHONES = "practitioner phone numbers withheld by Stockport policy"
MANCHESTER_WITHHELD = "withheld by Manchester policy"
NOT_IN_COHORT = "Adult social care covers people aged 18 or over; not searched"


def _record(gss: str, council: str, local_id: str) -> dict[str, Any]:
    return {
        "gss_code": gss,
        "council_name": council,
        "local_person_id": local_id,
        "given_name": "Zoë",
        "family_name": "O'Neill",
        "date_of_birth": "2016-03-05",
    }


def _state(gss: str, local_id: str, dataset: str, state: str, reason: str = "") -> dict[str, Any]:
    return {
        "gss_code": gss,
        "local_person_id": local_id,
        "dataset_id": dataset,
        "state": state,
        "reason": reason,
    }


def _answer(**changes: Any) -> FamilyContextResponse:
    """Stockport shares children's social care without practitioner phone numbers; Manchester withholds
    adult social care for both people; the child is not in Stockport's adult social care cohort."""
    answer: dict[str, Any] = {
        "request_id": "req-1",
        "purpose": "s47_enquiry",
        "case_reference": "CASE-1",
        "subject_person_id": "p1",
        "people": [
            {
                "person_id": "p1",
                "is_subject": True,
                "given_name": "Zoë",
                "family_name": "O'Neill",
                "records": [
                    _record(STOCKPORT, "Stockport", "100001"),
                    _record(MANCHESTER, "Manchester", "M1"),
                ],
                "dataset_states": [
                    _state(STOCKPORT, "100001", "csc", "records_found", PHONES),
                    _state(STOCKPORT, "100001", "asc", "not_in_cohort", NOT_IN_COHORT),
                    _state(MANCHESTER, "M1", "asc", "withheld", MANCHESTER_WITHHELD),
                ],
            },
            {
                "person_id": "p2",
                "given_name": "Siobhán",
                "family_name": "O'Neill",
                "records": [_record(MANCHESTER, "Manchester", "M2")],
                "dataset_states": [_state(MANCHESTER, "M2", "asc", "withheld", MANCHESTER_WITHHELD)],
            },
        ],
        "relationships": [],
        "involvements": [
            {
                "involvement_id": "i1",
                "person_id": "p1",
                "gss_code": STOCKPORT,
                "local_person_id": "100001",
                "dataset_id": "csc",
                "category": "childrens_social_care",
                "service": "Child protection plan",
                "status": "open",
                "practitioner": {"name": "Alex Practitioner", "email": "alex@example.invalid"},
            }
        ],
        "sources": [
            {"gss_code": STOCKPORT, "name": "Stockport", "state": "ok"},
            {"gss_code": MANCHESTER, "name": "Manchester", "state": "ok"},
        ],
    }
    answer.update(changes)
    return FamilyContextResponse.model_validate(answer)


def _text(response: FamilyContextResponse, width: int) -> str:
    console = Console(record=True, width=width, color_system=None)
    render_family_context(response, console)
    return console.export_text()


@pytest.mark.parametrize("width", [80, 100, 160])
def test_each_reason_is_printed_whole_once_and_marked_where_it_applies(width: int) -> None:
    text = _text(_answer(), width)
    assert "…" not in text
    notes = dict(re.findall(r"^\[(\d+)\] (.+?)\s*$", text, flags=re.MULTILINE))
    assert sorted(notes.values()) == sorted((PHONES, NOT_IN_COHORT, MANCHESTER_WITHHELD)), width
    number = {reason: f"[{n}]" for n, reason in notes.items()}
    states = text[text.index("What each source said") : text.index("\n[1] ")]
    # Manchester's reason holds for two people: said once, marked in both people's cells.
    assert text.count(MANCHESTER_WITHHELD) == 1 and states.count(number[MANCHESTER_WITHHELD]) == 2
    assert states.count(number[PHONES]) == 1 and states.count(number[NOT_IN_COHORT]) == 1
    assert "([n]: the council's reason, below)" in text


@pytest.mark.parametrize("width", [80, 160])
def test_a_withheld_field_is_said_beside_the_involvement(width: int) -> None:
    text = _text(_answer(), width)
    involvements = text[text.index("Involvements") : text.index("What each source said")]
    assert "phone numbers withheld by" in involvements and "Stockport policy" in involvements
    assert "alex@example.invalid" in involvements


def test_reasons_are_escaped_and_not_read_as_markup() -> None:
    answer = _answer()
    hostile = "withheld by [bold]Evil[/bold] policy\x1b[2J\u202e"
    answer.people[1].dataset_states[0].reason = hostile
    text = _text(answer, 120)
    assert "withheld by [bold]Evil[/bold] policy\\x1b[2J\\u202e" in text
    assert "\x1b" not in text and "\u202e" not in text


def test_an_answer_without_reasons_has_no_reason_list() -> None:
    answer = _answer()
    for person in answer.people:
        for state in person.dataset_states:
            state.reason = ""
    text = _text(answer, 120)
    assert "[1]" not in text and "withheld by" not in text.replace("withheld by policy", "")
