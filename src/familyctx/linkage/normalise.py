"""Normalisation of council person records into comparison features for linkage (issue 5).

:func:`link_features` turns one :class:`LinkInput` (raw values as a council sent them) into
:class:`LinkFeatures`: folded names, a plausible date of birth, sex, postcode and a valid NHS number.
It is total: dirty values become missing features, never exceptions, because one bad value in one
council's warehouse must not fail a query. Features are for comparison only, never for display (the
original values are kept by the caller).

Rules (standards in brackets):

- Names: Unicode NFKC, case folding, diacritics folded (Zoë = Zoe, Łukasz = Lukasz), punctuation
  dropped so O'Neill, O’Neill, ONeill and O Neill all fold to 'oneill'; bracketed text dropped
  ("Smith (Mrs)", "Smith (née Jones)"); titles removed when they lead either field; placeholder given
  names for babies and unborn children ("Baby", "Unborn", "Baby of ...") mean no given name;
  double-barrelled family names split into parts; short forms via :mod:`familyctx.linkage.names`.
  Given and family names swapped are left as they are: comparisons detect the swap.
- Dates of birth (:func:`familyctx.identifiers.parse_date`): every format councils use, two-digit
  years never in the future, the SSD 1900-01-01 sentinel, years before 1890 and dates after today
  are missing. An unborn child (SSD PERS009A, expected date of delivery) gets the expected date,
  with ``dob_expected``.
- Sex (SSD PERS002A): F/M from letters or words only; numeric codes are not guessed.
- Postcodes (BS 7666 shape), NHS numbers (modulus 11, placeholders rejected): see
  :mod:`familyctx.identifiers`.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from dataclasses import dataclass

from familyctx.identifiers import (
    is_placeholder_nhs_number,
    normalise_nhs_number,
    normalise_postcode,
    parse_date,
)
from familyctx.linkage.names import (
    FAMILY_PARTICLES,
    FAMILY_PREFIXES,
    NAME_ONLY_TITLES,
    NAME_SUFFIXES,
    PLACEHOLDER_FILLERS,
    PLACEHOLDER_GIVEN_NAMES,
    TITLES,
    canonical_forms,
)

__all__ = ["EARLIEST_BIRTH_YEAR", "LinkFeatures", "LinkInput", "fold_name", "link_features"]

#: Dates of birth before this year are data-entry errors (00/00/0000, 01/01/0001, 1066) -> missing.
EARLIEST_BIRTH_YEAR = 1890

#: How far ahead an expected date of delivery may lie (a pregnancy is booked well under a year ahead).
_EXPECTED_DATE_HORIZON = dt.timedelta(days=366)

#: Longest name text looked at; anything longer is junk and is cut to keep folding cheap.
_MAX_NAME_CHARS = 200

_NULL_NAMES = frozenset({"", "null", "none", "n/a", "nk", "n/k", "unknown", "not known", "notknown"})

# Letters NFKD does not decompose: folded to what English-language systems type instead.
_LETTER_FOLDS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i", "ŀ": "l", "ħ": "h"}
)
_NOT_ALNUM = re.compile(r"[\W_]+")
# Bracketed asides: "(Mrs)", "[alias]", "(née Jones)"; an unclosed bracket runs to the end.
_BRACKETED = re.compile(r"[(\[{][^)\]}]*[)\]}]?")
# Word separators: whitespace, dots, commas, slashes and the like. Hyphens split words into parts.
_WORD_SEP = re.compile(r"[\s.,/\\;:&+_|*\"]+")
_HYPHENS = re.compile(r"[\-\u2010\u2011\u2012\u2013\u2014\u2015\u2212]+")

_SEX = {
    "f": "F",
    "female": "F",
    "girl": "F",
    "woman": "F",
    "m": "M",
    "male": "M",
    "boy": "M",
    "man": "M",
}
_TRUE_FLAGS = frozenset({"y", "yes", "true", "t", "1"})


@dataclass(frozen=True, slots=True)
class LinkInput:
    """One council record as linkage receives it (raw values as the council sent them).

    ``source``: the council's GSS code; records of one source are never linked together.
    ``record_id``: the council's local person id. ``date_of_birth`` / ``expected_date_of_birth``: a
    ``date`` or text in any format :func:`familyctx.identifiers.parse_date` reads.
    ``date_of_birth_estimated``: the SSD flag (estimated dates are recorded as the 15th).
    ``sex``: 'F'/'M'/'female'/'male'/'U'/'unknown'/... any case. Every field may be dirty.
    """

    source: str
    record_id: str
    nhs_number: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: dt.date | str | None = None
    date_of_birth_estimated: bool = False
    expected_date_of_birth: dt.date | str | None = None
    sex: str | None = None
    postcode: str | None = None


@dataclass(frozen=True, slots=True)
class LinkFeatures:
    """Normalised comparison features of one record (never for display).

    ``nhs_number``: ten digits passing modulus 11, not a placeholder, or None.
    ``given_key``: folded first given name, titles removed, '' if missing or a placeholder.
    ``given_tokens``: every folded given-name token in order (first, middle; the parts of a hyphenated
    name too: 'Anne-Marie Louise' -> ('annemarie', 'anne', 'marie', 'louise')).
    ``given_canonical``: sorted canonical forms of ``given_key`` (:func:`names.canonical_forms`),
    including ``given_key`` itself; () when it is ''.
    ``family_key``: folded whole family name, titles removed. ``family_parts``: sorted folded parts of
    a multi-part family name, particles dropped ('Smith-Jones' -> ('jones', 'smith')).
    ``dob``: date of birth, or the expected date for an unborn child (``dob_expected``); None if
    missing, impossible or the SSD sentinel. ``sex``: 'F' | 'M' | None.
    ``postcode``: 'SK1 3XE'; ``postcode_sector``: 'SK1 3'; ``postcode_district``: 'SK1'.
    """

    nhs_number: str | None
    given_key: str
    given_tokens: tuple[str, ...]
    given_canonical: tuple[str, ...]
    family_key: str
    family_parts: tuple[str, ...]
    dob: dt.date | None
    dob_estimated: bool
    dob_expected: bool
    sex: str | None
    postcode: str | None
    postcode_sector: str | None
    postcode_district: str | None


def fold_name(value: object) -> str:
    """A name folded for comparison, never for display: "Zoë O’Neill" -> "zoeoneill".

    Unicode NFKC, case folding (``str.casefold``: ß -> ss), diacritics removed (NFKD, combining marks
    dropped; also ø, ł, æ, œ, đ, þ and dotless ı), then every character that is not a letter or digit
    dropped (spaces, apostrophes straight or curly, hyphens, dots). ``None``, non-text and 'NULL'-like
    values give ''. Cached; never raises.
    """
    if value is None:
        return ""
    if not isinstance(value, str):
        if isinstance(value, bool) or not isinstance(value, int):
            return ""
        value = str(value)
    return _fold(value[:_MAX_NAME_CHARS])


@functools.lru_cache(maxsize=100_000)
def _fold(text: str) -> str:
    if text.strip().casefold() in _NULL_NAMES:
        return ""
    folded = unicodedata.normalize("NFKC", text).casefold().translate(_LETTER_FOLDS)
    if not folded.isascii():
        decomposed = unicodedata.normalize("NFKD", folded)
        folded = unicodedata.normalize(
            "NFC", "".join(ch for ch in decomposed if not unicodedata.combining(ch))
        )
    return _NOT_ALNUM.sub("", folded)


def _words(text: str) -> list[tuple[str, ...]]:
    """Split a raw name field into words, each a tuple of its folded hyphen-separated parts.

    Bracketed asides are dropped first; parts that fold to nothing or are all digits are dropped.
    """
    text = unicodedata.normalize("NFKC", text[:_MAX_NAME_CHARS])
    text = _BRACKETED.sub(" ", text)
    words: list[tuple[str, ...]] = []
    for raw_word in _WORD_SEP.split(text):
        parts = tuple(p for p in (_fold(raw) for raw in _HYPHENS.split(raw_word)) if p and not p.isdigit())
        if parts:
            words.append(parts)
    return words


def _strip_titles(words: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Remove leading titles ("Mrs", "Dr.", "Rev Dr") and a trailing "Jr"-style suffix."""
    while words and len(words[0]) == 1 and words[0][0] in TITLES:
        if words[0][0] in NAME_ONLY_TITLES and len(words) == 1:
            break  # the surname Lord, the given name Lady
        words = words[1:]
    if len(words) > 1 and len(words[-1]) == 1 and words[-1][0] in NAME_SUFFIXES:
        words = words[:-1]
    return words


