"""Every table of the gateway's audit database, on one SQLAlchemy ``MetaData`` (the Alembic target).

- The Merkle-tree log itself, from :func:`familyctx.auditlog.tables.log_tables` with prefix ``audit``:
  ``audit_entries`` (one row per record: canonical JSON payload and its RFC 9162 leaf hash),
  ``audit_tree_state``, ``audit_tree_heads`` (and the library's node cache).
- Index tables, written in the same transaction as the entry they index (so a record and its index
  commit together or not at all), and derived from the entry's payload alone
  (:func:`familyctx_gateway.audit_record.index_rows`): ``audit_events`` (one row per record: who, why,
  when, outcome), ``audit_subjects`` (one row per subject searched for or returned, with normalised
  name keys for matching across councils), ``audit_councils`` (each council's state in the request).
- Break glass: ``break_glass_grants`` and ``break_glass_notifications`` (rows written from the
  ``break_glass`` record that opens a grant) and ``audit_reviews`` (an IG officer's review of a grant,
  written from the ``ig_access`` record of the review).

The schema is created and upgraded by the Alembic migrations in ``familyctx_gateway/migrations``;
``tests/integration/test_gateway_audit_migrations.py`` checks that the migrated schema equals this
metadata. Column names follow docs (interfaces-audit.md); GSS codes are ``gss``/``council_gss_code``.
"""

from __future__ import annotations

import sqlalchemy as sa

from familyctx.auditlog.tables import LogTables, log_tables

__all__ = [
    "LOG_PREFIX",
    "audit_councils",
    "audit_events",
    "audit_log_tables",
    "audit_reviews",
    "audit_subjects",
    "break_glass_grants",
    "break_glass_notifications",
    "metadata",
]

#: Table name prefix of the gateway's log (adapters use ``disclosure``).
LOG_PREFIX = "audit"

metadata = sa.MetaData()

#: ``audit_entries``, ``audit_tree_state``, ``audit_tree_heads`` (+ node cache): the Merkle-tree log.
audit_log_tables: LogTables = log_tables(metadata, LOG_PREFIX)

_SEQ_FK = f"{LOG_PREFIX}_entries.seq"

audit_events = sa.Table(
    "audit_events",
    metadata,
    # The log entry this row indexes (0-based, gapless); one row per entry.
    sa.Column("seq", sa.BigInteger, sa.ForeignKey(_SEQ_FK), primary_key=True, autoincrement=False),
    sa.Column("record_class", sa.String(40), nullable=False),
    # The X-Request-ID: chosen by the caller when well formed, so not unique (a repeated id must not
    # fail another request's audit record in the same group commit).
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user_sub", sa.String(200), nullable=True, index=True),  # NULL once redacted (retention)
    sa.Column("user_name", sa.String(200), nullable=True),
    sa.Column("organisation", sa.String(20), nullable=False, index=True),
    sa.Column("role", sa.String(40), nullable=True),  # the one role authorised; NULL when refused
    sa.Column("client", sa.String(200), nullable=True),
    sa.Column("jti", sa.String(200), nullable=True),
    sa.Column("purpose", sa.String(40), nullable=True),
    sa.Column("case_reference", sa.String(64), nullable=True),
    sa.Column("break_glass", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("break_glass_id", sa.String(36), nullable=True, index=True),
    sa.Column("endpoint", sa.String(100), nullable=False),
    sa.Column("outcome", sa.String(10), nullable=False),
    sa.Column("http_status", sa.Integer, nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=True),
    # SHA-256 (hex) of the exact response bytes the caller received; NULL when no body was returned.
    sa.Column("response_sha256", sa.String(64), nullable=True),
    sa.Column("migrated", sa.Boolean, nullable=False, server_default=sa.false()),
)

audit_subjects = sa.Table(
    "audit_subjects",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("seq", sa.BigInteger, sa.ForeignKey(_SEQ_FK), nullable=False, index=True),
    # searched_for: what the worker asked for; returned: a council record the response showed.
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("gss", sa.String(20), nullable=True, index=True),
    sa.Column("local_person_id", sa.String(100), nullable=True),
    sa.Column("nhs_number", sa.String(10), nullable=True, index=True),
    # familyctx.identifiers.name_match_key of the names ("Zoë O'Neill" -> "zoe", "oneill").
    sa.Column("family_name_key", sa.String(200), nullable=True),
    sa.Column("given_name_key", sa.String(200), nullable=True),
    sa.Column("date_of_birth", sa.Date, nullable=True),
    sa.Column("postcode", sa.String(10), nullable=True),  # normalised: upper case, one space
    sa.Index("ix_audit_subjects_name_dob", "family_name_key", "date_of_birth"),
)

audit_councils = sa.Table(
    "audit_councils",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.ForeignKey(_SEQ_FK), primary_key=True, autoincrement=False),
    sa.Column("gss", sa.String(20), primary_key=True, index=True),
    # ok | unavailable | timed_out | error | refused | not_called ... (the response's source state)
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("detail", sa.String(500), nullable=True),
)

break_glass_grants = sa.Table(
    "break_glass_grants",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("user_sub", sa.String(200), nullable=False, index=True),
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

break_glass_notifications = sa.Table(
    "break_glass_notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("council_gss_code", sa.String(20), nullable=False, index=True),
    sa.Column("grant_id", sa.String(36), sa.ForeignKey("break_glass_grants.id"), nullable=False),
    sa.Column("worker_sub", sa.String(200), nullable=False),
    sa.Column("worker_name", sa.String(200), nullable=False),
    sa.Column("worker_organisation", sa.String(20), nullable=False),
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("case_reference", sa.String(64), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    # Why this council was notified (migration 0002): "opened" (the worker's own council, when the grant
    # was opened) or "used" (a council asked for data under the grant, first_used_at: when it was first
    # asked; one such row per grant and council).
    sa.Column("notified_because", sa.String(10), nullable=False, server_default="opened"),
    sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("ix_break_glass_notifications_grant_id", "grant_id"),
)

audit_reviews = sa.Table(
    "audit_reviews",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # The ig_access record of the review (the note is in its payload too).
    sa.Column("seq", sa.BigInteger, sa.ForeignKey(_SEQ_FK), nullable=False, index=True),
    # No foreign key: the review endpoint checks the grant exists. A review is committed in a transaction
    # of its own (familyctx_gateway.audit_reviews.commit_review), never in a group commit shared with
    # other requests' records, so the unique index below refuses a second review by one council alone.
    sa.Column("grant_id", sa.String(36), nullable=False, index=True),
    sa.Column("reviewer_sub", sa.String(200), nullable=False),
    sa.Column("reviewer_name", sa.String(200), nullable=False),
    sa.Column("reviewer_organisation", sa.String(20), nullable=False),
    sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    # One review per grant and reviewing council (migration 0003), across every gateway process.
    sa.Index("uq_audit_reviews_grant_council", "grant_id", "reviewer_organisation", unique=True),
)
