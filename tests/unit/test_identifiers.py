"""Normalisation shared by adapters and the gateway: NHS numbers, postcodes, dates, names."""

from __future__ import annotations

import datetime as dt

import pytest

from familyctx.identifiers import (
    is_placeholder_nhs_number,
    name_match_key,
    normalise_nhs_number,
    normalise_postcode,
    parse_date,
    postcode_district,
    postcode_sector,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9434765919", "9434765919"),
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        (" 9434765919 ", "9434765919"),
        ("9434765918", None),  # check digit wrong
        ("9999999999", None),  # placeholder: passes modulus 11, one digit repeated
        ("0000000000", None),
        ("943476591", None),  # nine digits
        ("94347659190", None),
        ("94347A5919", None),
        ("NULL", None),
        ("", None),
        (None, None),
        (9434765919, "9434765919"),
    ],
)
def test_nhs_number(raw: object, expected: str | None) -> None:
    assert normalise_nhs_number(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("SK1 3XE", "SK1 3XE"),
        ("sk13xe", "SK1 3XE"),
        ("  LS6   5FJ ", "LS6 5FJ"),
        ("M13 5YN", "M13 5YN"),
        ("EC1A 1BB", "EC1A 1BB"),
        ("W1A0AX", "W1A 0AX"),
        ("SK1", None),
        ("NULL", None),
        ("12345", None),
        (None, None),
    ],
)
def test_postcode(raw: object, expected: str | None) -> None:
    assert normalise_postcode(raw) == expected


def test_postcode_sector_and_district() -> None:
    assert postcode_sector("sk13xe") == "SK1 3"
    assert postcode_district("sk13xe") == "SK1"
    assert postcode_sector("nonsense") is None
    assert postcode_district(None) is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2014-03-05", dt.date(2014, 3, 5)),
        ("05/03/2014", dt.date(2014, 3, 5)),
        ("5/3/14", dt.date(2014, 3, 5)),
        ("20140305", dt.date(2014, 3, 5)),
        ("05-03-2014", dt.date(2014, 3, 5)),
        ("05.03.2014", dt.date(2014, 3, 5)),
        ("2014-03-05T00:00:00", dt.date(2014, 3, 5)),
        ("2014-03-05 00:00:00.000", dt.date(2014, 3, 5)),
        (dt.datetime(2014, 3, 5, 12, 30), dt.date(2014, 3, 5)),
        (dt.date(2014, 3, 5), dt.date(2014, 3, 5)),
        ("1900-01-01", None),  # the SSD's open-end sentinel
        ("01/01/1900", None),
        ("31/02/2014", None),  # impossible
        ("2014-13-01", None),
        ("NULL", None),
        ("", None),
        (None, None),
        ("yesterday", None),
    ],
)
def test_parse_date(raw: object, expected: dt.date | None) -> None:
    assert parse_date(raw) == expected


def test_parse_date_can_keep_the_sentinel() -> None:
    assert parse_date("1900-01-01", sentinel_is_null=False) == dt.date(1900, 1, 1)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Zoë O'Neill", "ZOE ONEILL"),
        ("O'Neill", "O Neill"),
        ("O’Neill", "ONeill"),
        ("Smith-Jones", "smith jones"),
        ("Anne-Marie", "Anne Marie"),
        ("Siobhán", "SIOBHAN"),
    ],
)
def test_name_match_key_agrees_on_variants(a: str, b: str) -> None:
    assert name_match_key(a) == name_match_key(b) != ""


def test_name_match_key_keeps_different_names_apart_and_nulls_empty() -> None:
    assert name_match_key("Jack") != name_match_key("Ruby")
    assert name_match_key("NULL") == ""
    assert name_match_key(None) == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2014-03-05T10:15:00.123456Z", dt.date(2014, 3, 5)),
        ("2014-03-05T23:30:00-05:00", dt.date(2014, 3, 5)),  # the date as written, no zone conversion
        ("2014-03-05 10:15", dt.date(2014, 3, 5)),
        ("2014/03/05", dt.date(2014, 3, 5)),
        ("5/3/2014", dt.date(2014, 3, 5)),
        ("05-03-14", dt.date(2014, 3, 5)),
        ("05.03.14", dt.date(2014, 3, 5)),
        ("05/03/2014 00:00:00", dt.date(2014, 3, 5)),
        ("05/03/2014 12:00:00 AM", dt.date(2014, 3, 5)),
        ("05 Mar 2014", dt.date(2014, 3, 5)),
        ("5-Mar-14", dt.date(2014, 3, 5)),
        ("05-MAR-2014", dt.date(2014, 3, 5)),
        ("5 March 2014", dt.date(2014, 3, 5)),
        ("5th Sept 2014", dt.date(2014, 9, 5)),
        ("March 5, 2014", dt.date(2014, 3, 5)),
        (20140305, dt.date(2014, 3, 5)),
        ("05 Foo 2014", None),
        ("30 Feb 2014", None),
        ("00/00/0000", None),
        ("05/03-2014", None),  # mixed separators
        ("2014-03-05" + "0" * 100, None),
    ],
)
def test_parse_date_more_council_formats(raw: object, expected: dt.date | None) -> None:
    assert parse_date(raw) == expected


@pytest.mark.parametrize(
    ("raw", "default", "not_after_2026_11_29"),
    [
        ("5/3/14", dt.date(2014, 3, 5), dt.date(2014, 3, 5)),
        ("5/3/30", dt.date(2030, 3, 5), dt.date(1930, 3, 5)),
        ("5/3/85", dt.date(1985, 3, 5), dt.date(1985, 3, 5)),
        ("29/11/26", dt.date(2026, 11, 29), dt.date(2026, 11, 29)),
        ("30/11/26", dt.date(2026, 11, 30), dt.date(1926, 11, 30)),
        ("5-Mar-30", dt.date(2030, 3, 5), dt.date(1930, 3, 5)),
        ("05/03/2030", dt.date(2030, 3, 5), dt.date(2030, 3, 5)),  # four-digit years are taken as written
    ],
)
def test_parse_date_two_digit_year_century(raw: str, default: dt.date, not_after_2026_11_29: dt.date) -> None:
    assert parse_date(raw) == default  # Python's %y pivot, as before
    assert parse_date(raw, two_digit_year_max=dt.date(2026, 11, 29)) == not_after_2026_11_29


@pytest.mark.parametrize("raw", [object(), b"2014-03-05", 3.5, ["2014-03-05"], "💥", "x" * 10_000])
def test_parse_date_never_raises(raw: object) -> None:
    assert parse_date(raw) is None


@pytest.mark.parametrize(
    ("raw", "placeholder"),
    [
        ("9999999999", True),
        ("000 000 0000", True),
        ("0123456789", True),
        ("9876543210", True),
        ("9434765919", False),
        ("123", False),
        (None, False),
    ],
)
def test_is_placeholder_nhs_number(raw: object, placeholder: bool) -> None:
    assert is_placeholder_nhs_number(raw) is placeholder


def test_nhs_number_rejects_invalid_spaced_numbers() -> None:
    assert normalise_nhs_number("123 456 7890") is None  # check digit would be 10: never valid
    assert normalise_nhs_number("943 476 5918") is None
