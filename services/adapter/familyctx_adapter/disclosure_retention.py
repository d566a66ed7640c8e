"""Retention of a council adapter's disclosure log: redaction, never deletion (docs/audit.md, "Retention").

For each record class (``disclosure``, ``refusal``), records recorded more than
``disclosure_log.retention_days[class]`` days ago are redacted (:mod:`familyctx.auditlog.retention`,
shared with the gateway): the log entry's payload (the record) is set to NULL and ``redacted_at`` is
set, but its leaf hash stays, so the Merkle tree, every signed tree head and every proof still verify
(``familyctx audit verify`` counts redacted entries). In the same transaction the personal data of its
index rows goes: its ``disclosure_people`` rows are deleted, and ``disclosure_index`` keeps only what is
not personal (time, request id, method, outcome, the requester's organisation and role, purpose, break
glass flag, datasets released and withheld, counts, response hash) and loses the requester ``sub``,
client, case reference, assertion ``jti`` and local person ids (NULL,
:data:`~familyctx_adapter.disclosure_schema.PERSONAL_INDEX_COLUMNS`). Each batch also appends a
``redaction`` record listing what it redacted (:mod:`familyctx.auditlog.redaction`), so ``familyctx
audit verify`` can tell retention from a payload removed by hand.

Run it daily (``familyctx adapter retention --config X``, e.g. a Kubernetes CronJob); it is idempotent,
works in batches of 1,000 records (one transaction each) and may run while the adapter appends.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from familyctx.auditlog import retention
from familyctx.auditlog.retention import RetentionReport
from familyctx_adapter import disclosure_schema as schema
from familyctx_adapter.settings import DisclosureLogSettings

__all__ = ["RetentionReport", "apply_retention", "scrub_index"]


def scrub_index(conn: sa.Connection, seqs: list[int]) -> None:
    """Remove the personal data of the index rows of records ``seqs`` inside ``conn``'s transaction:
    delete their ``disclosure_people`` rows, set the personal ``disclosure_index`` columns to NULL."""
    people, index = schema.disclosure_people, schema.disclosure_index
    conn.execute(people.delete().where(people.c.seq.in_(seqs)))
    # sa.null(): a JSON column would store a Python None as the JSON value 'null', not SQL NULL.
    cleared = dict.fromkeys(schema.PERSONAL_INDEX_COLUMNS, sa.null())
    conn.execute(index.update().where(index.c.seq.in_(seqs)).values(cleared))


def apply_retention(
    engine: sa.Engine,
    section: DisclosureLogSettings,
    *,
    now: dt.datetime | None = None,
    dry_run: bool = False,
) -> RetentionReport:
    """Redact every disclosure log record past its class's period (``section.retention_days``) at ``now``
    (default: now, UTC), with the personal data of its index rows (module docstring). ``engine``: the
    disclosure log database, schema at head. ``dry_run``: count only, change nothing.

    Returns the :class:`~familyctx.auditlog.retention.RetentionReport` (per class: redacted, or due).
    Raises SQLAlchemy errors when the database fails (batches already committed stay redacted; run it
    again)."""
    return retention.apply_retention(
        engine, schema.log, section.retention_days, scrub_index=scrub_index, now=now, dry_run=dry_run
    )