@functools.lru_cache(maxsize=50_000)
def _given_features(raw: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(given_key, given_tokens, given_canonical) of a raw given-name field."""
    words = _strip_titles(_words(raw))
    if words and len(words[0]) == 1 and words[0][0] == "not" and len(words) > 1 and words[1] == ("known",):
        return "", (), ()
    if words and "".join(words[0]) in PLACEHOLDER_GIVEN_NAMES:
        rest = words[1:]
        while rest and "".join(rest[0]) in PLACEHOLDER_GIVEN_NAMES | PLACEHOLDER_FILLERS:
            if rest[0] == ("of",):
                return "", (), ()  # "Baby of Jane Smith": the rest is the parent's name
            rest = rest[1:]
        words = rest  # "Baby Girl" -> nothing; "Baby Jack" -> jack
    if not words:
        return "", (), ()
    tokens: list[str] = []
    for parts in words:
        for token in ("".join(parts), *(parts if len(parts) > 1 else ())):
            if token not in tokens:
                tokens.append(token)
    key = "".join(words[0])
    return key, tuple(tokens), canonical_forms(key)


@functools.lru_cache(maxsize=50_000)
def _family_features(raw: str) -> tuple[str, tuple[str, ...]]:
    """(family_key, family_parts) of a raw family-name field."""
    words = _strip_titles(_words(raw))
    flat = [part for parts in words for part in parts]
    key = "".join(flat)
    if not key or key in _NULL_NAMES:
        return "", ()
    glued: list[str] = []
    i = 0
    while i < len(flat):
        part = flat[i]
        if part in FAMILY_PREFIXES and i + 1 < len(flat):
            glued.append(part + flat[i + 1])  # "Mc Donald" -> mcdonald, "O Neill" -> oneill
            i += 2
            continue
        glued.append(part)
        i += 1
    kept = [p for p in glued if p not in FAMILY_PARTICLES] or glued
    parts = tuple(sorted(set(kept)))
    return key, parts


def _name_text(value: object) -> str:
    """A name field as text: ints (a number keyed into a name column) as digits, other non-text ''."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _flag(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().casefold() in _TRUE_FLAGS
    return value is True or (isinstance(value, int) and value == 1)


def _sex(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    return _SEX.get(value.strip().casefold())


@functools.lru_cache(maxsize=50_000)
def _nhs(value: str) -> str | None:
    number = normalise_nhs_number(value)
    return None if number is None or is_placeholder_nhs_number(number) else number


@functools.lru_cache(maxsize=50_000)
def _postcode(value: str) -> tuple[str | None, str | None, str | None]:
    pc = normalise_postcode(value)
    if pc is None:
        return None, None, None
    return pc, pc[:-2], pc.split(" ")[0]


def _date(value: object, *, latest: dt.date) -> dt.date | None:
    """A plausible date (EARLIEST_BIRTH_YEAR .. ``latest``) or None; never raises."""
    try:
        d = parse_date(value, two_digit_year_max=latest)
    except Exception:  # noqa: BLE001 - linkage is total
        return None
    if d is None or d.year < EARLIEST_BIRTH_YEAR or d > latest:
        return None
    return d


def link_features(record: LinkInput) -> LinkFeatures:
    """Normalise one council record into :class:`LinkFeatures` (rules in the module docstring).

    Total: never raises on dirty values (None, '', 'NULL', numbers, emoji, very long text); a value
    that cannot be normalised becomes a missing feature. About 10 µs a record with warm caches.
    """
    today = dt.date.today()  # noqa: DTZ011 - dates of birth are local calendar dates
    given_key, given_tokens, given_canonical = _given_features(_name_text(record.given_name))
    family_key, family_parts = _family_features(_name_text(record.family_name))

    dob = _date(record.date_of_birth, latest=today)
    dob_expected = False
    if dob is None:
        dob = _date(record.expected_date_of_birth, latest=today + _EXPECTED_DATE_HORIZON)
        dob_expected = dob is not None
    dob_estimated = dob is not None and not dob_expected and _flag(record.date_of_birth_estimated)

    nhs_raw = record.nhs_number
    nhs = _nhs(nhs_raw if isinstance(nhs_raw, str) else str(nhs_raw)) if nhs_raw is not None else None
    pc_raw = record.postcode
    postcode, sector, district = _postcode(pc_raw) if isinstance(pc_raw, str) else (None, None, None)

    return LinkFeatures(
        nhs_number=nhs,
        given_key=given_key,
        given_tokens=given_tokens,
        given_canonical=given_canonical,
        family_key=family_key,
        family_parts=family_parts,
        dob=dob,
        dob_estimated=dob_estimated,
        dob_expected=dob_expected,
        sex=_sex(record.sex),
        postcode=postcode,
        postcode_sector=sector,
        postcode_district=district,
    )
