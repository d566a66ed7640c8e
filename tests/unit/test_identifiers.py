"""Normalisation shared by adapters and the gateway: NHS numbers, postcodes, dates, names."""

from __future__ import annotations

import datetime as dt

import pytest

from familyctx.identifiers import (
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
