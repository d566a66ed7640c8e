"""Normalising warehouse values on the way out, and names for matching.

Real warehouses hold 'NULL' strings, upper-case names, 1900-01-01 open-end dates, dd/mm/yyyy text
dates, postcodes without the space and invalid or placeholder NHS numbers. Every function here is
total: a bad value becomes empty/None, never an exception. Identifier rules live in
:mod:`familyctx.identifiers` and are reused, not duplicated.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from familycontext.v1 import types_pb2

from familyctx.identifiers import SSD_OPEN_END_SENTINEL, name_match_key, parse_date

__all__ = [
    "address_lines",
    "clean_text",
    "date_message",
    "display_name",
    "is_open",
    "match_key",
    "sex_of",
    "timestamp_of",
    "to_date",
]

_NULL_STRINGS = frozenset({"", "null", "none", "n/a", "na"})
_SPACES = re.compile(r"\s+")
_DROP_FOR_MATCH = re.compile(r"[\s'’`\-.]+")


def clean_text(value: object) -> str:
    """Trim and collapse whitespace; ``None`` and 'NULL'-like strings become ''."""
    if value is None:
        return ""
    text = _SPACES.sub(" ", str(value)).strip()
    return "" if text.lower() in _NULL_STRINGS else text


def display_name(value: object) -> str:
    """A name for display: trimmed, case and diacritics kept; an ALL-CAPS name in title case.

    "  O'NEILL " -> "O'Neill"; "Zoë" -> "Zoë"; "McDonald" unchanged.
    """
    text = clean_text(value)
    if text and text.upper() == text and any(c.isalpha() for c in text):
        text = text.title()
    return text


def match_key(value: object) -> str:
    """A name folded for comparison (see :func:`familyctx.identifiers.name_match_key`).
    "Zoë O'Neill" -> "zoeoneill"."""
    return name_match_key(value)


def sex_of(value: object) -> int:
    """SSD pers_sex (PERS002A: M/F/U/I or words) -> :class:`types_pb2.Sex`."""
    text = clean_text(value).lower()
    if not text:
        return types_pb2.SEX_UNSPECIFIED
    if text in ("f", "female", "girl", "woman"):
        return types_pb2.SEX_FEMALE
    if text in ("m", "male", "boy", "man"):
        return types_pb2.SEX_MALE
    return types_pb2.SEX_UNKNOWN


def to_date(value: object) -> dt.date | None:
    """:func:`familyctx.identifiers.parse_date` with a fast path for the ISO text SQLite returns
    ("2014-03-05 00:00:00.000000"); None when missing, impossible or the 1900-01-01 sentinel."""
    if isinstance(value, str) and len(value) >= 10 and value[4] == "-" and value[7] == "-":
        try:
            d = dt.date.fromisoformat(value[:10])
        except ValueError:
            return parse_date(value)
        return None if d == SSD_OPEN_END_SENTINEL else d
    if isinstance(value, dt.datetime):
        d = value.date()
        return None if d == SSD_OPEN_END_SENTINEL else d
    return parse_date(value)


def date_message(value: object) -> types_pb2.Date | None:
    """A warehouse date (datetime, ISO text, dd/mm/yyyy) -> proto Date; None when unknown/sentinel."""
    d = to_date(value)
    if d is None:
        return None
    return types_pb2.Date(year=d.year, month=d.month, day=d.day)


def timestamp_of(value: object) -> dt.datetime | None:
    """A warehouse timestamp (naive = UTC, per interfaces.md) as an aware UTC datetime, or None."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        text = clean_text(value)
        if not text:
            return None
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            d = parse_date(text, sentinel_is_null=False)
            if d is None:
                return None
            parsed = dt.datetime(d.year, d.month, d.day)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def is_open(end_value: object, *, today: dt.date) -> bool:
    """Open when the end date is missing, 'NULL', the 1900-01-01 sentinel, or in the future."""
    end = to_date(end_value)
    return end is None or end > today


_ADDRESS_PARTS = ("ROOM", "FLOOR", "FLAT", "BUILDING")


def address_lines(detail_json: object) -> tuple[list[str], str]:
    """SSD addr_address_json -> (display lines without the postcode, UPRN).

    The JSON holds ROOM, FLOOR, FLAT, BUILDING, HOUSE, STREET, TOWN, UPRN (EASTING/NORTHING ignored).
    Malformed JSON gives ([], "").
    """
    text = clean_text(detail_json)
    if not text:
        return [], ""
    try:
        detail = json.loads(text)
    except ValueError:
        return [], ""
    if not isinstance(detail, dict):
        return [], ""

    def part(key: str) -> str:
        return display_name(detail.get(key))

    lines = []
    first = ", ".join(p for p in (part(k) for k in _ADDRESS_PARTS) if p)
    if first:
        lines.append(first)
    street = " ".join(p for p in (part("HOUSE"), part("STREET")) if p)
    if street:
        lines.append(street)
    if part("TOWN"):
        lines.append(part("TOWN"))
    return lines, clean_text(detail.get("UPRN"))
