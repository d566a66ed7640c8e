"""Linkage grades (certain / probable / possible / never) on hand-made pairs of council records."""

from __future__ import annotations

import datetime as dt

import pytest
from familyctx_gateway.api.schemas import FieldOutcome, MatchGrade
from familyctx_gateway.linkage import LinkRecord, compare, dates_swapped, link_records, normalise_name

ZOE_NHS, MUM_NHS, OTHER_NHS = "9990000018", "9990000034", "9990000042"


def rec(
    gss: str,
    local_id: str,
    given: str,
    family: str,
    dob: dt.date | None,
    *,
    nhs: str | None = None,
    postcode: str | None = None,
) -> LinkRecord:
    return LinkRecord.of(
        gss,
        local_id,
        nhs_number=nhs,
        given_name=given,
        family_name=family,
        date_of_birth=dob,
        postcode=postcode,
    )


def grade(a: LinkRecord, b: LinkRecord) -> MatchGrade | None:
    return compare(a, b)[0]


def outcomes(a: LinkRecord, b: LinkRecord) -> dict[str, FieldOutcome]:
    return {f.field: f.outcome for f in compare(a, b)[1]}


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("Zoë", "zoe"),
        ("O'Neill", "oneill"),
        ("O’Neill", "oneill"),
        ("Smith-Jones", "smithjones"),
        ("  Mc Donald ", "mcdonald"),
        ("ŁUKASZ", "łukasz"),
        ("Siobhán", "siobhan"),
        ("", ""),
        (None, ""),
    ],
)
def test_normalise_name(raw: str | None, normalised: str) -> None:
    assert normalise_name(raw) == normalised


def test_same_valid_nhs_number_is_certain_despite_spelling_and_address() -> None:
    a = rec("A", "1", "Claire", "O'Neill", dt.date(1988, 11, 2), nhs="999 000 0034", postcode="SK1 3XE")
    b = rec("B", "9", "Clare", "ONeill", dt.date(1988, 11, 2), nhs=MUM_NHS, postcode="LS7 2AB")
    assert grade(a, b) is MatchGrade.certain
    assert outcomes(a, b)["nhs_number"] is FieldOutcome.agree
    assert outcomes(a, b)["postcode"] is FieldOutcome.disagree


def test_same_nhs_number_with_contradicting_date_of_birth_is_only_probable() -> None:
    a = rec("A", "1", "Claire", "O'Neill", dt.date(1988, 11, 2), nhs=MUM_NHS)
    b = rec("B", "9", "Claire", "O'Neill", dt.date(1979, 1, 30), nhs=MUM_NHS)
    assert grade(a, b) is MatchGrade.probable


def test_different_valid_nhs_numbers_never_link_even_with_identical_demographics() -> None:
    a = rec("A", "1", "Zoë", "O'Neill", dt.date(2014, 3, 5), nhs=ZOE_NHS, postcode="SK1 3XE")
    b = rec("B", "2", "Zoë", "O'Neill", dt.date(2014, 3, 5), nhs=OTHER_NHS, postcode="SK1 3XE")
    assert grade(a, b) is None


@pytest.mark.parametrize("bad", ["9999999999", "0000000000", "9990000019", "12345", "NULL"])
def test_invalid_or_placeholder_nhs_number_is_never_linked_on(bad: str) -> None:
    a = rec("A", "1", "Ann", "Smith", dt.date(1990, 1, 1), nhs=bad)
    b = rec("B", "2", "Bob", "Jones", dt.date(1970, 6, 6), nhs=bad)
    assert a.nhs_number is None and b.nhs_number is None
    assert grade(a, b) is None
    assert outcomes(a, b)["nhs_number"] is FieldOutcome.missing


def test_twins_at_the_same_address_do_not_link() -> None:
    a = rec("A", "1", "Oliver", "Brown", dt.date(2015, 1, 1), postcode="M11 1AA")
    b = rec("B", "2", "Olivia", "Brown", dt.date(2015, 1, 1), postcode="M11 1AA")
    assert grade(a, b) is None
    assert outcomes(a, b)["given_name"] is FieldOutcome.disagree
    assert link_records([a, b]).groups == [[0], [1]]


def test_diacritics_and_apostrophes_do_not_stop_a_probable_match() -> None:
    a = rec("A", "1", "Zoë", "O'Neill", dt.date(2014, 3, 5))
    b = rec("B", "2", "Zoe", "ONeill", dt.date(2014, 3, 5))
    assert grade(a, b) is MatchGrade.probable
    assert outcomes(a, b)["family_name"] is FieldOutcome.agree


def test_day_month_swap_with_names_and_postcode_is_probable() -> None:
    a = rec("A", "1", "Zoë", "O'Neill", dt.date(2014, 3, 5), postcode="SK1 3XE")
    b = rec("B", "2", "Zoe", "O'Neill", dt.date(2014, 5, 3), postcode="sk13xe")
    assert dates_swapped(dt.date(2014, 3, 5), dt.date(2014, 5, 3))
    assert outcomes(a, b)["date_of_birth"] is FieldOutcome.swapped
    assert grade(a, b) is MatchGrade.probable


def test_day_month_swap_without_postcode_is_only_possible() -> None:
    a = rec("A", "1", "Zoë", "O'Neill", dt.date(2014, 3, 5), postcode="SK1 3XE")
    b = rec("B", "2", "Zoe", "O'Neill", dt.date(2014, 5, 3), postcode="LS7 2AB")
    assert grade(a, b) is MatchGrade.possible


def test_typo_in_name_with_same_date_of_birth_is_possible() -> None:
    a = rec("A", "1", "Katherine", "Smith", dt.date(2010, 2, 2))
    b = rec("B", "2", "Katharine", "Smith", dt.date(2010, 2, 2))
    assert grade(a, b) is MatchGrade.possible


def test_names_agree_but_different_date_of_birth_does_not_link() -> None:
    a = rec("A", "1", "Jack", "Smith", dt.date(2010, 2, 2))
    b = rec("B", "2", "Jack", "Smith", dt.date(2012, 8, 9))
    assert grade(a, b) is None


def test_records_of_the_same_council_are_never_linked() -> None:
    a = rec("A", "1", "Zoë", "O'Neill", dt.date(2014, 3, 5), nhs=ZOE_NHS)
    b = rec("A", "2", "Zoë", "O'Neill", dt.date(2014, 3, 5), nhs=ZOE_NHS)
    assert link_records([a, b]).links == []


def test_certain_links_group_transitively_and_probable_ones_stay_apart() -> None:
    records = [
        rec("A", "1", "Zoë", "O'Neill", dt.date(2014, 3, 5), nhs=ZOE_NHS),
        rec("B", "7", "Zoe", "O'Neil", dt.date(2014, 3, 5), nhs=ZOE_NHS),
        rec("C", "3", "Zoe", "ONeill", dt.date(2014, 3, 5), nhs=ZOE_NHS),
        rec("C", "4", "Zoe", "O'Neill", dt.date(2014, 3, 5)),  # no NHS number: probable with A/B
    ]
    linkage = link_records(records)
    assert linkage.groups == [[0, 1, 2], [3]]
    grades = {(link.left, link.right): link.grade for link in linkage.links}
    assert grades[(0, 1)] is MatchGrade.certain
    assert grades[(0, 3)] is MatchGrade.probable
    assert (2, 3) not in grades  # same council
