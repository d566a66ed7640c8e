"""Retention of a Merkle log: redact what is past its record class's period, never delete it.

Shared by the gateway's audit log (``familyctx gateway retention``) and each adapter's disclosure log
(``familyctx adapter retention``); docs/audit.md, "Retention". For each record class, entries recorded
more than ``retention_days[class]`` days before ``now`` are redacted with :meth:`.log.MerkleLog.redact`:
the payload is set to NULL and ``redacted_at`` is set, the leaf hash stays, so the tree, every signed
tree head and every proof still verify (``verify_log`` counts the redacted entries). In the same
transaction the owner's ``scrub_index`` callback removes the personal data of those entries' index rows,
so a record and its index lose their personal data together or not at all. Each batch also appends a
``redaction`` record (:mod:`.redaction`: the seqs, class, period and cut-off), which is what lets
``verify_log`` tell retention from a payload removed by hand.

Works in batches (:data:`BATCH` entries, one transaction each), is idempotent and may run while writers
append: each batch takes the write lock only for its own short transaction.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog.engine import READ_ONLY
from familyctx.auditlog.log import MerkleLog, as_utc
from familyctx.auditlog.tables import LogTables

__all__ = [
    "BATCH",
    "MAX_RETENTION_DAYS",
    "IndexScrubber",
    "RetentionReport",
    "apply_retention",
    "check_retention_days",
    "count_due",
    "cutoffs",
]

log = logging.getLogger("familyctx.auditlog.retention")

#: Entries redacted per transaction.
BATCH = 1000
#: Longest retention period accepted (100 years): a bound that keeps ``now - days`` a valid date.
MAX_RETENTION_DAYS = 36500

#: Called inside each batch's transaction with the sequence numbers just redacted (at most :data:`BATCH`):
#: removes the personal data of their index rows.
IndexScrubber = Callable[[sa.Connection, list[int]], None]


@dataclass(slots=True)
class RetentionReport:
    """Entries redacted (or, in a dry run, due for redaction) per record class (``redacted``), the cut-off
    time used for each class (``cutoffs``, UTC: entries recorded before it are past their period)."""

    redacted: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, dt.datetime] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        """Entries redacted (or due) over all classes."""
        return sum(self.redacted.values())


def check_retention_days(value: Any, classes: Iterable[str], default_days: int) -> dict[str, int]:
    """Validate a ``retention_days`` setting (``{record_class: days}``) and fill in the classes it leaves
    out with ``default_days``, so that a file may set only the class it changes.

    Raises ``ValueError`` (for pydantic to report against the setting) for a value that is not a mapping,
    an unknown record class (naming the known ones), or a period that is not a whole number of days from
    1 to :data:`MAX_RETENTION_DAYS` (``true``/``false`` are refused, not read as 1/0; ``"30"`` from an
    environment variable is read as 30)."""
    known = list(classes)
    if not isinstance(value, Mapping):
        raise ValueError(f"must map record classes ({', '.join(known)}) to days")
    out: dict[str, int] = dict.fromkeys(known, default_days)
    for name, days in value.items():
        if name not in known:
            raise ValueError(f"unknown record class {name!r}; the classes are {', '.join(known)}")
        if isinstance(days, bool) or not isinstance(days, int | str):
            raise ValueError(f"{name}: must be a whole number of days")
        try:
            number = int(days)
        except ValueError:
            raise ValueError(f"{name}: must be a whole number of days") from None
        if not 1 <= number <= MAX_RETENTION_DAYS:
            raise ValueError(f"{name}: must be from 1 to {MAX_RETENTION_DAYS} days, not {number}")
        out[name] = number
    return out


def cutoffs(retention_days: Mapping[str, int], now: dt.datetime) -> dict[str, dt.datetime]:
    """The cut-off time (UTC) of each record class at ``now``: ``now - days``. Raises ``ValueError`` for a
    period shorter than one day (retention never redacts what was recorded today)."""
    moment = as_utc(now)
    short = sorted(name for name, days in retention_days.items() if days < 1)
    if short:
        raise ValueError(f"retention of {short[0]} must be at least 1 day")
    return {name: moment - dt.timedelta(days=days) for name, days in sorted(retention_days.items())}


def _due_where(tables: LogTables, record_class: str, cutoff: dt.datetime) -> sa.ColumnElement[bool]:
    e = tables.entries
    return sa.and_(e.c.record_class == record_class, e.c.recorded_at < cutoff, e.c.payload.is_not(None))


def count_due(
    engine: sa.Engine,
    tables: LogTables,
    retention_days: Mapping[str, int],
    *,
    now: dt.datetime | None = None,
) -> dict[str, int]:
    """How many entries of each class in ``retention_days`` are past their period at ``now`` (default:
    now, UTC) and not yet redacted. Read-only (never takes SQLite's write lock)."""
    limits = cutoffs(retention_days, now or dt.datetime.now(dt.UTC))
    counts = {}
    with engine.connect().execution_options(**READ_ONLY) as conn:
        for record_class, cutoff in limits.items():
            query = sa.select(sa.func.count()).select_from(tables.entries)
            query = query.where(_due_where(tables, record_class, cutoff))
            counts[record_class] = int(conn.execute(query).scalar_one())
    return counts


def apply_retention(
    engine: sa.Engine,
    tables: LogTables,
    retention_days: Mapping[str, int],
    *,
    scrub_index: IndexScrubber | None = None,
    now: dt.datetime | None = None,
    dry_run: bool = False,
    batch: int = BATCH,
) -> RetentionReport:
    """Redact every entry of ``tables`` past its class's period at ``now`` (default: now, UTC), calling
    ``scrub_index`` in each batch's transaction (module docstring). ``retention_days``: ``{class: days}``
    (classes not named are kept for ever); ``dry_run``: count only (:func:`count_due`), change nothing.

    Returns a :class:`RetentionReport`. Raises ``ValueError`` for a period under one day, SQLAlchemy
    errors when the database fails (batches already committed stay redacted; run it again)."""
    moment = as_utc(now or dt.datetime.now(dt.UTC))
    report = RetentionReport(cutoffs=cutoffs(retention_days, moment), dry_run=dry_run)
    if dry_run:
        report.redacted = count_due(engine, tables, retention_days, now=moment)
        return report
    merkle = MerkleLog(engine, tables)
    e = tables.entries
    for record_class, cutoff in report.cutoffs.items():
        done = 0
        while True:
            with engine.begin() as conn:
                query = sa.select(e.c.seq).where(_due_where(tables, record_class, cutoff))
                seqs = [int(s) for s in conn.execute(query.order_by(e.c.seq).limit(batch)).scalars()]
                if not seqs:
                    break
                done += merkle.redact(
                    conn,
                    seqs,
                    record_class=record_class,
                    cutoff=cutoff,
                    retention_days=retention_days[record_class],
                )
                if scrub_index is not None:
                    scrub_index(conn, seqs)
        report.redacted[record_class] = done
        if done:
            log.info(
                "retention log=%s record_class=%s redacted=%d days=%d",
                tables.prefix,
                record_class,
                done,
                retention_days[record_class],
            )
    return report
