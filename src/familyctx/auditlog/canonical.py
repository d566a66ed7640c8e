"""Canonical bytes of a log record: the exact bytes a leaf hash is computed over.

JSON (RFC 8259) with keys sorted, separators ``(",", ":")``, UTF-8 (non-ASCII kept as is, not escaped),
no insignificant whitespace. Only types with one unambiguous spelling are accepted: ``str``, ``int``,
``bool``, ``None``, mappings with ``str`` keys, lists/tuples, timezone-aware ``datetime`` (written as an
RFC 3339 UTC string with microseconds, ``2026-01-31T09:05:00.000000Z``) and ``date`` (``2026-01-31``).
Floats are refused: their decimal spelling differs between producers, so the same record could hash two
ways.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_bytes", "rfc3339_utc"]


def rfc3339_utc(moment: dt.datetime) -> str:
    """``moment`` as an RFC 3339 UTC string with exactly six fraction digits and ``Z``.

    Raises ``ValueError`` for a naive datetime (its zone is unknown)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("naive datetime: give a timezone-aware datetime")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _plain(value: Any) -> Any:
    """``value`` with datetimes/dates as strings; raises ``_Refused`` (no path: found again by
    :func:`_locate`, only when something is refused). Exact-type checks first: records are mostly plain
    dicts, lists, strings and ints, and this runs for every record the log appends."""
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Refused
            out[key] = _plain(item)
        return out
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if isinstance(value, float):
        raise _Refused
    if isinstance(value, str | int):  # subclasses (StrEnum, IntEnum): written as their value
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise _Refused
        return rfc3339_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return _plain(dict(value))
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    raise _Refused


class _Refused(Exception):
    pass


def _locate(value: Any, path: str) -> str | None:
    """The message for the first refused value under ``value`` (at ``path``), or None."""
    try:
        _plain(value)
        return None
    except _Refused:
        pass
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                return f"non-string key at {path}: keys must be strings"
            found = _locate(item, f"{path}.{key}")
            if found:
                return found
    elif isinstance(value, list | tuple) and not isinstance(value, str):
        for i, item in enumerate(value):
            found = _locate(item, f"{path}[{i}]")
            if found:
                return found
    elif isinstance(value, float):
        return f"float at {path}: not allowed in a canonical record (use an int or a string)"
    elif isinstance(value, dt.datetime):
        return f"naive datetime at {path}: give a timezone-aware datetime"
    return f"unsupported type {type(value).__name__} at {path}"


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The canonical JSON bytes of ``record`` (see the module docstring for the rules).

    Raises ``ValueError`` for a float, a naive datetime, a non-string key or any other unsupported type
    (the message names the path, e.g. ``$.subjects[0].score``, never a value)."""
    if not isinstance(record, Mapping):
        raise ValueError("a record must be a mapping")
    try:
        plain = _plain(record)
    except (_Refused, RecursionError):
        raise ValueError(_locate(record, "$") or "record cannot be canonicalised") from None
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
