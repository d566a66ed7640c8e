"""Break glass: a time-boxed grant, with a written reason, to go past a purpose restriction.

A worker opens a grant (``POST /v1/break-glass``) for one purpose and one case reference, for a few
minutes; their own council gets a notification record its IG officers can list, and every other council
gets one the first time it is asked for data under the grant (:mod:`familyctx_gateway.break_glass_use`),
before it is asked. Requests that send the grant's id (``break_glass_id``) are checked here (same
worker, same case reference and purpose, not expired) and then pass the gateway policy's purpose
restrictions (and only those, see :mod:`familyctx_gateway.access`); they are flagged ``break_glass`` in
the audit and in the assertion each council asked receives (with the reason).

Storage: the audit log. Opening a grant is one ``break_glass`` record of the gateway's Merkle-tree log
(:mod:`familyctx_gateway.audit`) carrying the grant (reason, times, councils notified); the rows of
``break_glass_grants`` and ``break_glass_notifications`` (tables in
:mod:`familyctx_gateway.audit_schema`) are index rows of that record, written in the same group-commit
transaction, so the grant, its notifications and its audit record commit together or not at all. The
worker's reason is personal data: it is stored in the audit database only, never logged.
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

from familyctx.auditlog import READ_ONLY
from familyctx_gateway.audit import AuditEvent, AuditStore, AuditWriteFailed, RecordClass
from familyctx_gateway.audit_record import rfc3339
from familyctx_gateway.audit_schema import break_glass_grants, break_glass_notifications
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
    """One council's notification of a grant (a row of ``break_glass_notifications``).

    ``notified_because``: ``opened`` (the worker's own council, when the grant was opened) or ``used``
    (the council was asked for data under the grant; ``first_used_at``: when it was first asked).
    """

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
    notified_because: str = "opened"
    first_used_at: dt.datetime | None = None


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
    if values.get("first_used_at") is not None:
        values["first_used_at"] = _utc(values["first_used_at"])
    return BreakGlassNotification(**values)


class BreakGlassStore:
    """Grants and notifications on the audit database ``engine`` (SQLAlchemy Core), opened through the
    audit log ``audit``.

    Blocking database work runs in a worker thread. Database failures while opening a grant raise
    :class:`~familyctx_gateway.audit.AuditWriteFailed` (the caller answers 503); while reading,
    :class:`~familyctx_gateway.errors.AuditUnavailable` (503: the audit database is unavailable).
    """

    def __init__(self, engine: sa.Engine, audit: AuditStore | None = None) -> None:
        self.engine = engine
        self.audit = audit

    def _connect(self) -> sa.Connection:
        # A read: a deferred transaction on SQLite, so it never waits for (or holds) the write lock.
        return self.engine.connect().execution_options(**READ_ONLY)

    async def _read(self, what: str, read: Callable[..., _T], *args: Any) -> _T:
        try:
            return await asyncio.to_thread(read, *args)
        except (SQLAlchemyError, OSError) as exc:
            log.error("break glass read failed what=%s error=%s", what, type(exc).__name__)
            raise AuditUnavailable() from None

    # -- opening ----------------------------------------------------------------------------------

    async def open(self, grant: BreakGlassGrant, *, councils: Sequence[str], audit_event: AuditEvent) -> None:
        """Commit ``grant``, one notification per council in ``councils`` (GSS codes) and the audit
        record of opening it (``audit_event``, made a ``break_glass`` record carrying the grant), in one
        transaction. Raises AuditWriteFailed when it is not committed."""
        if self.audit is None:
            raise AuditWriteFailed("no audit log to record the grant in")
        audit_event.record_class = RecordClass.break_glass
        audit_event.issuer = grant.issuer
        audit_event.break_glass_reason = grant.reason
        audit_event.grant = {
            "break_glass_id": grant.id,
            "reason": grant.reason,
            "opened_at": rfc3339(grant.opened_at),
            "expires_at": rfc3339(grant.expires_at),
            "councils_notified": list(councils),
        }
        try:
            await self.audit.record(audit_event)
        except AuditWriteFailed:
            log.error("break glass not recorded request_id=%s", grant.request_id)
            raise
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
        with self._connect() as conn:
            row = conn.execute(
                sa.select(break_glass_grants).where(break_glass_grants.c.id == grant_id)
            ).first()
        return _grant(row) if row is not None else None

    async def get(self, grant_id: str) -> BreakGlassGrant | None:
        """The grant with id ``grant_id``, or None."""
        return await self._read("grant", self._get, grant_id)

    def _opened_since(self, sub: str, issuer: str, since: dt.datetime) -> list[dt.datetime]:
        table = break_glass_grants
        query = (
            sa.select(table.c.opened_at)
            .where(table.c.user_sub == sub, table.c.issuer == issuer, table.c.opened_at > since)
            .order_by(table.c.opened_at)
        )
        with self._connect() as conn:
            return [_utc(opened) for opened in conn.execute(query).scalars()]

    async def opened_since(self, principal: Principal, since: dt.datetime) -> list[dt.datetime]:
        """When ``principal`` (same ``sub`` from the same issuer) opened each grant after ``since`` (UTC),
        oldest first: for the limit on grants per worker per day."""
        return await self._read(
            "opened_since", self._opened_since, principal.sub, principal.issuer, _utc(since)
        )

    def _notified_councils(self, grant_id: str) -> list[str]:
        table = break_glass_notifications
        query = sa.select(table.c.council_gss_code).where(table.c.grant_id == grant_id).order_by(table.c.id)
        with self._connect() as conn:
            return list(dict.fromkeys(str(code) for code in conn.execute(query).scalars()))

    async def notified_councils(self, grant_id: str) -> list[str]:
        """GSS codes of the councils notified of grant ``grant_id`` (when it was opened, or asked for
        data under it), each once, in the order they were first notified."""
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
        with self._connect() as conn:
            return [_notification(row) for row in conn.execute(query)]

    async def notifications(
        self, council: str, *, since: dt.datetime | None = None, after: int | None = None, limit: int = 50
    ) -> list[BreakGlassNotification]:
        """Notifications for ``council`` (GSS code), oldest first: opened at or after ``since`` (UTC
        when naive), with id greater than ``after`` (keyset paging), at most ``limit``."""
        return await self._read("notifications", self._notifications, council, since, after, limit)
