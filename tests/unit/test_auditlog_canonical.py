"""Canonical bytes of a log record (familyctx.auditlog.canonical)."""

from __future__ import annotations

import datetime as dt
import enum
import json

import pytest

from familyctx.auditlog.canonical import canonical_bytes, rfc3339_utc


class Outcome(enum.StrEnum):
    success = "success"


def test_keys_sorted_compact_utf8() -> None:
    record = {"b": 1, "a": {"z": [True, None], "y": "Siân"}, "c": Outcome.success}
    assert canonical_bytes(record) == '{"a":{"y":"Siân","z":[true,null]},"b":1,"c":"success"}'.encode()


def test_same_record_same_bytes_whatever_the_key_order() -> None:
    assert canonical_bytes({"x": 1, "y": 2}) == canonical_bytes({"y": 2, "x": 1})


def test_datetimes_are_rfc3339_utc_with_microseconds() -> None:
    bst = dt.timezone(dt.timedelta(hours=1))
    moment = dt.datetime(2026, 6, 1, 10, 30, 0, 5, tzinfo=bst)
    assert canonical_bytes({"at": moment}) == b'{"at":"2026-06-01T09:30:00.000005Z"}'
    assert rfc3339_utc(moment) == "2026-06-01T09:30:00.000005Z"
    assert canonical_bytes({"born": dt.date(2015, 2, 3)}) == b'{"born":"2015-02-03"}'


@pytest.mark.parametrize(
    ("record", "where"),
    [
        ({"score": 0.5}, r"\$\.score"),
        ({"subjects": [{"score": 1.0}]}, r"\$\.subjects\[0\]\.score"),
        ({"at": dt.datetime(2026, 1, 1)}, r"\$\.at"),  # naive: zone unknown
        ({"raw": b"\x00"}, r"\$\.raw"),
        ({"ids": {1, 2}}, r"\$\.ids"),
        ({"nested": {3: "x"}}, r"\$\.nested"),
    ],
)
def test_ambiguous_values_are_refused_naming_the_path(record: dict, where: str) -> None:
    with pytest.raises(ValueError, match=where):
        canonical_bytes(record)


def test_a_non_mapping_is_refused() -> None:
    with pytest.raises(ValueError, match="mapping"):
        canonical_bytes(["a"])  # type: ignore[arg-type]


def test_error_messages_never_contain_values() -> None:
    with pytest.raises(ValueError) as info:
        canonical_bytes({"nhs_number": 943.4765919})
    assert "943" not in str(info.value)


def test_output_parses_back_to_the_same_data() -> None:
    record = {"name": "Zoë O'Brien", "n": 2**70, "list": [1, "two", False]}
    assert json.loads(canonical_bytes(record)) == record
