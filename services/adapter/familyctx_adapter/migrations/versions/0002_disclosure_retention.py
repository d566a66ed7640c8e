"""Retention: the personal columns of ``disclosure_index`` may be NULL (a redacted record's index row).

``familyctx adapter retention`` redacts records past ``disclosure_log.retention_days`` and, in the same
transaction, sets the index row's requester ``sub``, client, case reference, assertion ``jti`` and local
person ids to NULL (:data:`familyctx_adapter.disclosure_schema.PERSONAL_INDEX_COLUMNS`). No data changes
on upgrade. A downgrade writes ``''`` (and ``[]`` for the local ids) into those columns of redacted rows
so that they can be NOT NULL again.

Revision ID: disclosure_0002
Revises: disclosure_0001
Create Date: 2026-06-01
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "disclosure_0002"
down_revision = "disclosure_0001"
branch_labels = None
depends_on = None

_TABLE = "disclosure_index"
#: The columns this revision changes, with their types (as in disclosure_0001).
_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("requester_sub", sa.String(255)),
    ("client", sa.String(255)),
    ("case_reference", sa.String(255)),
    ("assertion_jti", sa.String(128)),
    ("local_person_ids", sa.JSON()),
)


def upgrade() -> None:
    """Make the personal columns of ``disclosure_index`` nullable."""
    with op.batch_alter_table(_TABLE) as batch:  # SQLite: a copy of the table; PostgreSQL: ALTER TABLE
        for name, type_ in _COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=True)


def downgrade() -> None:
    """Fill the redacted rows' personal columns with empty values and make them NOT NULL again."""
    for name, type_ in _COLUMNS:
        column = sa.column(name, type_)
        empty: object = [] if name == "local_person_ids" else ""
        op.execute(sa.table(_TABLE, column).update().where(column.is_(None)).values({name: empty}))
    with op.batch_alter_table(_TABLE) as batch:
        for name, type_ in _COLUMNS:
            batch.alter_column(name, existing_type=type_, nullable=False)
