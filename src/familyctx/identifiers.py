"""Normalisation of the identifiers councils record: NHS numbers, UK postcodes, dates.

Used on both sides of the contract: adapters normalise on the way out, the gateway before linking.
Every function here is total: bad input gives ``None``, never an exception, because real warehouses
hold bad values and one bad value must not fail a query.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata

import nhs_number as _nhs

__all__ = [
    "NHS_NUMBER_SEQUENCE_PLACEHOLDERS",
    "SSD_OPEN_END_SENTINEL",
    "is_placeholder_nhs_number",
    "name_match_key",
    "normalise_nhs_number",
    "normalise_postcode",
    "parse_date",
    "postcode_district",
    "postcode_sector",
]

#: The SSD stores open-ended or unknown dates as 1900-01-01 in many extracts.
SSD_OPEN_END_SENTINEL = dt.date(1900, 1, 1)

_NULL_STRINGS = frozenset({"", "null", "none", "n/a", "na", "unknown", "not known"})

# BS 7666 / Royal Mail postcode shape: outward code (area + district), inward code (sector + unit).
_POSTCODE_RE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")


def _is_null(value: object) -> bool:
    return value is None or (isinstance(value, str) and value.strip().lower() in _NULL_STRINGS)


def normalise_nhs_number(value: object) -> str | None:
    """Return a valid NHS number as ten digits, or ``None``.

    Accepts spaces and dashes ("943 476 5919", "943-476-5919"). Rejects anything failing the
    modulus-11 check digit (NHS Data Dictionary, "NHS NUMBER"), and placeholders that pass it but are
    not real numbers: one digit repeated (e.g. 9999999999) and the digit runs 0123456789 and
    9876543210 (:func:`is_placeholder_nhs_number`). Such numbers must never be linked on.
    """
    if _is_null(value):
        return None
    digits = re.sub(r"[\s\-]", "", str(value))
    if len(digits) != 10 or not digits.isdigit():
        return None
    if len(set(digits)) == 1 or digits in NHS_NUMBER_SEQUENCE_PLACEHOLDERS:
        return None
    try:
        return digits if _nhs.is_valid(digits) else None
    except (ValueError, TypeError):
        return None


#: Numbers that pass the modulus-11 check but are keyed in as "no number": one digit repeated (rejected
#: by :func:`normalise_nhs_number`) and the runs of digits 0123456789 and 9876543210.
NHS_NUMBER_SEQUENCE_PLACEHOLDERS = frozenset({"0123456789", "9876543210"})


def is_placeholder_nhs_number(value: object) -> bool:
    """Whether ``value`` (any spacing) is a placeholder NHS number that passes the modulus-11 check.

    True for one digit repeated (9999999999, 0000000000) and for the digit runs 0123456789 and
    9876543210; such values mean "not known" and must never be linked on. False otherwise, including
    for values that are not ten digits at all (those fail :func:`normalise_nhs_number` anyway).
    """
    if value is None:
        return False
    digits = re.sub(r"[\s\-]", "", str(value))
    if len(digits) != 10 or not digits.isdigit():
        return False
    return len(set(digits)) == 1 or digits in NHS_NUMBER_SEQUENCE_PLACEHOLDERS


def normalise_postcode(value: object) -> str | None:
    """Return a UK postcode in canonical form ("SK1 3XE"), or ``None`` if it is not one.

    Case and spacing are ignored ("sk13xe", "SK1  3XE"). Shape per BS 7666; whether the postcode is
    in use is not checked.
    """
    if _is_null(value):
        return None
    compact = re.sub(r"\s+", "", str(value)).upper()
    m = _POSTCODE_RE.match(compact)
    if not m:
        return None
    return f"{m.group(1)} {m.group(2)}"


def postcode_sector(postcode: str | None) -> str | None:
    """"SK1 3XE" -> "SK1 3"; ``None`` for a missing or invalid postcode."""
    pc = normalise_postcode(postcode)
    return pc[:-2] if pc else None


def postcode_district(postcode: str | None) -> str | None:
    """"SK1 3XE" -> "SK1"; ``None`` for a missing or invalid postcode."""
    pc = normalise_postcode(postcode)
    return pc.split(" ")[0] if pc else None


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d/%m/%y", "%Y%m%d", "%d-%m-%Y", "%d.%m.%Y")

# A trailing time of day, as database and spreadsheet exports append it: " 00:00", "T00:00:00.000Z",
# " 12:30:00+01:00", " 00:00:00 AM". The date part is taken as written (no zone conversion).
_TIME_SUFFIX_RE = re.compile(
    r"(?:[T ]\s*\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?\s*(?:[AaPp][Mm])?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?)$"
)
_ISO_RE = re.compile(r"^(\d{4})[-/](\d{1,2})[-/](\d{1,2})$")
_DMY_RE = re.compile(r"^(\d{1,2})([/.\-])(\d{1,2})\2(\d{4}|\d{2})$")
_COMPACT_RE = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_TEXT_MONTH_DMY_RE = re.compile(r"^(\d{1,2})(?:st|nd|rd|th)?[\s\-/.]*([a-z]{3,9})\.?[\s\-/.,]*(\d{4}|\d{2})$")
_TEXT_MONTH_MDY_RE = re.compile(r"^([a-z]{3,9})\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})$")
_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}


def _two_digit_year(yy: int, month: int, day: int, latest: dt.date | None) -> int:
    """The century for a two-digit year: Python's ``%y`` pivot (00-68 -> 20xx, 69-99 -> 19xx) by
    default; with ``latest``, the most recent century giving a date on or before ``latest``."""
    if latest is None:
        return yy + (2000 if yy < 69 else 1900)
    year = (latest.year // 100) * 100 + yy
    if (year, month, day) > (latest.year, latest.month, latest.day):
        year -= 100
    return year


def _make_date(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


@functools.lru_cache(maxsize=50_000)
def _parse_date_text(text: str, two_digit_year_max: dt.date | None) -> dt.date | None:  # noqa: C901, PLR0911
    # Cached: the same dates recur across candidates and councils.
    if len(text) > 64:
        return None
    # ISO datetimes: "2014-03-05T00:00:00", "2014-03-05 00:00:00.000", anything after the date part.
    if len(text) > 10 and text[4:5] == "-" and text[10:11] in ("T", " "):
        text = text[:10]
    else:
        text = _TIME_SUFFIX_RE.sub("", text).strip()
    if m := _ISO_RE.match(text):
        return _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    if m := _DMY_RE.match(text):
        day, month, year_text = int(m.group(1)), int(m.group(3)), m.group(4)
        year = int(year_text)
        if len(year_text) == 2:
            year = _two_digit_year(year, month, day, two_digit_year_max)
        return _make_date(year, month, day)
    if m := _COMPACT_RE.match(text):
        return _make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    lowered = text.lower()
    if m := _TEXT_MONTH_DMY_RE.match(lowered):
        month = _MONTHS.get(m.group(2), 0)
        if not month:
            return None
        day, year_text = int(m.group(1)), m.group(3)
        year = int(year_text)
        if len(year_text) == 2:
            year = _two_digit_year(year, month, day, two_digit_year_max)
        return _make_date(year, month, day)
    if m := _TEXT_MONTH_MDY_RE.match(lowered):
        month = _MONTHS.get(m.group(1), 0)
        return _make_date(int(m.group(3)), month, int(m.group(2))) if month else None
    for fmt in _DATE_FORMATS:  # anything else strptime accepted before the patterns above existed
        try:
            return dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date has no zone
        except ValueError:
            continue
    return None


def parse_date(
    value: object, *, sentinel_is_null: bool = True, two_digit_year_max: dt.date | None = None
) -> dt.date | None:
    """Parse a date as councils store it; ``None`` when missing, impossible or the SSD sentinel.

    Accepts ``date``/``datetime`` objects and strings in ISO 8601 (yyyy-mm-dd, also yyyy/mm/dd; with or
    without a time part: "T" or space, fractions of a second, "Z" or a UTC offset, which is ignored:
    the date is taken as written), dd/mm/yyyy and d/m/yyyy, d/m/yy, yyyymmdd, dd-mm-yyyy, dd.mm.yyyy
    (any of the separators / - . , used consistently), and month names in English: "05 Mar 2014",
    "5-Mar-14", "5th March 2014", "March 5, 2014". A trailing time ("05/03/2014 00:00:00") is ignored.
    Day-first throughout (UK practice): "05/03/2014" is 5 March.

    Two-digit years follow Python's ``%y`` pivot (00-68 -> 2000s, 69-99 -> 1900s) unless
    ``two_digit_year_max`` is given: then the year is put in the latest century that gives a date on
    or before that date (pass today for dates of birth, so "5/3/30" is 1930, never the future).

    The SSD's 1900-01-01 open-end value is treated as missing unless ``sentinel_is_null`` is false.
    Impossible dates (31/02/2014, 00/00/0000) and unparseable text give ``None``; never raises.
    Plausibility (a year before 1890, a date of birth in the future) is the caller's business.
    """
    if _is_null(value):
        return None
    if isinstance(value, dt.datetime):
        d: dt.date | None = value.date()
    elif isinstance(value, dt.date):
        d = value
    else:
        try:
            text = str(value).strip()
        except Exception:  # noqa: BLE001 - a value whose str() fails is not a date
            return None
        d = _parse_date_text(text, two_digit_year_max)
    if d is None or (sentinel_is_null and d == SSD_OPEN_END_SENTINEL):
        return None
    return d


# Characters that vary between systems without changing a name: spaces, apostrophes (straight and
# curly), backticks, acute accents typed as apostrophes, hyphens and dashes, dots and commas.
_NAME_PUNCTUATION = re.compile(r"[\s'\u2019\u2018`\u00b4\-\u2010\u2011\u2013.,]+")


def name_match_key(value: object) -> str:
    """A name folded for comparison, never for display: "Zoë O'Neill" -> "zoeoneill".

    Unicode NFKD with combining marks removed (diacritics), case folded (``str.casefold``), and
    spaces, apostrophes, hyphens, dots and commas dropped, so O'Neill, ONeill and O Neill agree.
    ``None`` and 'NULL'-like strings give ''. Used by adapters (search) and the gateway (linkage).
    """
    if _is_null(value):
        return ""
    return _name_match_key(str(value))


@functools.lru_cache(maxsize=100_000)
def _name_match_key(text: str) -> str:
    # Cached: names repeat heavily, and one date-of-birth search folds dozens of them.
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NAME_PUNCTUATION.sub("", stripped)
