"""Every council and dataset state of the API schema is shown with its own symbol and words, and every
state in which a council did not answer (circuit open included) is announced as a partial answer: in the
banner before the tables, in the legend and in each person's notes. The states are taken from the
schema's enums, so a state added there is covered here without editing this file."""

from __future__ import annotations

from typing import Any

import pytest
from familyctx_gateway.api.schemas import (
    CouncilSearchState,
    DatasetState,
    FamilyContextResponse,
    SearchResponse,
    SourceState,
)
from rich.console import Console

from familyctx.render import (
    ANSWERED_STATES,
    NOT_ANSWERED_STATES,
    STATE_STYLES,
    render_family_context,
    render_search,
)

STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"
EVERY_STATE = sorted(
    {s.value for s in SourceState} | {s.value for s in CouncilSearchState} | {s.value for s in DatasetState}
)
#: The states in which a council says something about one person (cells of the per-person table).
PERSON_STATES = sorted({s.value for s in CouncilSearchState} | {s.value for s in DatasetState})
COUNCIL_STATES = sorted({s.value for s in SourceState} | {s.value for s in CouncilSearchState})


def _record(gss: str, council: str, local_id: str) -> dict[str, Any]:
    return {
        "gss_code": gss,
        "council_name": council,
        "local_person_id": local_id,
        "given_name": "Zoë",
        "family_name": "O'Neill",
        "date_of_birth": "2016-03-05",
    }


def _answer(manchester: str, *, person_state: str | None = None) -> dict[str, Any]:
    """Stockport and Leeds answered; Manchester's source state is ``manchester`` and, for the subject,
    ``person_state`` (a CouncilSearchState; default: the same as the source's when it is one)."""
    if person_state is None:
        person_state = manchester if manchester in {s.value for s in CouncilSearchState} else "timed_out"
    return {
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
                "records": [_record(STOCKPORT, "Stockport", "100001")],
                "dataset_states": [
                    {
                        "gss_code": STOCKPORT,
                        "local_person_id": "100001",
                        "dataset_id": "csc",
                        "state": "records_found",
                    }
                ],
                "council_states": [
                    {"gss_code": LEEDS, "state": "none_found"},
                    {"gss_code": MANCHESTER, "state": person_state},
                ],
            },
        ],
        "relationships": [],
        "involvements": [],
        "sources": [
            {"gss_code": STOCKPORT, "name": "Stockport", "state": "ok"},
            {"gss_code": LEEDS, "name": "Leeds", "state": "ok"},
            {
                "gss_code": MANCHESTER,
                "name": "Manchester",
                "state": manchester,
                "detail": None
                if manchester == "ok"
                else "not asked: circuit open after 5 requests in a row whose calls to it failed",
            },
        ],
    }


def _text(render: Any, response: Any, width: int = 400) -> str:
    console = Console(record=True, width=width, color_system=None)
    render(response, console)
    return " ".join(console.export_text().split())  # wide enough that no cell wraps


def _look(state: str) -> str:
    symbol, words, _ = STATE_STYLES[state]
    return f"{symbol} {words}"


def test_every_schema_state_has_its_own_symbol_and_words() -> None:
    missing = [state for state in EVERY_STATE if state not in STATE_STYLES]
    assert missing == [], f"states of the API schema without a look in render.STATE_STYLES: {missing}"
    looks = [(STATE_STYLES[s][0], STATE_STYLES[s][1]) for s in PERSON_STATES]
    assert len(set(looks)) == len(looks)  # no two per-person states look the same
    assert (
        len({STATE_STYLES[s][0] for s in ("circuit_open", "unavailable", "timed_out", "refused", "error")})
        >= 4
    )
    assert _look("circuit_open") == "⊗ circuit open: not asked, failing recently"


def test_every_council_state_is_either_answered_or_not() -> None:
    for state in COUNCIL_STATES:
        assert (state in ANSWERED_STATES) != (state in NOT_ANSWERED_STATES), state
    # Derived from the enums: only the states in which a council answered are left out.
    assert set(COUNCIL_STATES) - NOT_ANSWERED_STATES == {
        "ok",
        "records_found",
        "possible_match_only",
        "none_found",
        "not_searched",
    }
    assert {"unavailable", "timed_out", "refused", "error", "circuit_open", "unknown"} <= NOT_ANSWERED_STATES


