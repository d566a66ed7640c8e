"""The break-glass review queue for IG officers: grants notified to their council, and reviews.

A council is notified of a grant (``break_glass_notifications``) when its own worker opens it and when
it is first asked for data under it; each council's IG officers review the grants their council was
notified of, for their own council: a grant is *unreviewed* for council X until an
IG officer of X has reviewed it (an ``audit_reviews`` row with ``reviewer_organisation`` X). A review is
written as an ``ig_access`` record of the audit log whose payload carries ``review: {break_glass_id,
note}``; its ``audit_reviews`` row is derived from that record in the same transaction
(:func:`familyctx_gateway.audit_record.index_rows`), so a review cannot exist outside the log.

**One review per council**, across gateway processes: a review is not group-committed with other
requests' records but committed by :func:`commit_review` in a transaction of its own that appends the
record (taking the log's tree-state lock: ``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE``
on SQLite), then checks under that lock that the council has not reviewed the grant, then writes the
index rows; a second review rolls back (no record, no seq used) and is answered 409. The unique index
``uq_audit_reviews_grant_council`` on ``(grant_id, reviewer_organisation)`` is the backstop. So a
duplicate can never fail other requests' records in a shared batch.

Blocking calls (SQLAlchemy Core): run them in a worker thread from async code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from familyctx_gateway.audit import AuditStore, write_index
from familyctx_gateway.audit_queries import AuditIndex, read_only, utc
from familyctx_gateway.audit_record import AuditEvent, audit_payload
from familyctx_gateway.audit_schema import audit_reviews

__all__ = ["GrantForReview", "ReviewExists", "ReviewQueue", "ReviewStatus", "StoredReview", "commit_review"]

#: Longest a review waits for the log's lock on PostgreSQL before failing (503); SQLite's busy timeout
#: plays that part there.
REVIEW_LOCK_TIMEOUT_SECONDS = 10


class ReviewExists(Exception):
    """The reviewing council has already reviewed this grant (nothing was written)."""


def commit_review(store: AuditStore, event: AuditEvent) -> int:
    """Commit the ``ig_access`` record of a review (``event.review`` = ``{break_glass_id, note}``) with
    its index rows in a transaction of its own, unless the reviewer's council (``event.organisation``)
    has already reviewed the grant; returns its ``seq``. Blocking.

    Raises :class:`ReviewExists` (rolled back: no record), ``ValueError`` for an event without a review,
    SQLAlchemy errors when the database fails (the caller answers 503)."""
    if event.review is None:
        raise ValueError("the event carries no review")
    payload = audit_payload(event)
    grant_id = str(event.review["break_glass_id"])
    reviewed = (
        sa.select(audit_reviews.c.id)
        .where(
            audit_reviews.c.grant_id == grant_id, audit_reviews.c.reviewer_organisation == event.organisation
        )
        .limit(1)
    )
    with store.engine.connect() as conn:
        try:
            with conn.begin():  # SQLite: BEGIN IMMEDIATE (the log engine's begin listener)
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SET LOCAL lock_timeout = '{REVIEW_LOCK_TIMEOUT_SECONDS}s'")
                [seq] = store.log.append(conn, [(event.record_class.value, payload)])  # the tree-state lock
                if conn.execute(reviewed).first() is not None:
                    raise ReviewExists()
                write_index(conn, [(seq, payload)])
        except IntegrityError:  # the unique index: a review committed by a writer not taking the lock
            raise ReviewExists() from None
    return seq


ReviewStatus = Literal["unreviewed", "reviewed"]


@dataclass(frozen=True, slots=True)
class StoredReview:
    """One review of a grant (times UTC); ``seq``: its ``ig_access`` record."""

    reviewer_sub: str
    reviewer_name: str
    reviewer_organisation: str
    reviewed_at: dt.datetime
    note: str
    seq: int


@dataclass(frozen=True, slots=True)
class GrantForReview:
    """A grant as the queue shows it. ``notification_id``: the council's first notification (the
    paging key); ``notified_because``: why the council was notified (``opened``: its own worker opened
    the grant; ``used``: it was asked for data under it); ``records``: seqs of the audit records naming
    the grant that the council may see (opening it, requests made under it), oldest first; ``reviews``:
    this council's reviews, oldest first."""

    notification_id: int
    break_glass_id: str
    worker_sub: str
    worker_name: str
    worker_organisation: str
    role: str | None
    purpose: str
    case_reference: str
    reason: str
    opened_at: dt.datetime
    expires_at: dt.datetime
    notified_because: list[str]
    records: list[int]
    reviews: list[StoredReview]


