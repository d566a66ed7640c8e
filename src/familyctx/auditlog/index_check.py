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
import functools
import json
import operator
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
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


def _stream(conn: sa.Connection, table: sa.Table, batch: int) -> tuple[list[str], Iterator[Sequence[Any]]]:
    """``table``'s column names and its rows in ``seq`` order, as tuples in that column order."""
    query = sa.select(table).order_by(table.c.seq)
    result = conn.execute(query.execution_options(stream_results=True, yield_per=batch))

    def rows() -> Iterator[Sequence[Any]]:
        try:
            for part in result.partitions(batch):
                yield from part
        finally:
            result.close()

    return list(result.keys()), rows()


#: Python types whose values compare (``==``) exactly as their JSON text does, kept as they are in keys.
_PLAIN = (str, int, type(None))
_TRUE, _FALSE = ("json", "true"), ("json", "false")


def _key_value(value: Any) -> Any:
    """A hashable stand-in for ``value`` such that two values get equal stand-ins exactly when the JSON
    texts of their :func:`normalise` forms (``default=str``) are equal: strings, ints and None as they
    are; what normalises to text as that text; anything else (bools, floats, tuples, types JSON
    renders with ``str``) decoded back to a string or int where its text is one, else tagged
    ``("json", text)`` so that it equals no plain value (``True == 1`` and ``1.0 == 1`` in Python)."""
    if type(value) in _PLAIN:
        return value
    if type(value) is bool:
        return _TRUE if value else _FALSE
    if type(value) is dt.datetime:
        utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        return utc.isoformat()
    normal = normalise(value)
    if type(normal) is str:
        return normal
    text = json.dumps(normal, default=str)
    if text.startswith('"'):
        return json.loads(text)
    if text.lstrip("-").isdigit():
        return int(text)
    return ("json", text)


def _columns(rows: list[Row], ignored: frozenset[str]) -> tuple[str, ...]:
    """The compared columns of ``rows`` (every column any row names, minus ``ignored``), sorted; cached
    per shape, as a table's rows nearly always name the same columns."""
    first = rows[0].keys()
    if any(row.keys() != first for row in rows[1:]):
        return tuple(sorted({c for row in rows for c in row} - ignored))
    return _sorted_columns(tuple(first), ignored)


@functools.lru_cache(maxsize=256)
def _sorted_columns(names: tuple[str, ...], ignored: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted(set(names) - ignored))


def _row_keys(rows: list[Row], columns: tuple[str, ...]) -> list[tuple[Any, ...]]:
    """Each row of ``rows`` as a hashable tuple of its :func:`_key_value` column values (a column a row
    lacks counts as None): equal tuples exactly when the rows' normalised values are equal."""
    plain, key_value = _PLAIN, _key_value
    return [tuple([v if type(v) in plain else key_value(v) for v in map(row.get, columns)]) for row in rows]


def rows_differ(expected: list[Row], actual: list[Row], ignored: frozenset[str] = frozenset({"id"})) -> bool:
    """True unless ``actual`` holds exactly the rows of ``expected`` (as multisets, compared on the
    columns ``expected`` names, minus ``ignored``)."""
    if len(expected) != len(actual):
        return True
    if not expected:
        return False
    columns = _columns(expected, ignored)
    want, have = _row_keys(expected, columns), _row_keys(actual, columns)
    return _keys_differ(want, have)


def _keys_differ(want: list[tuple[Any, ...]], have: list[tuple[Any, ...]]) -> bool:
    """Whether two equally long lists of row keys differ as multisets."""
    if want == have:  # the usual case: stored in the order the record gives them
        return False
    return len(want) == 1 or Counter(want) != Counter(have)


class IndexWalk:
    """Drives an :class:`IndexChecker` beside ``verify_log``'s pass over the entries."""

    def __init__(self, checker: IndexChecker, conn: sa.Connection, batch: int) -> None:
        self.checker = checker
        self.findings: list[IndexFinding] = []
        streams = [_stream(conn, t, batch) for t in checker.tables]
        self._names = [names for names, _ in streams]
        self._seq_at = [names.index("seq") for names in self._names]
        self._streams = [(t, rows) for t, (_, rows) in zip(checker.tables, streams, strict=True)]
        self._heads: list[Sequence[Any] | None] = [next(rows, None) for _, rows in self._streams]
        self._getters: list[dict[tuple[str, ...], Callable[[Sequence[Any]], Sequence[Any]] | None]] = [
            {} for _ in streams
        ]

    def _take(self, seq: int | None) -> list[list[Sequence[Any]]]:
        """Rows with a seq below ``seq`` are orphans (reported); returns the rows of ``seq`` for each
        table (as tuples in the table's column order; None: all remaining rows are orphans)."""
        taken = []
        for i, (table, stream) in enumerate(self._streams):
            head, at = self._heads[i], self._seq_at[i]
            while head is not None and (seq is None or head[at] < seq):
                self.findings.append((int(head[at]), f"{table.name}: row without a log entry"))
                head = next(stream, None)
            rows = []
            while head is not None and seq is not None and head[at] == seq:
                rows.append(head)
                head = next(stream, None)
            self._heads[i] = head
            taken.append(rows)
        return taken

    def _getter(self, i: int, columns: tuple[str, ...]) -> Callable[[Sequence[Any]], Sequence[Any]] | None:
        """Picks ``columns`` out of a row of table ``i``; None when the table lacks one of them."""
        getters = self._getters[i]
        if columns not in getters:
            names = self._names[i]
            if not set(columns) <= set(names):
                getters[columns] = None
            elif len(columns) == 1:
                at = names.index(columns[0])
                getters[columns] = lambda row: (row[at],)
            else:
                getters[columns] = operator.itemgetter(*(names.index(c) for c in columns))
        return getters[columns]

    def _differ(self, i: int, expected: list[Row], actual: list[Sequence[Any]]) -> bool:
        """:func:`rows_differ` for the stored rows ``actual`` of table ``i`` (tuples)."""
        if len(expected) != len(actual):
            return True
        if not expected:
            return False
        columns = _columns(expected, self.checker.ignored)
        getter = self._getter(i, columns)
        if getter is None:  # a column the table does not have: compared as None
            return rows_differ(expected, self._dicts(i, actual), self.checker.ignored)
        plain, key_value = _PLAIN, _key_value
        have = [tuple([v if type(v) in plain else key_value(v) for v in getter(row)]) for row in actual]
        return _keys_differ(_row_keys(expected, columns), have)

    def _dicts(self, i: int, rows: list[Sequence[Any]]) -> list[Row]:
        names = self._names[i]
        return [dict(zip(names, row, strict=True)) for row in rows]

    def entry(self, seq: int, record_class: str, record: Mapping[str, Any] | None, state: str) -> None:
        """One entry, in seq order. ``state``: ``intact`` (``record`` given), ``redacted``, or
        ``unreadable`` (edited: reported as such, its index rows are not judged)."""
        actual = self._take(seq)
        if state == "unreadable":
            return
        tables = self.checker.tables
        if state == "redacted":
            stored = {t: self._dicts(i, rows) for i, (t, rows) in enumerate(zip(tables, actual, strict=True))}
            reason = self.checker.redacted(seq, record_class, stored)
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
            t.name for i, t in enumerate(tables) if self._differ(i, list(expected.get(t, [])), actual[i])
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
