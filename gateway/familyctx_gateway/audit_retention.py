"""Retention of the gateway's audit log: redaction, never deletion (docs/audit.md, "Retention").

For each record class, entries recorded more than ``audit.retention_days[class]`` days ago are
redacted: the log entry's payload (the record) is set to NULL and ``redacted_at`` is set, but its leaf
hash stays, so the Merkle tree, every signed tree head and every proof still verify
(:meth:`familyctx.auditlog.MerkleLog.redact`; ``verify_log`` counts redacted entries). In the same
transaction the personal data in the index is removed: the entry's ``audit_subjects`` rows are deleted,
``audit_events`` keeps only what is not personal (time, organisation, role, purpose, endpoint,
outcome, status, break-glass flag, council states) and loses user, name, client, token id, case
reference and trace id; a ``break_glass`` record's grant, notifications and reviews are deleted.

Run it daily (``familyctx gateway retention --config X``, e.g. a Kubernetes CronJob); it is
idempotent, works in batches (one transaction each) and may run while gateways append.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

import sqlalchemy as sa

from familyctx.auditlog import READ_ONLY, MerkleLog
from familyctx.auditlog.log import as_utc
from familyctx_gateway.audit_schema import (
    audit_events,
    audit_log_tables,
    audit_reviews,
    audit_subjects,
    break_glass_grants,
    break_glass_notifications,
)
from familyctx_gateway.settings import AuditSettings

__all__ = ["RetentionReport", "apply_retention", "due_for_redaction"]

log = logging.getLogger("familyctx_gateway.audit_retention")

#: Entries redacted per transaction.
BATCH = 1000

#: audit_events columns that identify a person, cleared when the record is redacted.
_PERSONAL_EVENT_COLUMNS = ("user_sub", "user_name", "client", "jti", "case_reference", "trace_id")


@dataclass(slots=True)
class RetentionReport:
    """Entries redacted per record class (``redacted``), and the cut-off time used for each (UTC)."""

    redacted: dict[str, int] = field(default_factory=dict)
    cutoffs: dict[str, dt.datetime] = field(default_factory=dict)
    dry_run: bool = False

    @property
    def total(self) -> int:
        return sum(self.redacted.values())


def _due(conn: sa.Connection, record_class: str, cutoff: dt.datetime, limit: int) -> list[int]:
    e = audit_log_tables.entries
    query = (
        sa.select(e.c.seq)
        .where(e.c.record_class == record_class, e.c.recorded_at < cutoff, e.c.payload.is_not(None))
        .order_by(e.c.seq)
        .limit(limit)
    )
    return [int(seq) for seq in conn.execute(query).scalars()]


def due_for_redaction(
    engine: sa.Engine, settings: AuditSettings, *, now: dt.datetime | None = None
) -> dict[str, int]:
    """How many entries of each class are past their retention period at ``now`` (default: now, UTC)."""
    moment = as_utc(now or dt.datetime.now(dt.UTC))
    e = audit_log_tables.entries
    counts = {}
    with engine.connect().execution_options(**READ_ONLY) as conn:
        for record_class, days in sorted(settings.retention_days.items()):
            cutoff = moment - dt.timedelta(days=days)
            query = sa.select(sa.func.count()).where(
                e.c.record_class == record_class, e.c.recorded_at < cutoff, e.c.payload.is_not(None)
            )
            counts[record_class] = int(conn.execute(query).scalar_one())
    return counts


def _scrub_index(conn: sa.Connection, seqs: list[int]) -> None:
    grant_ids = [
        gid
        for gid in conn.execute(
            sa.select(audit_events.c.break_glass_id).where(
                audit_events.c.seq.in_(seqs),
                audit_events.c.record_class == "break_glass",
                audit_events.c.break_glass_id.is_not(None),
            )
        ).scalars()
    ]
    if grant_ids:
        conn.execute(audit_reviews.delete().where(audit_reviews.c.grant_id.in_(grant_ids)))
        conn.execute(
            break_glass_notifications.delete().where(break_glass_notifications.c.grant_id.in_(grant_ids))
        )
        conn.execute(break_glass_grants.delete().where(break_glass_grants.c.id.in_(grant_ids)))
    conn.execute(audit_subjects.delete().where(audit_subjects.c.seq.in_(seqs)))
    conn.execute(
        audit_events.update()
        .where(audit_events.c.seq.in_(seqs))
        .values(dict.fromkeys(_PERSONAL_EVENT_COLUMNS))
    )


def apply_retention(
    engine: sa.Engine, settings: AuditSettings, *, now: dt.datetime | None = None, dry_run: bool = False
) -> RetentionReport:
    """Redact every entry past its class's retention period at ``now`` (default: now, UTC), with its
    personal index data (module docstring). ``dry_run``: count only. Raises SQLAlchemy errors when the
    database fails (batches already committed stay redacted; run it again)."""
    moment = as_utc(now or dt.datetime.now(dt.UTC))
    report = RetentionReport(dry_run=dry_run)
    if dry_run:
        report.redacted = due_for_redaction(engine, settings, now=moment)
        report.cutoffs = {c: moment - dt.timedelta(days=d) for c, d in settings.retention_days.items()}
        return report
    merkle = MerkleLog(engine, audit_log_tables)
    for record_class, days in sorted(settings.retention_days.items()):
        cutoff = moment - dt.timedelta(days=days)
        report.cutoffs[record_class] = cutoff
        done = 0
        while True:
            with engine.begin() as conn:
                seqs = _due(conn, record_class, cutoff, BATCH)
                if not seqs:
                    break
                done += merkle.redact(conn, seqs)
                _scrub_index(conn, seqs)
        report.redacted[record_class] = done
        if done:
            log.info("audit retention record_class=%s redacted=%d days=%d", record_class, done, days)
    return report