class ReviewQueue:
    """Grants and reviews on the audit database ``engine``; ``metadata`` holds the tables
    ``break_glass_grants``, ``break_glass_notifications``, ``audit_reviews`` and those of
    :class:`AuditIndex`. Raises KeyError for a missing table; database errors propagate."""

    def __init__(self, engine: sa.Engine, metadata: sa.MetaData) -> None:
        self.engine = engine
        self.index = AuditIndex(metadata)
        self.grants = metadata.tables["break_glass_grants"]
        self.notifications = metadata.tables["break_glass_notifications"]
        self.reviews = metadata.tables["audit_reviews"]

    def _reviewed_by(self, council: str) -> sa.Exists:
        r, g = self.reviews.c, self.grants.c
        return sa.exists().where(r.grant_id == g.id, r.reviewer_organisation == council)

    def _notified(self, council: str) -> sa.Select[Any]:
        """Grants notified to ``council`` with its first notification's id (a council may be notified
        of one grant twice: when its own worker opened it, and when it was first asked under it)."""
        n, g = self.notifications, self.grants
        first = (
            sa.select(n.c.grant_id, sa.func.min(n.c.id).label("notification_id"))
            .where(n.c.council_gss_code == council)
            .group_by(n.c.grant_id)
            .subquery("first_notice")
        )
        return sa.select(first.c.notification_id, g).join_from(first, g, g.c.id == first.c.grant_id)

    def queue(
        self, council: str, *, status: ReviewStatus, after: int | None = None, limit: int = 50
    ) -> tuple[list[GrantForReview], int | None]:
        """Grants notified to ``council`` (GSS code) of ``status``: unreviewed oldest first, reviewed
        newest first, by when the council was first notified; keyset paging on that notification's id
        (``after``: the previous page's cursor). Returns the page and the next cursor (None: last page)."""
        query = self._notified(council)
        key = query.selected_columns.notification_id
        reviewed = self._reviewed_by(council)
        query = query.where(reviewed if status == "reviewed" else ~reviewed)
        if status == "unreviewed":
            query = (query.where(key > after) if after is not None else query).order_by(key)
        else:
            query = (query.where(key < after) if after is not None else query).order_by(key.desc())
        with read_only(self.engine) as conn:
            rows = conn.execute(query.limit(limit + 1)).all()
            page = [self._item(conn, council, row) for row in rows[:limit]]
        return page, (page[-1].notification_id if len(rows) > limit else None)

    def grant(self, council: str, break_glass_id: str) -> GrantForReview | None:
        """The grant ``break_glass_id`` if it was notified to ``council``, else None."""
        query = self._notified(council).where(self.grants.c.id == break_glass_id)
        with read_only(self.engine) as conn:
            row = conn.execute(query).first()
            return self._item(conn, council, row) if row is not None else None

    def _item(self, conn: sa.Connection, council: str, row: Any) -> GrantForReview:
        e, r, n = self.index.events, self.reviews, self.notifications
        records = conn.execute(
            sa.select(e.c.seq)
            .where(e.c.break_glass_id == row.id, e.c.record_class != "ig_access")
            .where(self.index.in_scope(council))
            .order_by(e.c.seq)
        ).scalars()
        because = conn.execute(
            sa.select(n.c.notified_because)
            .where(n.c.grant_id == row.id, n.c.council_gss_code == council)
            .order_by(n.c.id)
        ).scalars()
        reviews = conn.execute(
            sa.select(r).where(r.c.grant_id == row.id, r.c.reviewer_organisation == council).order_by(r.c.seq)
        )
        return GrantForReview(
            notification_id=int(row.notification_id),
            break_glass_id=str(row.id),
            worker_sub=row.user_sub,
            worker_name=row.user_name,
            worker_organisation=row.organisation,
            role=row.role,
            purpose=row.purpose,
            case_reference=row.case_reference,
            reason=row.reason,
            opened_at=utc(row.opened_at),
            expires_at=utc(row.expires_at),
            notified_because=[str(b) for b in because],
            records=[int(seq) for seq in records],
            reviews=[
                StoredReview(
                    v.reviewer_sub,
                    v.reviewer_name,
                    v.reviewer_organisation,
                    utc(v.reviewed_at),
                    v.note,
                    int(v.seq),
                )
                for v in reviews
            ],
        )
