"""Initial schema: the Merkle-tree audit log, its index tables, break glass and reviews.

Creates every gateway table (``audit_entries``, ``audit_tree_state``, ``audit_tree_nodes``,
``audit_tree_heads``, ``audit_events``, ``audit_subjects``, ``audit_councils``, ``break_glass_grants``,
``break_glass_notifications``, ``audit_reviews``) with the definitions frozen here.

A database made by the earlier releases (``metadata.create_all``: one ``audit_events`` table keyed by
``id``, with or without ``role``/``break_glass``/``break_glass_id``, and the break-glass tables) is
carried over: the old table is renamed ``audit_events_legacy``, each of its rows (in ``id`` order)
becomes a log entry of class ``access`` (``break_glass`` for ``POST /v1/break-glass``) whose record is
marked ``"migrated": true`` and keeps the original time as ``recorded_at``, with its index rows; then the
old table is dropped. Break-glass grants and notifications are kept as they are. Everything happens in
the migration's one transaction, so a failure leaves the old database untouched.

Revision ID: 0001_initial
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

import sqlalchemy as sa
from alembic import op

from familyctx.auditlog.log import envelope_bytes, node_last_seq
from familyctx.auditlog.merkle import Frontier, leaf_hash
from familyctx.identifiers import name_match_key, normalise_nhs_number, normalise_postcode

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BATCH = 1000


def _log_tables() -> None:
    op.create_table(
        "audit_entries",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("record_class", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=True),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_audit_entries_class_time", "audit_entries", ["record_class", "recorded_at"])
    op.create_table(
        "audit_tree_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_audit_tree_state_single_row"),
    )
    op.create_table(
        "audit_tree_nodes",
        sa.Column("last_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "audit_tree_heads",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_id", sa.String(100), nullable=False),
        sa.Column("jws", sa.Text, nullable=False),
    )


def _index_tables() -> None:
    op.create_table(
        "audit_events",
        sa.Column(
            "seq", sa.BigInteger, sa.ForeignKey("audit_entries.seq"), primary_key=True, autoincrement=False
        ),
        sa.Column("record_class", sa.String(40), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_sub", sa.String(200), nullable=True),
        sa.Column("user_name", sa.String(200), nullable=True),
        sa.Column("organisation", sa.String(20), nullable=False),
        sa.Column("role", sa.String(40), nullable=True),
        sa.Column("client", sa.String(200), nullable=True),
        sa.Column("jti", sa.String(200), nullable=True),
        sa.Column("purpose", sa.String(40), nullable=True),
        sa.Column("case_reference", sa.String(64), nullable=True),
        sa.Column("break_glass", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("break_glass_id", sa.String(36), nullable=True),
        sa.Column("endpoint", sa.String(100), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("http_status", sa.Integer, nullable=False),
        sa.Column("trace_id", sa.String(32), nullable=True),
        sa.Column("response_sha256", sa.String(64), nullable=True),
        sa.Column("migrated", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    for column in ("request_id", "occurred_at", "user_sub", "organisation", "break_glass_id"):
        op.create_index(f"ix_audit_events_{column}", "audit_events", [column])
    op.create_table(
        "audit_subjects",
        sa.Column("id", _ID, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, sa.ForeignKey("audit_entries.seq"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("gss", sa.String(20), nullable=True),
        sa.Column("local_person_id", sa.String(100), nullable=True),
        sa.Column("nhs_number", sa.String(10), nullable=True),
        sa.Column("family_name_key", sa.String(200), nullable=True),
        sa.Column("given_name_key", sa.String(200), nullable=True),
        sa.Column("date_of_birth", sa.Date, nullable=True),
        sa.Column("postcode", sa.String(10), nullable=True),
    )
    for column in ("seq", "gss", "nhs_number"):
        op.create_index(f"ix_audit_subjects_{column}", "audit_subjects", [column])
    op.create_index("ix_audit_subjects_name_dob", "audit_subjects", ["family_name_key", "date_of_birth"])
    op.create_table(
        "audit_councils",
        sa.Column(
            "seq", sa.BigInteger, sa.ForeignKey("audit_entries.seq"), primary_key=True, autoincrement=False
        ),
        sa.Column("gss", sa.String(20), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("detail", sa.String(500), nullable=True),
    )
    op.create_index("ix_audit_councils_gss", "audit_councils", ["gss"])


def _break_glass_tables(existing: set[str]) -> None:
    if "break_glass_grants" not in existing:
        op.create_table(
            "break_glass_grants",
            sa.Column("id", sa.String(36), primary_key=True),
            sa.Column("user_sub", sa.String(200), nullable=False),
            sa.Column("issuer", sa.String(500), nullable=False),
            sa.Column("user_name", sa.String(200), nullable=False),
            sa.Column("organisation", sa.String(20), nullable=False),
            sa.Column("client", sa.String(200), nullable=False),
            sa.Column("role", sa.String(40), nullable=False),
            sa.Column("purpose", sa.String(40), nullable=False),
            sa.Column("case_reference", sa.String(64), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("request_id", sa.String(64), nullable=False),
        )
        op.create_index("ix_break_glass_grants_user_sub", "break_glass_grants", ["user_sub"])
    if "break_glass_notifications" not in existing:
        op.create_table(
            "break_glass_notifications",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("council_gss_code", sa.String(20), nullable=False),
            sa.Column("grant_id", sa.String(36), sa.ForeignKey("break_glass_grants.id"), nullable=False),
            sa.Column("worker_sub", sa.String(200), nullable=False),
            sa.Column("worker_name", sa.String(200), nullable=False),
            sa.Column("worker_organisation", sa.String(20), nullable=False),
            sa.Column("purpose", sa.String(40), nullable=False),
            sa.Column("case_reference", sa.String(64), nullable=False),
            sa.Column("reason", sa.Text, nullable=False),
            sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        )
        op.create_index(
            "ix_break_glass_notifications_council_gss_code", "break_glass_notifications", ["council_gss_code"]
        )
    op.create_table(
        "audit_reviews",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("seq", sa.BigInteger, sa.ForeignKey("audit_entries.seq"), nullable=False),
        sa.Column("grant_id", sa.String(36), nullable=False),
        sa.Column("reviewer_sub", sa.String(200), nullable=False),
        sa.Column("reviewer_name", sa.String(200), nullable=False),
        sa.Column("reviewer_organisation", sa.String(20), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_reviews_seq", "audit_reviews", ["seq"])
    op.create_index("ix_audit_reviews_grant_id", "audit_reviews", ["grant_id"])


# -- carrying over the pre-log audit_events table ---------------------------------------------------------

#: The earlier releases' audit_events (frozen copy of their create_all DDL), read after renaming.
_LEGACY_COLUMNS: dict[str, sa.types.TypeEngine[Any]] = {
    "id": sa.Integer(),
    "request_id": sa.String(64),
    "occurred_at": sa.DateTime(timezone=True),
    "user_sub": sa.String(200),
    "user_name": sa.String(200),
    "organisation": sa.String(20),
    "roles": sa.JSON(),
    "client": sa.String(200),
    "jti": sa.String(200),
    "purpose": sa.String(40),
    "case_reference": sa.String(64),
    "endpoint": sa.String(100),
    "query_terms": sa.JSON(),
    "subjects_returned": sa.JSON(),
    "councils": sa.JSON(),
    "outcome": sa.String(10),
    "http_status": sa.Integer(),
    "role": sa.String(40),
    "break_glass": sa.Boolean(),
    "break_glass_id": sa.String(36),
}


def _is_legacy(inspector: sa.Inspector, existing: set[str]) -> bool:
    if "audit_events" not in existing:
        return False
    return "seq" not in {c["name"] for c in inspector.get_columns("audit_events")}


def _set_aside_legacy(inspector: sa.Inspector) -> sa.Table:
    """Rename the old table out of the way (its index and key names too, which the new table reuses)."""
    present = [c["name"] for c in inspector.get_columns("audit_events")]
    for index in inspector.get_indexes("audit_events"):
        # A unique constraint's own index goes with the table (its name is not reused).
        if index["name"] and not index.get("duplicates_constraint"):
            op.drop_index(index["name"], table_name="audit_events")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        pk = inspector.get_pk_constraint("audit_events").get("name")
        if pk:
            op.execute(
                sa.text(f'ALTER TABLE audit_events RENAME CONSTRAINT "{pk}" TO audit_events_legacy_pkey')
            )
    op.rename_table("audit_events", "audit_events_legacy")
    return sa.Table(
        "audit_events_legacy",
        sa.MetaData(),
        *[sa.Column(name, type_) for name, type_ in _LEGACY_COLUMNS.items() if name in present],
    )


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def _legacy_record(row: Mapping[str, Any], record_class: str, occurred: dt.datetime) -> dict[str, Any]:
    query = row.get("query_terms") or {}
    whose: list[dict[str, Any]] = []
    subject = query.get("subject") if isinstance(query, dict) else None
    if isinstance(subject, dict):
        whose.append({"kind": "searched_for", **{k: str(v) for k, v in subject.items() if v}})
    elif isinstance(query, dict):
        asked = {
            k: str(query[k])
            for k in ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode")
            if query.get(k)
        }
        if asked:
            whose.append({"kind": "searched_for", **asked})
    for returned in row.get("subjects_returned") or []:
        whose.append(
            {
                "kind": "returned",
                "gss_code": returned["gss_code"],
                "local_person_id": returned["local_person_id"],
            }
        )
    councils = row.get("councils") or {}
    return {
        "v": 1,
        "record_class": record_class,
        "migrated": True,
        "request": {
            "request_id": row["request_id"],
            "trace_id": None,
            "endpoint": row["endpoint"],
            "occurred_at": occurred.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        },
        "who": {
            "sub": row["user_sub"],
            "name": row["user_name"],
            "issuer": "",
            "organisation": row["organisation"],
            "roles": list(row.get("roles") or []),
            "role": row.get("role"),
            "client": row["client"],
            "jti": row["jti"],
        },
        "why": {
            "purpose": row["purpose"],
            "case_reference": row["case_reference"],
            "break_glass": bool(row.get("break_glass")),
            "break_glass_id": row.get("break_glass_id"),
            "break_glass_reason": None,
        },
        "whose": whose,
        "what": {"query": query, "involvements": [], "datasets": [], "response": None},
        "outcome": {
            "result": row["outcome"],
            "http_status": row["http_status"],
            "councils": [{"gss_code": g, "state": s, "detail": None} for g, s in sorted(councils.items())],
        },
    }


def _date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _index(seq: int, record: dict[str, Any], occurred: dt.datetime) -> Iterator[tuple[str, dict[str, Any]]]:
    who, why, outcome = record["who"], record["why"], record["outcome"]
    yield (
        "audit_events",
        {
            "seq": seq,
            "record_class": record["record_class"],
            "request_id": record["request"]["request_id"],
            "occurred_at": occurred,
            "user_sub": who["sub"],
            "user_name": who["name"],
            "organisation": who["organisation"] or "",
            "role": who["role"],
            "client": who["client"],
            "jti": who["jti"],
            "purpose": why["purpose"],
            "case_reference": why["case_reference"],
            "break_glass": why["break_glass"],
            "break_glass_id": why["break_glass_id"],
            "endpoint": record["request"]["endpoint"],
            "outcome": outcome["result"],
            "http_status": outcome["http_status"],
            "trace_id": None,
            "response_sha256": None,
            "migrated": True,
        },
    )
    for subject in record["whose"]:
        family, given = name_match_key(subject.get("family_name")), name_match_key(subject.get("given_name"))
        yield (
            "audit_subjects",
            {
                "seq": seq,
                "kind": subject["kind"],
                "gss": subject.get("gss_code"),
                "local_person_id": subject.get("local_person_id"),
                "nhs_number": normalise_nhs_number(subject.get("nhs_number")),
                "family_name_key": family[:200] or None,
                "given_name_key": given[:200] or None,
                "date_of_birth": _date(subject.get("date_of_birth")),
                "postcode": normalise_postcode(subject.get("postcode")),
            },
        )
    for council in outcome["councils"]:
        yield (
            "audit_councils",
            {"seq": seq, "gss": council["gss_code"], "state": council["state"], "detail": None},
        )


def _carry_over(legacy: sa.Table) -> int:
    """Append every legacy row to the (empty) log, in ``id`` order; returns how many."""
    bind = op.get_bind()
    meta = sa.MetaData()
    tables = {
        name: sa.Table(name, meta, autoload_with=bind)
        for name in (
            "audit_entries",
            "audit_tree_nodes",
            "audit_tree_state",
            "audit_events",
            "audit_subjects",
            "audit_councils",
        )
    }
    frontier = Frontier()
    last_id: int | None = None
    while True:
        query = sa.select(legacy).order_by(legacy.c.id).limit(_BATCH)
        if last_id is not None:
            query = query.where(legacy.c.id > last_id)
        rows = [dict(r._mapping) for r in bind.execute(query)]
        if not rows:
            break
        last_id = rows[-1]["id"]
        out: dict[str, list[dict[str, Any]]] = {name: [] for name in tables}
        for row in rows:
            occurred = _utc(row["occurred_at"])
            record_class = "break_glass" if row["endpoint"] == "POST /v1/break-glass" else "access"
            record = _legacy_record(row, record_class, occurred)
            payload = envelope_bytes(record_class, occurred, record)
            seq = frontier.size
            leaf = leaf_hash(payload)
            for level, idx, digest in frontier.append(leaf):
                out["audit_tree_nodes"].append(
                    {"last_seq": node_last_seq(level, idx), "level": level, "hash": digest}
                )
            out["audit_entries"].append(
                {
                    "seq": seq,
                    "record_class": record_class,
                    "recorded_at": occurred,
                    "payload": payload,
                    "leaf_hash": leaf,
                }
            )
            for table, index_row in _index(seq, record, occurred):
                out[table].append(index_row)
        for name in ("audit_entries", "audit_tree_nodes", "audit_events", "audit_subjects", "audit_councils"):
            if out[name]:
                bind.execute(tables[name].insert(), out[name])
    bind.execute(
        tables["audit_tree_state"].insert(),
        {
            "id": 1,
            "size": frontier.size,
            "frontier": frontier.to_json(),
            "updated_at": dt.datetime.now(dt.UTC),
        },
    )
    return frontier.size


def upgrade() -> None:
    bind = op.get_bind()
    inspector = sa.inspect(bind)
    existing = set(inspector.get_table_names())
    legacy = _set_aside_legacy(inspector) if _is_legacy(inspector, existing) else None
    _log_tables()
    _index_tables()
    _break_glass_tables(existing)
    if legacy is not None:
        _carry_over(legacy)
        op.drop_table("audit_events_legacy")


def downgrade() -> None:
    raise NotImplementedError("the audit log is append-only: restore a backup to go back")
