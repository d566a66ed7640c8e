"""A council adapter's disclosure index checked against its disclosure log (``familyctx audit verify``).

``disclosure_index`` (one row per record) and ``disclosure_people`` (one row per person released) are
what a council's subject access and IG searches read. :func:`index_rows` builds them from a record alone
(the adapter's writer, :func:`familyctx_adapter.disclosure.write_index`, uses it too), and
:class:`DisclosureIndexChecker` lets ``verify_log`` rebuild them from every intact record and compare
(``index_mismatch``: rows edited, deleted, or added without a log entry).

A redacted record (:mod:`familyctx_adapter.disclosure_retention`) must keep its ``disclosure_index`` row
with the personal columns (:data:`~familyctx_adapter.disclosure_schema.PERSONAL_INDEX_COLUMNS`) NULL and
no ``disclosure_people`` rows; the other columns of that row cannot be checked once the record is gone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog.index_check import IndexChecker
from familyctx_adapter import disclosure_schema as schema

__all__ = ["DisclosureIndexChecker", "index_rows"]

Row = dict[str, Any]


def _time(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).astimezone(dt.UTC)


def index_rows(seq: int, record: Mapping[str, Any]) -> dict[sa.Table, list[Row]]:
    """The ``disclosure_index`` and ``disclosure_people`` rows of record ``seq`` (as
    :func:`familyctx_adapter.disclosure_record.disclosure_record` makes it, or as decoded from the log:
    ``occurred_at`` a datetime or RFC 3339 text). Raises ``KeyError``/``TypeError`` for another shape."""
    requester, released = record["requester"], record["released"]
    index = {
        "seq": seq,
        "occurred_at": _time(record["occurred_at"]),
        "request_id": record["request_id"][:128],
        "method": record["method"],
        "outcome": record["outcome"],
        "requester_sub": requester["sub"][:255],
        "requester_organisation": requester["organisation"][:16],
        "requester_role": requester["role"][:40],
        "client": requester["client"][:255],
        "purpose": record["purpose"][:40],
        "case_reference": record["case_reference"][:255],
        "break_glass": bool(record["break_glass"]),
        "assertion_jti": record["assertion"]["jti"][:128],
        "local_person_ids": list(released["local_person_ids"]),
        "datasets_released": list(released["datasets_released"]),
        "datasets_withheld": list(released["datasets_withheld"]),
        "people": int(released["people"]),
        "involvements": int(released["involvements"]),
        "response_sha256": record["response_sha256"],
    }
    people = [{"seq": seq, "local_person_id": pid[:128]} for pid in released["local_person_ids"]]
    return {schema.disclosure_index: [index], schema.disclosure_people: people}


class DisclosureIndexChecker(IndexChecker):
    """:class:`~familyctx.auditlog.index_check.IndexChecker` for a disclosure log (module docstring)."""

    tables = (schema.disclosure_index, schema.disclosure_people)

    def expected(self, seq: int, record_class: str, record: Mapping[str, Any]) -> dict[sa.Table, list[Row]]:
        """The rows ``record`` gives."""
        return index_rows(seq, record)

    def redacted(self, seq: int, record_class: str, actual: Mapping[sa.Table, list[Row]]) -> str | None:
        """What retention leaves of a redacted record."""
        rows = actual[schema.disclosure_index]
        if len(rows) != 1:
            return "disclosure_index: the redacted record's row is missing or repeated"
        if any(rows[0][c] is not None for c in schema.PERSONAL_INDEX_COLUMNS):
            return "disclosure_index: the redacted record's row still holds personal data"
        if actual[schema.disclosure_people]:
            return "disclosure_people: rows left for a redacted record"
        return None
