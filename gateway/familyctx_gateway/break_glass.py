"""Break glass: a time-boxed grant, with a written reason, to go past a purpose restriction.

A worker opens a grant (``POST /v1/break-glass``) for one purpose and one case reference, for a few
minutes; every council of the federation gets a notification record its IG officers can list. Requests
that send the grant's id (``break_glass_id``) are checked here (same worker, same case reference and
purpose, not expired) and then pass the gateway policy's purpose restrictions (and only those, see
:mod:`familyctx_gateway.access`); they are flagged ``break_glass`` in the audit and in the assertion
each council receives.

Storage: SQLAlchemy 2 Core tables on the audit database's metadata and engine (grants and
notifications live beside the audit log they explain). The grant, its notifications and the audit
record of opening it are committed in one transaction. The worker's reason is personal data: it is
stored here and in the notification rows, never logged.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import SQLAlchemyError

from familyctx_gateway.audit import AuditEvent, AuditWriteFailed, audit_events, audit_row, metadata
from familyctx_gateway.auth import Principal
from familyctx_gateway.errors import AuditUnavailable, Forbidden

__all__ = [
    "BreakGlassGrant",
    "BreakGlassNotification",
    "BreakGlassRefused",
    "BreakGlassStore",
    "break_glass_grants",
    "break_glass_notifications",
    "new_grant",
]

log = logging.getLogger("familyctx_gateway.break_glass")

_T = TypeVar("_T")

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
)


class BreakGlassRefused(Forbidden):
    """403: the ``break_glass_id`` sent cannot be used for this request (message says why and what to do)."""


@dataclass(frozen=True, slots=True)
class BreakGlassGrant:
    """One grant. ``id``: UUID text; ``user_sub``, ``issuer`` (of their token), ``user_name``,
    ``organisation``, ``client``, ``role``: who opened it, under which role; ``reason``: the worker's
    written reason (personal data: never log it); times are timezone-aware UTC datetimes;
    ``request_id``: the request that opened it."""

    id: str
    user_sub: str
    issuer: str
    user_name: str
    organisation: str
    client: str
    role: str
    purpose: str
    case_reference: str
    reason: str
    opened_at: dt.datetime
    expires_at: dt.datetime
    request_id: str

    def expired(self, now: dt.datetime | None = None) -> bool:
        """True when ``now`` (default: the current UTC time) is at or after ``expires_at``."""
        return (now or _now()) >= self.expires_at


@dataclass(frozen=True, slots=True)
class BreakGlassNotification:
    """One council's notification of a grant (a row of ``break_glass_notifications``)."""

    id: int
    council_gss_code: str
    grant_id: str
    worker_sub: str
    worker_name: str
    worker_organisation: str
    purpose: str
    case_reference: str
    reason: str
    opened_at: dt.datetime
    expires_at: dt.datetime


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(value: dt.datetime) -> dt.datetime:
    """SQLite hands back naive datetimes; every time stored here is UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def new_grant(
    principal: Principal,
    *,
    role: str,
    purpose: str,
    case_reference: str,
    reason: str,
    minutes: int,
    request_id: str,
    now: dt.datetime | None = None,
) -> BreakGlassGrant:
    """A new grant for ``principal`` valid for ``minutes`` from ``now`` (default: the current time)."""
    opened = _utc(now or _now())
    return BreakGlassGrant(
        id=str(uuid.uuid4()),
        user_sub=principal.sub,
        issuer=principal.issuer,
        user_name=principal.name,
        organisation=principal.organisation,
        client=principal.client,
        role=role,
        purpose=purpose,
        case_reference=case_reference,
        reason=reason,
        opened_at=opened,
        expires_at=opened + dt.timedelta(minutes=minutes),
        request_id=request_id,
    )


def _grant(row: Any) -> BreakGlassGrant:
    values = dict(row._mapping)
    values["opened_at"], values["expires_at"] = _utc(values["opened_at"]), _utc(values["expires_at"])
    return BreakGlassGrant(**values)


def _notification(row: Any) -> BreakGlassNotification:
    values = dict(row._mapping)
    values["opened_at"], values["expires_at"] = _utc(values["opened_at"]), _utc(values["expires_at"])
    return BreakGlassNotification(**values)


class BreakGlassStore:
    """Grants and notifications on the audit database ``engine`` (SQLAlchemy Core).

    Blocking database work runs in a worker thread. Database failures while opening a grant raise
    :class:`~familyctx_gateway.audit.AuditWriteFailed` (the caller answers 503); while reading,
    :class:`~familyctx_gateway.errors.AuditUnavailable` (503: the audit database is unavailable).
    """

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    async def _read(self, what: str, read: Callable[..., _T], *args: Any) -> _T:
        try:
            return await asyncio.to_thread(read, *args)
        except (SQLAlchemyError, OSError) as exc:
            log.error("break glass read failed what=%s error=%s", what, type(exc).__name__)
            raise AuditUnavailable() from None

    def create_schema(self) -> None:
        """Create the grant and notification tables if missing (until Alembic arrives in a later issue)."""
        metadata.create_all(self.engine, tables=[break_glass_grants, break_glass_notifications])

    # -- opening ----------------------------------------------------------------------------------

    def _open(self, grant: BreakGlassGrant, councils: Sequence[str], event: AuditEvent) -> None:
        notification = {
            "grant_id": grant.id,
            "worker_sub": grant.user_sub,
            "worker_name": grant.user_name,
            "worker_organisation": grant.organisation,
            "purpose": grant.purpose,
            "case_reference": grant.case_reference,
            "reason": grant.reason,
            "opened_at": grant.opened_at,
            "expires_at": grant.expires_at,
        }
        with self.engine.begin() as conn:  # one transaction: all of it, or none of it
            conn.execute(break_glass_grants.insert(), _row(grant))
            if councils:
                conn.execute(
                    break_glass_notifications.insert(),
                    [{**notification, "council_gss_code": code} for code in councils],
                )
            conn.execute(audit_events.insert(), audit_row(event))

    async def open(self, grant: BreakGlassGrant, *, councils: Sequence[str], audit_event: AuditEvent) -> None:
        """Commit ``grant``, one notification per council in ``councils`` (GSS codes) and the audit
        record of opening it, in one transaction. Raises AuditWriteFailed when it is not committed."""
        try:
            await asyncio.to_thread(self._open, grant, councils, audit_event)
        except (SQLAlchemyError, OSError) as exc:
            log.error("break glass not recorded request_id=%s error=%s", grant.request_id, type(exc).__name__)
            raise AuditWriteFailed() from None
        log.info(
            "break glass opened request_id=%s grant_id=%s purpose=%s minutes=%d councils_notified=%d",
            grant.request_id,
            grant.id,
            grant.purpose,
            round((grant.expires_at - grant.opened_at).total_seconds() / 60),
            len(councils),
        )

    # -- reading ----------------------------------------------------------------------------------

    def _get(self, grant_id: str) -> BreakGlassGrant | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(break_glass_grants).where(break_glass_grants.c.id == grant_id)
            ).first()
        return _grant(row) if row is not None else None

    async def get(self, grant_id: str) -> BreakGlassGrant | None:
        """The grant with id ``grant_id``, or None."""
        return await self._read("grant", self._get, grant_id)

    def _notified_councils(self, grant_id: str) -> list[str]:
        table = break_glass_notifications
        query = sa.select(table.c.council_gss_code).where(table.c.grant_id == grant_id).order_by(table.c.id)
        with self.engine.connect() as conn:
            return [str(code) for code in conn.execute(query).scalars()]

    async def notified_councils(self, grant_id: str) -> list[str]:
        """GSS codes of the councils notified of grant ``grant_id``, in the order they were notified."""
        return await self._read("notified_councils", self._notified_councils, grant_id)

    async def grant_for_use(
        self,
        grant_id: str,
        *,
        principal: Principal,
        purpose: str,
        case_reference: str,
        now: dt.datetime | None = None,
    ) -> BreakGlassGrant:
        """The grant ``grant_id`` if ``principal`` may use it for this request, else BreakGlassRefused.

        Usable when it exists, was opened by the same worker (same ``sub`` from the same issuer), for the
        same ``case_reference`` and ``purpose``, and ``now`` is before ``expires_at``. A grant of another
        worker is refused as if it did not exist (its existence is not revealed).
        """
        grant = await self.get(grant_id)
        if grant is None or (grant.user_sub, grant.issuer) != (principal.sub, principal.issuer):
            raise BreakGlassRefused(
                "That break-glass grant does not exist or was not opened by you; open one for this case "
                "with POST /v1/break-glass (familyctx break-glass open) and send its break_glass_id"
            )
        if grant.case_reference != case_reference:
            raise BreakGlassRefused(
                "That break-glass grant was opened for another case reference; a grant is valid only for "
                "the case it was opened for: open one for this case"
            )
        if grant.purpose != purpose:
            raise BreakGlassRefused(
                f"That break-glass grant was opened for the purpose {grant.purpose}, not {purpose}; "
                "send the purpose it was opened for, or open one for this purpose"
            )
        if grant.expired(now):
            raise BreakGlassRefused(
                f"That break-glass grant expired at {grant.expires_at.isoformat(timespec='seconds')}; "
                "if you still need access, open a new one with a written reason"
            )
        return grant

    def _notifications(
        self, council: str, since: dt.datetime | None, after: int | None, limit: int
    ) -> list[BreakGlassNotification]:
        table = break_glass_notifications
        query = sa.select(table).where(table.c.council_gss_code == council)
        if since is not None:
            query = query.where(table.c.opened_at >= _utc(since))
        if after is not None:
            query = query.where(table.c.id > after)
        query = query.order_by(table.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_notification(row) for row in conn.execute(query)]

    async def notifications(
        self, council: str, *, since: dt.datetime | None = None, after: int | None = None, limit: int = 50
    ) -> list[BreakGlassNotification]:
        """Notifications for ``council`` (GSS code), oldest first: opened at or after ``since`` (UTC
        when naive), with id greater than ``after`` (keyset paging), at most ``limit``."""
        return await self._read("notifications", self._notifications, council, since, after, limit)


def _row(grant: BreakGlassGrant) -> dict[str, Any]:
    return {name: getattr(grant, name) for name in BreakGlassGrant.__slots__}  # type: ignore[attr-defined]
