"""Break-glass notifications of the councils asked for data under a grant.

A grant used to notify every council of the federation when it was opened. Now the worker's own
council is notified when it is opened (``notified_because = 'opened'``) and every other council the
first time it is asked for data under the grant (``'used'``, with ``first_used_at``), so an IG officer
is told only of the grants that reached their council. Rows made before this revision are kept as
``'opened'`` notifications. Adds an index on ``grant_id`` (a grant's notified councils).

Revision ID: 0002_break_glass_use_notifications
Revises: 0001_initial
Create Date: 2026-05-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_break_glass_use_notifications"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

_TABLE = "break_glass_notifications"


def upgrade() -> None:
    with op.batch_alter_table(_TABLE) as batch:  # SQLite: a copy of the table; PostgreSQL: ALTER TABLE
        batch.add_column(
            sa.Column("notified_because", sa.String(10), nullable=False, server_default="opened")
        )
        batch.add_column(sa.Column("first_used_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_break_glass_notifications_grant_id", _TABLE, ["grant_id"])


def downgrade() -> None:
    op.drop_index("ix_break_glass_notifications_grant_id", table_name=_TABLE)
    with op.batch_alter_table(_TABLE) as batch:
        batch.drop_column("first_used_at")
        batch.drop_column("notified_because")
