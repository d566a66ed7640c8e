"""One break-glass review per grant and reviewing council.

Two IG officers of one council reviewing the same grant at once could both be told 201. Reviews are now
committed in a transaction of their own that checks under the log's tree-state lock, and this unique
index on ``audit_reviews (grant_id, reviewer_organisation)`` refuses a second review whatever the
gateway process. Index rows of duplicate reviews made before this revision are removed, keeping each
council's first review of a grant (lowest ``seq``); their ``ig_access`` records stay in the log.

Revision ID: 0003_audit_reviews_one_per_council
Revises: 0002_break_glass_use_notifications
Create Date: 2026-05-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_audit_reviews_one_per_council"
down_revision = "0002_break_glass_use_notifications"
branch_labels = None
depends_on = None

_TABLE = "audit_reviews"
_INDEX = "uq_audit_reviews_grant_council"


def upgrade() -> None:
    reviews = sa.table(
        _TABLE,
        sa.column("id", sa.Integer),
        sa.column("seq", sa.BigInteger),
        sa.column("grant_id", sa.String),
        sa.column("reviewer_organisation", sa.String),
    )
    later = reviews.alias("later")
    earlier = reviews.alias("earlier")
    duplicate_ids = sa.select(later.c.id).where(
        sa.exists().where(
            earlier.c.grant_id == later.c.grant_id,
            earlier.c.reviewer_organisation == later.c.reviewer_organisation,
            sa.or_(
                earlier.c.seq < later.c.seq, sa.and_(earlier.c.seq == later.c.seq, earlier.c.id < later.c.id)
            ),
        )
    )
    ids = [row[0] for row in op.get_bind().execute(duplicate_ids)]
    if ids:
        op.execute(reviews.delete().where(reviews.c.id.in_(ids)))
    op.create_index(_INDEX, _TABLE, ["grant_id", "reviewer_organisation"], unique=True)


def downgrade() -> None:
    op.drop_index(_INDEX, table_name=_TABLE)
