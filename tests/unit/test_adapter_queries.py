"""Validation of FindPeople/GetFamilyContext input and normalisation helpers."""

from __future__ import annotations

import datetime as dt

import pytest
from familycontext.v1 import adapter_pb2, types_pb2
from familyctx_adapter.errors import InvalidQuery
from familyctx_adapter.normalise import address_lines, display_name, is_open, match_key
from familyctx_adapter.queries import check_family_ids, person_search_from_request, result_limit

TODAY = dt.date(2026, 11, 29)


def search(**query: object):  # noqa: ANN201
    return person_search_from_request(
        adapter_pb2.FindPeopleRequest(query=adapter_pb2.PersonQuery(**query)), today=TODAY
    )


def test_valid_query_is_normalised() -> None:
    q = search(
        nhs_number="943 476 5919",
        given_name="  Zoë ",
        family_name="O'Neill",
        postcode="sk13xe",
        date_of_birth=types_pb2.Date(year=2014, month=3, day=5),
    )
    assert (q.nhs_number, q.given_name, q.postcode, q.date_of_birth) == (
        "9434765919",
        "Zoë",
        "SK1 3XE",
        dt.date(2014, 3, 5),
    )


def test_invalid_nhs_number_is_ignored_when_other_identifiers_exist() -> None:
    q = search(nhs_number="9999999999", family_name="Smith")
    assert q.nhs_number is None and q.family_name == "Smith"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({}, "give at least one of"),
        ({"given_name": "Zoe"}, "give at least one of"),
        ({"postcode": "SK1 3XE"}, "give at least one of"),
        ({"nhs_number": "1234567890"}, "fails the NHS number check"),
        ({"family_name": "x" * 201}, "family_name is longer than 200"),
        ({"given_name": "x" * 201, "family_name": "Smith"}, "given_name is longer than 200"),
        ({"local_person_id": "x" * 49}, "local_person_id is longer than 48"),
        ({"family_name": "Smith", "postcode": "not a postcode"}, "not a UK postcode"),
        ({"date_of_birth": types_pb2.Date(year=2014, month=2, day=30)}, "not a real calendar date"),
        ({"date_of_birth": types_pb2.Date(year=2030, month=1, day=1)}, "between 1880-01-01 and today"),
    ],
)
def test_bad_queries_are_invalid_argument_without_echoing_values(query: dict, message: str) -> None:
    with pytest.raises(InvalidQuery, match=message) as info:
        search(**query)
    assert "xxxx" not in str(info.value) and "1234567890" not in str(info.value)


def test_result_limit() -> None:
    assert result_limit(0, default=25, cap=100) == 25
    assert result_limit(500, default=25, cap=100) == 100
    assert result_limit(3, default=25, cap=100) == 3
    with pytest.raises(InvalidQuery):
        result_limit(-1, default=25, cap=100)


def test_family_ids() -> None:
    assert check_family_ids([" P1 ", "P2", "P1"]) == ["P1", "P2"]
    with pytest.raises(InvalidQuery, match="empty"):
        check_family_ids([])
    with pytest.raises(InvalidQuery, match="at most 50"):
        check_family_ids([f"P{i}" for i in range(51)])
    with pytest.raises(InvalidQuery, match="longer than 48"):
        check_family_ids(["x" * 49])
    with pytest.raises(InvalidQuery, match="is empty"):
        check_family_ids(["  "])


def test_names_for_display_and_matching() -> None:
    assert display_name("  O'NEILL  ") == "O'Neill"
    assert display_name("Zoë") == "Zoë"
    assert display_name("McDonald") == "McDonald"
    assert display_name("NULL") == ""
    assert display_name("SMITH-JONES") == "Smith-Jones"
    assert match_key("Zoë O'Neill") == match_key("ZOE ONEILL") == "zoeoneill"
    assert match_key("Anne-Marie") == "annemarie"


def test_address_lines_and_open_ends() -> None:
    lines, uprn = address_lines(
        '{"FLAT":"3","BUILDING":"ROSE COURT","HOUSE":"","STREET":"Hill Rd","TOWN":"Leeds","UPRN":"77"}'
    )
    assert (lines, uprn) == (["3, Rose Court", "Hill Rd", "Leeds"], "77")
    assert address_lines("{broken") == ([], "")
    assert address_lines("[1, 2]") == ([], "")
    today = dt.date(2026, 1, 1)
    assert is_open(None, today=today) and is_open("NULL", today=today) and is_open("01/01/1900", today=today)
    assert is_open(dt.datetime(1900, 1, 1), today=today) and is_open("2027-01-01", today=today)
    assert not is_open("31/12/2025", today=today)
