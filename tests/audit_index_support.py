"""Write audit log entries with their index rows, as the gateway does, for the IG API's tests.

:func:`audit_metadata` is the gateway's audit metadata (:mod:`familyctx_gateway.audit_schema`);
:class:`IndexWriter` builds a real :class:`~familyctx_gateway.audit_record.AuditEvent`, appends its
payload to the Merkle log (:class:`familyctx.auditlog.log.MerkleLog`) and inserts the index rows
:func:`~familyctx_gateway.audit_record.index_rows` derives from it, in one transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from familyctx_gateway.audit_record import (
    AuditEvent,
    AuditOutcome,
    CouncilOutcome,
    RecordClass,
    Subject,
    SubjectKind,
    audit_payload,
    index_rows,
)
from familyctx_gateway.audit_schema import audit_log_tables, metadata

from familyctx.auditlog.log import MerkleLog

__all__ = ["IndexWriter", "audit_metadata"]


def audit_metadata() -> sa.MetaData:
    """The gateway's audit tables."""
    return metadata


def _subject(data: dict[str, Any]) -> Subject:
    values = dict(data)
    kind = SubjectKind(values.pop("kind", "returned" if "local_person_id" in values else "searched_for"))
    born = values.pop("date_of_birth", None)
    return Subject(kind, date_of_birth=born.isoformat() if born else None, **values)


class IndexWriter:
    """Appends records with their index rows to the audit log on ``engine`` (seq 0, 1, 2, ...)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self.log = MerkleLog(engine, audit_log_tables)

    def append(self, event: AuditEvent) -> int:
        """Append ``event`` with its index rows; returns its ``seq``."""
        payload = audit_payload(event)
        with self.engine.begin() as conn:
            [seq] = self.log.append(conn, [(event.record_class.value, payload)])
            for table, rows in index_rows(seq, payload).items():
                if rows:
                    conn.execute(table.insert(), rows)
        return seq

    def add(
        self,
        *,
        user: str = "sw.stockport",
        user_name: str = "Sam Walker",
        organisation: str = "E08000007",
        at: dt.datetime | None = None,
        record_class: str = "access",
        purpose: str | None = "s47_enquiry",
        case_reference: str | None = "CASE-2026-0042",
        outcome: str = "success",
        http_status: int = 200,
        break_glass: bool = False,
        break_glass_id: str | None = None,
        endpoint: str = "POST /v1/searches",
        subjects: list[dict[str, Any]] | None = None,
        councils: dict[str, str] | None = None,
        **extra: Any,
    ) -> int:
        """Add one record; returns its ``seq``. ``subjects``: dicts of :class:`Subject` fields
        (``date_of_birth`` a date; ``kind`` defaults to returned when a local id is given)."""
        event = AuditEvent(
            request_id=f"req-{user}-{id(object())}",
            user_sub=f"user-{user}",
            user_name=user_name,
            organisation=organisation,
            roles=["social_worker"],
            client="familyctx-cli",
            jti="jti",
            endpoint=endpoint,
            outcome=AuditOutcome(outcome),
            http_status=http_status,
            record_class=RecordClass(record_class),
            purpose=purpose,
            case_reference=case_reference,
            role="social_worker",
            break_glass=break_glass,
            break_glass_id=break_glass_id,
            subjects=[_subject(s) for s in subjects or []],
            councils=[CouncilOutcome(gss, state) for gss, state in (councils or {}).items()],
            occurred_at=at or dt.datetime(2026, 5, 4, 12, 0, tzinfo=dt.UTC),
            **extra,
        )
        return self.append(event)
