"""Normalisation rules for linkage (issue 5): one test per rule, real-world dirty values."""

from __future__ import annotations

import datetime as dt

import pytest

from familyctx.linkage.names import canonical_forms
from familyctx.linkage.normalise import LinkFeatures, LinkInput, fold_name, link_features

TODAY = dt.date.today()  # noqa: DTZ011 - the rules are relative to the local calendar date


def features(**fields: object) -> LinkFeatures:
    return link_features(LinkInput(source="E08000007", record_id="P1", **fields))  # type: ignore[arg-type]


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "family"),
    [("Zoë", "O'Neill"), ("ZOE", "ONEILL"), ("Zoe", "O Neill"), ("zoe", "O’Neill"), ("Zoe\u0308", "o'neill")],
)
def test_names_fold_case_diacritics_apostrophes_and_spaces(given: str, family: str) -> None:
    f = features(given_name=given, family_name=family)
    assert (f.given_key, f.family_key, f.family_parts) == ("zoe", "oneill", ("oneill",))


@pytest.mark.parametrize(
    ("raw", "folded"),
    [
        ("Siobhán", "siobhan"),
        ("ŁUKASZ", "lukasz"),
        ("Søren", "soren"),
        ("Straße", "strasse"),
        ("Ｊｏｈｎ", "john"),  # full-width letters: NFKC
        ("O’Neill", "oneill"),
        ("Smith-Jones", "smithjones"),
        ("  ", ""),
        ("NULL", ""),
        (None, ""),
        (12.5, ""),
    ],
)
def test_fold_name_nfkc_casefold_diacritics_punctuation(raw: object, folded: str) -> None:
    assert fold_name(raw) == folded


@pytest.mark.parametrize(
    ("family", "key", "parts"),
    [
        ("Smith-Jones", "smithjones", ("jones", "smith")),
        ("SMITH JONES", "smithjones", ("jones", "smith")),
        ("Smith – Jones", "smithjones", ("jones", "smith")),  # en dash
        ("van der Berg-Smith", "vanderbergsmith", ("berg", "smith")),
        ("de la Cruz", "delacruz", ("cruz",)),
        ("Mc Donald", "mcdonald", ("mcdonald",)),  # prefix glued, not dropped: McDonald is not Donald
        ("St. John", "stjohn", ("stjohn",)),
        ("Le", "le", ("le",)),  # a particle that is the whole surname stays
        ("Smith", "smith", ("smith",)),
    ],
)
def test_double_barrelled_family_names_split_into_parts(
    family: str, key: str, parts: tuple[str, ...]
) -> None:
    f = features(family_name=family)
    assert (f.family_key, f.family_parts) == (key, parts)


@pytest.mark.parametrize(
    ("given", "family", "given_key", "family_key"),
    [
        ("Mrs Siobhán", "Murphy", "siobhan", "murphy"),
        ("Mrs. Siobhan", "Murphy", "siobhan", "murphy"),
        ("Siobhan", "Mrs Murphy", "siobhan", "murphy"),
        ("Rev Dr Ann", "Smith", "ann", "smith"),
        ("Ann", "Smith (Mrs)", "ann", "smith"),
        ("Ann", "Smith (née Jones)", "ann", "smith"),
        ("MR JOHN", "SMITH", "john", "smith"),
        ("Master Jack", "Lord", "jack", "lord"),  # Lord is a surname when it is the whole field
        ("Lady", "Smith", "lady", "smith"),
        ("John", "Smith Jr", "john", "smith"),
    ],
)
def test_titles_removed_from_either_field(given: str, family: str, given_key: str, family_key: str) -> None:
    f = features(given_name=given, family_name=family)
    assert (f.given_key, f.family_key) == (given_key, family_key)


@pytest.mark.parametrize(
    "given",
    [
        "Unborn",
        "BABY",
        "Baby of",
        "Baby of Jane Smith",
        "Baby Girl",
        "Baby 2",
        "Infant",
        "Unknown",
        "NK",
        "Not Known",
        "NULL",
        "Mrs Unknown",
        "",
        "   ",
    ],
)
def test_placeholder_given_names_are_missing(given: str) -> None:
    f = features(given_name=given, family_name="Smith")
    assert (f.given_key, f.given_tokens, f.given_canonical) == ("", (), ())
    assert f.family_key == "smith"


def test_placeholder_prefix_keeps_a_real_name_after_it() -> None:
    assert features(given_name="Baby Jack").given_key == "jack"


