"""The adapter's disclosure log: the Merkle log tables (prefix ``disclosure``) and its index tables.

Revision ID: disclosure_0001
Revises:
Create Date: 2026-01-31

Written out in full (not generated from the live metadata at run time) so that this revision keeps
creating exactly this schema when the code moves on; tests compare the migrated schema with
:data:`familyctx_adapter.disclosure_schema.metadata`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "disclosure_0001"
down_revision = None
branch_labels = None
depends_on = None

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the disclosure log's tables."""
    op.create_table(
        "disclosure_entries",
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("record_class", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=True),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_disclosure_entries_class_time", "disclosure_entries", ["record_class", "recorded_at"])
    op.create_table(
        "disclosure_tree_state",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name="ck_disclosure_tree_state_single_row"),
    )
    op.create_table(
        "disclosure_tree_nodes",
        sa.Column("last_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    op.create_table(
        "disclosure_tree_heads",
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_id", sa.String(100), nullable=False),
        sa.Column("jws", sa.Text, nullable=False),
    )
    op.create_table(
        "disclosure_index",
        sa.Column(
            "seq",
            _SEQ,
            sa.ForeignKey("disclosure_entries.seq", name="fk_disclosure_index_seq"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False),
        sa.Column("method", sa.String(40), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("requester_sub", sa.String(255), nullable=False),
        sa.Column("requester_organisation", sa.String(16), nullable=False),
        sa.Column("requester_role", sa.String(40), nullable=False),
        sa.Column("client", sa.String(255), nullable=False),
        sa.Column("purpose", sa.String(40), nullable=False),
        sa.Column("case_reference", sa.String(255), nullable=False),
        sa.Column("break_glass", sa.Boolean, nullable=False),
        sa.Column("assertion_jti", sa.String(128), nullable=False),
        sa.Column("local_person_ids", sa.JSON, nullable=False),
        sa.Column("datasets_released", sa.JSON, nullable=False),
        sa.Column("datasets_withheld", sa.JSON, nullable=False),
        sa.Column("people", sa.Integer, nullable=False),
        sa.Column("involvements", sa.Integer, nullable=False),
        sa.Column("response_sha256", sa.String(64), nullable=True),
    )
    op.create_index("ix_disclosure_index_request_id", "disclosure_index", ["request_id"])
    op.create_index("ix_disclosure_index_occurred_at", "disclosure_index", ["occurred_at"])
    op.create_index("ix_disclosure_index_requester", "disclosure_index", ["requester_sub", "occurred_at"])
    op.create_index("ix_disclosure_index_case_reference", "disclosure_index", ["case_reference"])
    op.create_table(
        "disclosure_people",
        sa.Column(
            "seq",
            _SEQ,
            sa.ForeignKey("disclosure_entries.seq", name="fk_disclosure_people_seq"),
            primary_key=True,
            autoincrement=False,
        ),
        sa.Column("local_person_id", sa.String(128), primary_key=True),
    )
    op.create_index("ix_disclosure_people_local_person_id", "disclosure_people", ["local_person_id", "seq"])


def downgrade() -> None:
    """Drop the disclosure log's tables (deletes the log)."""
    for table in (
        "disclosure_people",
        "disclosure_index",
        "disclosure_tree_heads",
        "disclosure_tree_nodes",
        "disclosure_tree_state",
        "disclosure_entries",
    ):
        op.drop_table(table)
