"""Read back what the gateway committed to its audit log, through a separate engine (so only committed
rows are seen): each ``audit_events`` index row with its log entry's record decoded, and the subject and
council index rows. For tests and diagnostics; the IG API reads the same tables."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from familyctx.auditlog import READ_ONLY, VerifyReport, create_log_engine, verify_log
from familyctx_gateway.audit_schema import audit_councils, audit_events, audit_log_tables, audit_subjects

__all__ = ["committed_records", "flat_records", "verify_audit_log"]


def _engine(database: str | sa.Engine) -> tuple[sa.Engine, bool]:
    if isinstance(database, sa.Engine):
        return database, False
    return create_log_engine(database), True


def committed_records(database: str | sa.Engine, *, request_id: str | None = None) -> list[dict[str, Any]]:
    """Every committed record in log order (optionally only ``request_id``'s): the ``audit_events``
    columns, plus ``record`` (the stored payload, None once redacted), ``subjects`` (its
    ``audit_subjects`` rows) and ``councils`` (``{gss: state}`` from ``audit_councils``)."""
    engine, own = _engine(database)
    entries = audit_log_tables.entries
    query = (
        sa.select(audit_events, entries.c.payload)
        .join(entries, entries.c.seq == audit_events.c.seq)
        .order_by(audit_events.c.seq)
    )
    if request_id is not None:
        query = query.where(audit_events.c.request_id == request_id)
    try:
        with engine.connect().execution_options(**READ_ONLY) as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
            seqs = [r["seq"] for r in rows]
            subjects = conn.execute(
                sa.select(audit_subjects).where(audit_subjects.c.seq.in_(seqs)).order_by(audit_subjects.c.id)
            ).all()
            councils = conn.execute(sa.select(audit_councils).where(audit_councils.c.seq.in_(seqs))).all()
    finally:
        if own:
            engine.dispose()
    for row in rows:
        payload = row.pop("payload")
        row["record"] = json.loads(payload)["record"] if payload is not None else None
        row["subjects"] = [dict(s._mapping) for s in subjects if s.seq == row["seq"]]
        row["councils"] = {c.gss: c.state for c in councils if c.seq == row["seq"]}
    return rows


def flat_records(database: str | sa.Engine, *, request_id: str | None = None) -> list[dict[str, Any]]:
    """:func:`committed_records` with the record's most asked-for fields beside the index columns:
    ``roles`` (every role the token carried), ``query_terms`` (as sent) and ``subjects_returned``
    (``[{gss_code, local_person_id}]`` shown); empty when the record was redacted."""
    rows = committed_records(database, request_id=request_id)
    for row in rows:
        record = row["record"] or {}
        row["roles"] = list((record.get("who") or {}).get("roles") or [])
        row["query_terms"] = (record.get("what") or {}).get("query") or {}
        row["subjects_returned"] = [
            {"gss_code": s["gss_code"], "local_person_id": s["local_person_id"]}
            for s in record.get("whose") or []
            if s["kind"] == "returned"
        ]
    return rows


def verify_audit_log(database: str | sa.Engine, *, public_jwks: dict[str, Any] | None = None) -> VerifyReport:
    """:func:`familyctx.auditlog.verify_log` on the gateway's log at ``database``, its index tables
    included (:class:`~familyctx_gateway.audit_index_check.GatewayIndexChecker`)."""
    from familyctx_gateway.audit_index_check import GatewayIndexChecker

    engine, own = _engine(database)
    try:
        return verify_log(
            engine, audit_log_tables, public_jwks=public_jwks, index_checker=GatewayIndexChecker()
        )
    finally:
        if own:
            engine.dispose()
