"""Checking a log owner's index tables against the log: the rows each entry's record says should exist.

The gateway and the adapters keep index tables beside their log (who, whose, when; the rows the IG API
and subject access reports read), written from each record alone in the record's own transaction. An
edit to them changes what an IG officer is shown without touching the log, so ``verify_log`` takes an
:class:`IndexChecker` (one per log owner) and, in the same pass and read snapshot, rebuilds the expected
rows from every intact entry's record and compares them with the stored ones: rows edited, deleted, or
added without a log entry are reported as ``index_mismatch`` (first seq, count of entries affected).

Tables keyed by ``seq`` (:attr:`IndexChecker.tables`) are streamed in ``seq`` order beside the entries
(memory O(rows of one entry)); other tables (e.g. the gateway's break-glass grants) are the owner's
:meth:`IndexChecker.finish`. For a redacted entry the record is gone: :meth:`IndexChecker.redacted` checks
that what remains is what retention leaves (personal columns cleared, personal rows deleted).
Entries of class ``redaction`` have no index rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

__all__ = ["IndexChecker", "IndexFinding", "IndexWalk", "normalise"]

#: ``(seq or None, detail)``: one index problem (detail: table names and counts only).
IndexFinding = tuple[int | None, str]
Row = dict[str, Any]


def normalise(value: Any) -> Any:
    """A comparable form of a column value, the same whether it came from a record or from either
    database: times as RFC 3339 UTC (naive ones taken as UTC), dates ISO, JSON values as canonical text,
    bytes as hex."""
    if isinstance(value, dt.datetime):
        utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return utc.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | dict):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    return value


class IndexChecker:
    """What one log owner's index should hold (subclass it; see the module docstring).

    ``tables``: index tables with a ``seq`` column, compared for each entry; ``ignored``: columns never
    compared (e.g. autoincrement ids)."""

    tables: Sequence[sa.Table] = ()
    ignored: frozenset[str] = frozenset({"id"})

    def expected(
        self, seq: int, record_class: str, record: Mapping[str, Any]
    ) -> Mapping[sa.Table, list[Row]]:
        """The rows of :attr:`tables` that the intact entry ``seq`` gives (tables not named: none).
        May raise ``KeyError``/``TypeError``/``ValueError`` for a record it cannot index (reported)."""
        raise NotImplementedError

    def redacted(self, seq: int, record_class: str, actual: Mapping[sa.Table, list[Row]]) -> str | None:
        """None when ``actual`` (the stored rows of :attr:`tables` for the redacted entry ``seq``) is what
        retention leaves; otherwise why not (no personal data in the text)."""
        raise NotImplementedError

    def finish(self, conn: sa.Connection) -> list[IndexFinding]:
        """Checks of tables not keyed by seq, after every entry was seen (same snapshot)."""
        return []


def _stream(conn: sa.Connection, table: sa.Table, batch: int) -> Iterator[Row]:
    query = sa.select(table).order_by(table.c.seq)
    result = conn.execute(query.execution_options(stream_results=True, yield_per=batch))
    try:
        for part in result.partitions(batch):
            for row in part:
                yield dict(row._mapping)
    finally:
        result.close()


def rows_differ(expected: list[Row], actual: list[Row], ignored: frozenset[str] = frozenset({"id"})) -> bool:
    """True unless ``actual`` holds exactly the rows of ``expected`` (as multisets, compared on the
    columns ``expected`` names, minus ``ignored``)."""
    if len(expected) != len(actual):
        return True
    if not expected:
        return False
    columns = sorted({c for row in expected for c in row} - ignored)

    def key(row: Row) -> str:
        return json.dumps([normalise(row.get(c)) for c in columns], default=str)

    return sorted(map(key, expected)) != sorted(map(key, actual))


class IndexWalk:
    """Drives an :class:`IndexChecker` beside ``verify_log``'s pass over the entries."""

    def __init__(self, checker: IndexChecker, conn: sa.Connection, batch: int) -> None:
        self.checker = checker
        self.findings: list[IndexFinding] = []
        self._streams = [(t, _stream(conn, t, batch)) for t in checker.tables]
        self._heads: list[Row | None] = [next(s, None) for _, s in self._streams]

    def _take(self, seq: int | None) -> dict[sa.Table, list[Row]]:
        """Rows with a seq below ``seq`` are orphans (reported); returns the rows of ``seq`` (None: all
        remaining rows are orphans)."""
        taken: dict[sa.Table, list[Row]] = {}
        for i, (table, stream) in enumerate(self._streams):
            head = self._heads[i]
            while head is not None and (seq is None or head["seq"] < seq):
                self.findings.append((int(head["seq"]), f"{table.name}: row without a log entry"))
                head = next(stream, None)
            rows = []
            while head is not None and seq is not None and head["seq"] == seq:
                rows.append(head)
                head = next(stream, None)
            self._heads[i] = head
            taken[table] = rows
        return taken

    def entry(self, seq: int, record_class: str, record: Mapping[str, Any] | None, state: str) -> None:
        """One entry, in seq order. ``state``: ``intact`` (``record`` given), ``redacted``, or
        ``unreadable`` (edited: reported as such, its index rows are not judged)."""
        actual = self._take(seq)
        if state == "unreadable":
            return
        if state == "redacted":
            reason = self.checker.redacted(seq, record_class, actual)
            if reason is not None:
                self.findings.append((seq, reason))
            return
        try:
            expected = (
                self.checker.expected(seq, record_class, record or {}) if record_class != "redaction" else {}
            )
        except (KeyError, TypeError, ValueError, AttributeError):
            self.findings.append((seq, "the record cannot be indexed"))
            return
        differing = [
            t.name
            for t in self.checker.tables
            if rows_differ(list(expected.get(t, [])), actual[t], self.checker.ignored)
        ]
        if differing:
            self.findings.append((seq, f"{', '.join(differing)}: rows differ from the record"))

    def finish(self, conn: sa.Connection) -> None:
        """Rows beyond the last entry, then the owner's own checks."""
        self._take(None)
        self.findings.extend(self.checker.finish(conn))

    def close(self) -> None:
        """Close the streams (before the connection closes)."""
        for _, stream in self._streams:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