@pytest.mark.parametrize(
    ("given", "key", "tokens"),
    [
        ("Anne-Marie Louise", "annemarie", ("annemarie", "anne", "marie", "louise")),
        ("Anne Marie", "anne", ("anne", "marie")),
        ("D'Arcy", "darcy", ("darcy",)),
        ("Mohammed Ali", "mohammed", ("mohammed", "ali")),
    ],
)
def test_given_tokens_hold_first_middle_and_hyphenated_parts(
    given: str, key: str, tokens: tuple[str, ...]
) -> None:
    f = features(given_name=given)
    assert (f.given_key, f.given_tokens) == (key, tokens)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Bob", "Robert"),
        ("Rob", "Bob"),
        ("Jim", "James"),
        ("Jon", "John"),
        ("Jack", "John"),
        ("Johnny", "John"),
        ("Steve", "Stephen"),
        ("Steven", "Stephen"),  # spelling variant: UK supplement
        ("Liz", "Elizabeth"),
        ("Beth", "Liz"),
        ("Kate", "Katherine"),
        ("Kate", "Catherine"),  # via katherine -> catherine
        ("Alfie", "Alfred"),  # UK supplement
        ("Archie", "Archibald"),
        ("Ellie", "Eleanor"),
        ("Sam", "Samuel"),
        ("Sam", "Samantha"),
        ("Mohammed", "Muhammad"),  # UK supplement
        ("Shaun", "Sean"),
    ],
)
def test_known_short_forms_share_a_canonical_form(a: str, b: str) -> None:
    fa, fb = features(given_name=a), features(given_name=b)
    assert set(fa.given_canonical) & set(fb.given_canonical)
    assert fa.given_key in fa.given_canonical
    assert list(fa.given_canonical) == sorted(fa.given_canonical)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Robert", "William"),
        ("Bob", "Bill"),
        ("Jack", "Ruby"),
        ("Hannah", "Susan"),
        ("Samuel", "Samantha"),
        ("Stephen", "Elizabeth"),
    ],
)
def test_different_given_names_do_not_share_a_canonical_form(a: str, b: str) -> None:
    fa, fb = features(given_name=a), features(given_name=b)
    assert not set(fa.given_canonical) & set(fb.given_canonical)


def test_canonical_forms_of_a_full_name_are_only_itself() -> None:
    assert canonical_forms("robert") == ("robert",)
    assert "robert" in canonical_forms("bob")
    assert canonical_forms("") == ()


def test_swapped_names_are_not_normalised_away() -> None:
    f = features(given_name="Smith", family_name="John")
    assert (f.given_key, f.family_key) == ("smith", "john")


# --- dates -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        dt.date(2014, 3, 5),
        dt.datetime(2014, 3, 5, 13, 45),
        "2014-03-05",
        "2014-03-05T00:00:00",
        "2014-03-05 00:00:00.000",
        "2014-03-05T10:15:00.123456Z",
        "2014-03-05T10:15:00+01:00",
        "05/03/2014",
        "5/3/2014",
        "5/3/14",
        "20140305",
        "05-03-2014",
        "05.03.2014",
        "05 Mar 2014",
        "5-Mar-14",
        "05-MAR-2014",
        "5th March 2014",
        "05/03/2014 00:00:00",
    ],
)
def test_every_date_format_councils_use(raw: object) -> None:
    f = features(date_of_birth=raw)
    assert (f.dob, f.dob_expected) == (dt.date(2014, 3, 5), False)


@pytest.mark.parametrize("raw", ["1900-01-01", "01/01/1900", dt.date(1900, 1, 1), dt.datetime(1900, 1, 1)])
def test_ssd_sentinel_date_is_missing(raw: object) -> None:
    assert features(date_of_birth=raw).dob is None


@pytest.mark.parametrize(
    "raw",
    [
        "31/02/2014",
        "00/00/0000",
        "2014-13-01",
        "32/01/2014",
        "01/01/1850",
        "1066-10-14",
        "yesterday",
        "NULL",
        "0",
        "99/99/99",
    ],
)
def test_impossible_dates_are_missing(raw: str) -> None:
    assert features(date_of_birth=raw).dob is None


def test_date_of_birth_after_today_is_missing() -> None:
    tomorrow = TODAY + dt.timedelta(days=1)
    assert features(date_of_birth=tomorrow).dob is None
    assert features(date_of_birth=tomorrow.strftime("%d/%m/%Y")).dob is None
    assert features(date_of_birth=TODAY).dob == TODAY


@pytest.mark.parametrize(
    ("raw", "year"),
    [
        ("5/3/14", 2014),
        ("5/3/85", 1985),
        # a two-digit year that would be next year is last century's
        (f"1/1/{(TODAY.year + 1) % 100:02d}", TODAY.year + 1 - 100),
        (f"1/1/{TODAY.year % 100:02d}", TODAY.year),
        (f"5-Jan-{(TODAY.year + 1) % 100:02d}", TODAY.year + 1 - 100),
    ],
)
def test_two_digit_years_are_never_in_the_future(raw: str, year: int) -> None:
    dob = features(date_of_birth=raw).dob
    assert dob is not None and dob.year == year


