"""The gateway's index tables checked against its audit log (``familyctx audit verify``, ``index_mismatch``).

The IG API and subject access reports read ``audit_events``, ``audit_subjects``, ``audit_councils``,
``audit_reviews`` and the break-glass grant and notification rows, all written from each record alone
(:func:`~familyctx_gateway.audit_record.index_rows`, cut to the columns' lengths as the writer does). This
checker rebuilds them from every intact record and compares (:mod:`familyctx.auditlog.index_check`).

Redacted records (:mod:`familyctx_gateway.audit_retention`): the ``audit_events`` row must remain, of the
entry's class, with its personal columns NULL; no ``audit_subjects`` row may remain. A redacted
``break_glass`` record's grant (its ``break_glass_id``, read from its remaining ``audit_events`` row) loses
its grant, notification and review rows. Grants carried over from a release before the log (named by
records marked ``migrated``) were kept as they were and are not checked. What remains of a redacted
record's ``audit_councils`` rows and non-personal columns cannot be checked: the record that would say
what they were is gone.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog.index_check import IndexChecker, IndexFinding, rows_differ
from familyctx_gateway.audit import _fit
from familyctx_gateway.audit_record import index_rows
from familyctx_gateway.audit_retention import PERSONAL_EVENT_COLUMNS
from familyctx_gateway.audit_schema import (
    audit_councils,
    audit_events,
    audit_reviews,
    audit_subjects,
    break_glass_grants,
    break_glass_notifications,
)

__all__ = ["GatewayIndexChecker"]

Row = dict[str, Any]
_BY_SEQ = (audit_events, audit_subjects, audit_councils)


class GatewayIndexChecker(IndexChecker):
    """:class:`~familyctx.auditlog.index_check.IndexChecker` for the gateway's audit database (module
    docstring). One instance per ``verify_log`` call: it gathers the grant, notification and review rows
    the records give and compares them with the tables in :meth:`finish`."""

    tables = _BY_SEQ

    def __init__(self) -> None:
        self._grants: list[tuple[int, Row]] = []
        self._notifications: list[tuple[int, Row]] = []
        self._reviews: list[tuple[int, Row]] = []
        self._dropped_grants: set[str] = set()
        self._migrated_grants: set[str] = set()

    def expected(self, seq: int, record_class: str, record: Mapping[str, Any]) -> dict[sa.Table, list[Row]]:
        """The rows ``record`` gives, as the gateway's writer stores them."""
        rows = {t: [_fit(t, r) for r in table_rows] for t, table_rows in index_rows(seq, record).items()}
        grant_id = (record.get("why") or {}).get("break_glass_id")
        if record.get("migrated") and grant_id:  # grants of earlier releases were kept as they were
            self._migrated_grants.add(str(grant_id))
        if rows[audit_events][0]["record_class"] != record_class:
            raise ValueError("the record's class differs from its entry's")
        self._grants += [(seq, r) for r in rows.pop(break_glass_grants, [])]
        self._notifications += [(seq, r) for r in rows.pop(break_glass_notifications, [])]
        self._reviews += [(seq, r) for r in rows.pop(audit_reviews, [])]
        return rows

    def redacted(self, seq: int, record_class: str, actual: Mapping[sa.Table, list[Row]]) -> str | None:
        """What retention leaves of a redacted record (module docstring)."""
        events = actual[audit_events]
        if len(events) != 1 or events[0]["record_class"] != record_class:
            return "audit_events: the redacted record's row is missing or edited"
        event = events[0]
        if any(event[c] is not None for c in PERSONAL_EVENT_COLUMNS):
            return "audit_events: the redacted record's row still holds personal data"
        if actual[audit_subjects]:
            return "audit_subjects: rows left for a redacted record"
        if record_class == "break_glass" and event["break_glass_id"] is not None:
            self._dropped_grants.add(str(event["break_glass_id"]))
        return None

    def finish(self, conn: sa.Connection) -> list[IndexFinding]:
        """Grants, notifications and reviews: exactly those of intact records, less retention's."""
        findings: list[IndexFinding] = []
        dropped = self._dropped_grants
        checks: list[tuple[sa.Table, str, list[tuple[int, Row]]]] = [
            (break_glass_grants, "id", self._grants),
            (break_glass_notifications, "grant_id", self._notifications),
            (audit_reviews, "grant_id", self._reviews),
        ]
        for table, grant_column, wanted in checks:
            expected = [(seq, r) for seq, r in wanted if str(r[grant_column]) not in dropped]
            actual = [dict(r._mapping) for r in conn.execute(sa.select(table))]
            actual = [r for r in actual if str(r[grant_column]) not in self._migrated_grants]
            findings += _compare(table, grant_column, expected, actual, dropped)
        return findings


def _compare(
    table: sa.Table, grant_column: str, expected: list[tuple[int, Row]], actual: list[Row], dropped: set[str]
) -> list[IndexFinding]:
    """Rows grouped by grant id; a differing group is reported at the seq of its first record."""
    want: dict[str, list[Row]] = {}
    seq_of: dict[str, int] = {}
    for seq, row in expected:
        key = str(row[grant_column])
        want.setdefault(key, []).append(row)
        seq_of[key] = min(seq, seq_of.get(key, seq))
    have: dict[str, list[Row]] = {}
    for row in actual:
        have.setdefault(str(row[grant_column]), []).append(row)
    findings: list[IndexFinding] = []
    for key in sorted(set(want) | set(have)):
        if rows_differ(want.get(key, []), have.get(key, [])):
            where = seq_of.get(key)
            if where is None and table is audit_reviews:
                where = min(int(r["seq"]) for r in have[key])
            if key in dropped:
                what = "rows left of a grant that retention removed"
            elif key in want:
                what = "rows differ from the records"
            else:
                what = "rows without a log entry"
            findings.append((where, f"{table.name}: {what}"))
    return findings
