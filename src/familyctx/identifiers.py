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
    "SSD_OPEN_END_SENTINEL",
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
    not real numbers: one digit repeated (e.g. 9999999999). Such numbers must never be linked on.
    """
    if _is_null(value):
        return None
    digits = re.sub(r"[\s\-]", "", str(value))
    if len(digits) != 10 or not digits.isdigit():
        return None
    if len(set(digits)) == 1:
        return None
    try:
        return digits if _nhs.is_valid(digits) else None
    except (ValueError, TypeError):
        return None


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


def parse_date(value: object, *, sentinel_is_null: bool = True) -> dt.date | None:
    """Parse a date as councils store it; ``None`` when missing, impossible or the SSD sentinel.

    Accepts ``date``/``datetime`` objects and strings in ISO 8601 (with or without a time part),
    dd/mm/yyyy, d/m/yy, yyyymmdd, dd-mm-yyyy and dd.mm.yyyy. The SSD's 1900-01-01 open-end value is
    treated as missing unless ``sentinel_is_null`` is false. Impossible dates (31/02/2014) give ``None``.
    """
    if _is_null(value):
        return None
    if isinstance(value, dt.datetime):
        d = value.date()
    elif isinstance(value, dt.date):
        d = value
    else:
        text = str(value).strip()
        d = None
        # ISO datetimes: "2014-03-05T00:00:00", "2014-03-05 00:00:00.000"
        if len(text) > 10 and text[4:5] == "-" and text[10:11] in ("T", " "):
            text = text[:10]
        for fmt in _DATE_FORMATS:
            try:
                d = dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007 - a date has no zone
                break
            except ValueError:
                continue
        if d is None:
            return None
    if sentinel_is_null and d == SSD_OPEN_END_SENTINEL:
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
