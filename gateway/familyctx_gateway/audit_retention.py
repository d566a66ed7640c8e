"""Retention of the gateway's audit log: redaction, never deletion (docs/audit.md, "Retention").

For each record class, entries recorded more than ``audit.retention_days[class]`` days ago are
redacted: the log entry's payload (the record) is set to NULL and ``redacted_at`` is set, but its leaf
hash stays, so the Merkle tree, every signed tree head and every proof still verify
(:meth:`familyctx.auditlog.MerkleLog.redact`; ``verify_log`` counts redacted entries). In the same
transaction the personal data in the index is removed: the entry's ``audit_subjects`` rows are deleted,
``audit_events`` keeps only what is not personal (time, organisation, role, purpose, endpoint,
outcome, status, break-glass flag, council states) and loses user, name, client, token id, case
reference and trace id; a ``break_glass`` record's grant, notifications and reviews are deleted, and an
``ig_access`` record's review row (reviewer and note). Each batch also appends a ``redaction`` record
to the log (:mod:`familyctx.auditlog.redaction`), so ``familyctx audit verify`` can tell retention from
a payload removed by hand.

Run it daily (``familyctx gateway retention --config X``, e.g. a Kubernetes CronJob); it is
idempotent, works in batches (one transaction each) and may run while gateways append. The batching
and redaction are :mod:`familyctx.auditlog.retention` (shared with the adapters' disclosure logs); this
module adds the gateway's index scrubbing.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from familyctx.auditlog import retention
from familyctx.auditlog.retention import RetentionReport
from familyctx_gateway.audit_schema import (
    audit_events,
    audit_log_tables,
    audit_reviews,
    audit_subjects,
    break_glass_grants,
    break_glass_notifications,
)
from familyctx_gateway.settings import AuditSettings

__all__ = ["PERSONAL_EVENT_COLUMNS", "RetentionReport", "apply_retention", "due_for_redaction"]

#: audit_events columns that identify a person, cleared when the record is redacted.
PERSONAL_EVENT_COLUMNS = ("user_sub", "user_name", "client", "jti", "case_reference", "trace_id")


def due_for_redaction(
    engine: sa.Engine, settings: AuditSettings, *, now: dt.datetime | None = None
) -> dict[str, int]:
    """How many entries of each class are past their retention period at ``now`` (default: now, UTC)."""
    return retention.count_due(engine, audit_log_tables, settings.retention_days, now=now)


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
    # a review's own record (ig_access) redacted: its reviewer and note go with it
    conn.execute(audit_reviews.delete().where(audit_reviews.c.seq.in_(seqs)))
    conn.execute(
        audit_events.update()
        .where(audit_events.c.seq.in_(seqs))
        .values(dict.fromkeys(PERSONAL_EVENT_COLUMNS))
    )


def apply_retention(
    engine: sa.Engine, settings: AuditSettings, *, now: dt.datetime | None = None, dry_run: bool = False
) -> RetentionReport:
    """Redact every entry past its class's retention period at ``now`` (default: now, UTC), with its
    personal index data (module docstring). ``dry_run``: count only. Raises SQLAlchemy errors when the
    database fails (batches already committed stay redacted; run it again)."""
    return retention.apply_retention(
        engine,
        audit_log_tables,
        settings.retention_days,
        scrub_index=_scrub_index,
        now=now,
        dry_run=dry_run,
    )