@pytest.mark.parametrize("state", sorted(NOT_ANSWERED_STATES & {s.value for s in SourceState}))
def test_a_council_that_did_not_answer_is_announced_whatever_its_state(state: str) -> None:
    text = _text(render_family_context, FamilyContextResponse.model_validate(_answer(state)))
    assert "PARTIAL ANSWER: not every council answered" in text, state
    line = "INCOMPLETE: Manchester (E08000003) did not answer"
    assert line in text and text.index(line) < text.index("People"), state
    assert f"? {state}" not in text, state  # never the fallback for a state render.py does not know
    search = SearchResponse.model_validate(
        {
            "request_id": "r",
            "purpose": "s17_assessment",
            "case_reference": "C1",
            "candidates": [],
            "sources": _answer(state)["sources"],
        }
    )
    text = _text(render_search, search)
    assert "PARTIAL ANSWER" in text and "INCOMPLETE: Manchester (E08000003) did not answer" in text, state
    assert "people recorded there are missing from these results" in text


@pytest.mark.parametrize("state", sorted(NOT_ANSWERED_STATES & {s.value for s in CouncilSearchState}))
def test_a_person_says_which_council_did_not_answer_for_them_whatever_its_state(state: str) -> None:
    text = _text(render_family_context, FamilyContextResponse.model_validate(_answer(state)))
    words = STATE_STYLES[state][1]
    assert f"Manchester did not answer: any records there are missing ({words})" in text, state
    legend = text[text.index("Legend:") :]
    assert _look(state) in legend, state  # the symbol in the table is explained


def test_circuit_open_reads_as_a_missing_council_everywhere() -> None:
    text = _text(render_family_context, FamilyContextResponse.model_validate(_answer("circuit_open")))
    assert (
        "INCOMPLETE: Manchester (E08000003) did not answer (circuit open: not asked, failing recently): "
        "people, links and services held there are missing from this answer."
    ) in text
    assert (
        "Manchester did not answer: any records there are missing (circuit open: not asked, failing recently)"
        in text
    )
    states = text[text.index("What each source said") : text.index("Legend:")]
    assert "⊗ circuit open: not asked, failing recently" in states
    # the gateway's detail, in Sources
    assert "not asked: circuit open after 5 requests in a row whose calls to it failed" in text


@pytest.mark.parametrize("state", PERSON_STATES)
def test_every_state_shown_for_a_person_is_in_the_legend(state: str) -> None:
    answer = _answer("ok", person_state="none_found")
    if state in {s.value for s in DatasetState}:
        answer["people"][0]["dataset_states"].append(
            {"gss_code": LEEDS, "local_person_id": "L-1", "dataset_id": "housing", "state": state}
        )
    else:
        answer["people"][0]["council_states"][0]["state"] = state
    text = _text(render_family_context, FamilyContextResponse.model_validate(answer))
    states = text[text.index("What each source said") : text.index("Legend:")]
    legend = text[text.index("Legend:") : text.index("Sources")]
    assert _look(state) in states and _look(state) in legend, state


def test_a_complete_answer_has_no_banner_and_the_usual_legend() -> None:
    text = _text(
        render_family_context, FamilyContextResponse.model_validate(_answer("ok", person_state="none_found"))
    )
    assert "PARTIAL ANSWER" not in text and "INCOMPLETE" not in text and "did not answer" not in text
    assert "circuit open" not in text


def test_a_dataset_marked_stale_for_a_person_is_announced_even_when_its_freshness_is_not_known() -> None:
    answer = _answer("ok", person_state="none_found")
    answer["people"][0]["dataset_states"].append(
        {"gss_code": LEEDS, "local_person_id": "L-1", "dataset_id": "housing", "state": "stale"}
    )
    text = _text(render_family_context, FamilyContextResponse.model_validate(answer))
    line = "STALE: Leeds (E08000035) housing data is marked stale by the council: it may be out of date."
    assert "Warning: stale data" in text and line in text and text.index(line) < text.index("People")
    assert "PARTIAL ANSWER" not in text