@pytest.mark.parametrize(
    ("flag", "expected"), [(True, True), (False, False), ("Y", True), ("N", False), (1, True)]
)
def test_estimated_flag_carried_when_there_is_a_date(flag: object, expected: bool) -> None:
    assert features(date_of_birth="15/06/2010", date_of_birth_estimated=flag).dob_estimated is expected
    assert features(date_of_birth=None, date_of_birth_estimated=flag).dob_estimated is False


def test_unborn_child_uses_the_expected_date() -> None:
    due = TODAY + dt.timedelta(days=90)
    f = features(given_name="Unborn", family_name="Smith", expected_date_of_birth=due.isoformat())
    assert (f.dob, f.dob_expected, f.dob_estimated, f.given_key) == (due, True, False, "")
    # a recorded date of birth wins over an expected date
    born = features(date_of_birth="2014-03-05", expected_date_of_birth=due)
    assert (born.dob, born.dob_expected) == (dt.date(2014, 3, 5), False)
    # an expected date years ahead is impossible
    assert features(expected_date_of_birth=TODAY + dt.timedelta(days=800)).dob is None


# --- sex, postcodes, NHS numbers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "sex"),
    [
        ("F", "F"),
        ("f", "F"),
        ("female", "F"),
        ("FEMALE", "F"),
        (" Female ", "F"),
        ("M", "M"),
        ("male", "M"),
        ("MALE", "M"),
        ("1", None),
        ("2", None),
        (1, None),
        ("U", None),
        ("unknown", None),
        ("unspecified", None),
        ("I", None),
        ("indeterminate", None),
        ("", None),
        (None, None),
    ],
)
def test_sex_from_letters_and_words_only(raw: object, sex: str | None) -> None:
    assert features(sex=raw).sex == sex


@pytest.mark.parametrize(
    ("raw", "full", "sector", "district"),
    [
        ("SK1 3XE", "SK1 3XE", "SK1 3", "SK1"),
        ("sk13xe", "SK1 3XE", "SK1 3", "SK1"),
        ("  sk1   3xe ", "SK1 3XE", "SK1 3", "SK1"),
        ("EC1A1BB", "EC1A 1BB", "EC1A 1", "EC1A"),
        ("M13 5YN", "M13 5YN", "M13 5", "M13"),
        ("SK1", None, None, None),
        ("NULL", None, None, None),
        ("", None, None, None),
    ],
)
def test_postcode_spacing_case_sector_and_district(
    raw: str, full: str | None, sector: str | None, district: str | None
) -> None:
    f = features(postcode=raw)
    assert (f.postcode, f.postcode_sector, f.postcode_district) == (full, sector, district)


@pytest.mark.parametrize(
    ("raw", "nhs"),
    [
        ("9434765919", "9434765919"),
        ("943 476 5919", "9434765919"),
        ("943-476-5919", "9434765919"),
        ("9434765918", None),  # modulus-11 check digit wrong
        ("123 456 7890", None),  # invalid check digit
        ("9999999999", None),  # placeholder
        ("0000000000", None),
        ("1111111111", None),
        ("0123456789", None),  # passes modulus 11, a keyed-in run of digits
        ("9876543210", None),
        ("NULL", None),
        ("", None),
        (None, None),
    ],
)
def test_nhs_number_modulus_11_and_placeholders(raw: str | None, nhs: str | None) -> None:
    assert features(nhs_number=raw).nhs_number == nhs


# --- totality and cost ---------------------------------------------------------------------------

GARBAGE: list[object] = [
    None,
    "",
    "   ",
    12345,
    "💥",
    "x" * 100_000,
    "\x00\x01",
    "(((",
    "-",
    "'",
    3.14,
    True,
    ["a"],
    b"bytes",
    "Baby of",
    "Mrs",
    "\u0301\u0301",
]


@pytest.mark.parametrize("value", GARBAGE, ids=repr)
def test_link_features_never_raises_on_garbage(value: object) -> None:
    f = link_features(
        LinkInput(
            source="E08000007",
            record_id="P1",
            nhs_number=value,  # type: ignore[arg-type]
            given_name=value,  # type: ignore[arg-type]
            family_name=value,  # type: ignore[arg-type]
            date_of_birth=value,  # type: ignore[arg-type]
            date_of_birth_estimated=value,  # type: ignore[arg-type]
            expected_date_of_birth=value,  # type: ignore[arg-type]
            sex=value,  # type: ignore[arg-type]
            postcode=value,  # type: ignore[arg-type]
        )
    )
    assert isinstance(f, LinkFeatures)
    assert f.nhs_number is None and f.sex is None and f.postcode is None and f.dob is None
    assert len(f.family_key) <= 200 and len(f.given_key) <= 200
