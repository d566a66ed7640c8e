"""Notify each council the first time it is asked for data under a break-glass grant, before it is asked.

Opening a grant notifies only the worker's own council (:mod:`familyctx_gateway.break_glass`). A
request made under the grant then asks some councils for data (a search asks every council; a family
context the subject's council and those that may hold relatives): before the first assertion for that
grant leaves for a council, :class:`BreakGlassUses` commits a ``break_glass`` record to the audit log
whose index row is that council's notification (``notified_because = 'used'``, ``first_used_at``), so
its IG officers can list it (``GET /v1/break-glass/notifications``). Once per grant and council: later
requests under the same grant find the notification and add none. If the record cannot be committed the
council is not asked and the request fails 503 (fail closed: no council receives a break-glass request,
with the worker's reason, that its IG officers are not told of).

The hook is installed per request by ``run_audited`` through
:data:`familyctx_gateway.adapter_client.before_data_call`; Describe calls never carry break glass.
Within one gateway process concurrent requests under one grant share one notification; two gateway
replicas racing on a grant's first use at the same council may each record one (both are listed).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa

from familyctx_gateway.audit import AuditEvent, AuditOutcome, AuditWriteFailed, RecordClass
from familyctx_gateway.audit_record import rfc3339
from familyctx_gateway.audit_schema import break_glass_notifications
from familyctx_gateway.auth import Principal
from familyctx_gateway.break_glass import BreakGlassGrant, BreakGlassStore
from familyctx_gateway.errors import AuditUnavailable

__all__ = ["USED", "BreakGlassUses"]

log = logging.getLogger("familyctx_gateway.break_glass")

#: ``notified_because`` of a notification made when a council is first asked under a grant.
USED = "used"


class BreakGlassUses:
    """Records first uses of grants per council (see the module docstring) through ``store`` (its audit
    log and database). One per gateway process; remembers the (grant, council) pairs already notified
    until their grant expires, so that only a grant's first request to a council costs a write."""

    def __init__(self, store: BreakGlassStore) -> None:
        self.store = store
        self._done: dict[str, tuple[dt.datetime, set[str]]] = {}  # grant id -> (expires_at, councils)
        self._pending: dict[tuple[str, str], asyncio.Task[None]] = {}

    def hook(
        self, grant: BreakGlassGrant, principal: Principal, *, role: str, request_id: str, endpoint: str
    ) -> Callable[[str], Awaitable[None]]:
        """The ``before_data_call`` hook of one request made under ``grant`` by ``principal`` (``role``:
        the role it was authorised under; ``endpoint``: e.g. ``POST /v1/searches``): awaited with a
        council's GSS code before each call for data. Raises AuditUnavailable (503) when the
        notification cannot be committed."""

        async def before(council: str) -> None:
            await self.notify(grant, council, principal, role=role, request_id=request_id, endpoint=endpoint)

        return before

    def _known(self, grant: BreakGlassGrant, council: str) -> bool:
        entry = self._done.get(grant.id)
        return entry is not None and council in entry[1]

    def _remember(self, grant: BreakGlassGrant, councils: set[str]) -> None:
        now = dt.datetime.now(dt.UTC)
        for grant_id in [g for g, (expires, _) in self._done.items() if expires <= now]:
            del self._done[grant_id]  # an expired grant is never used again
        self._done.setdefault(grant.id, (grant.expires_at, set()))[1].update(councils)

    async def notify(
        self,
        grant: BreakGlassGrant,
        council: str,
        principal: Principal,
        *,
        role: str,
        request_id: str,
        endpoint: str,
    ) -> None:
        """Make sure ``council`` (GSS code) has its notification of ``grant``: committed now if it has
        none yet. Concurrent callers for one (grant, council) wait for the same write."""
        if self._known(grant, council):
            return
        key = (grant.id, council)
        task = self._pending.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(
                self._notify(grant, council, principal, role, request_id, endpoint)
            )
            self._pending[key] = task
            task.add_done_callback(lambda _: self._pending.pop(key, None))
        # Shielded: a request cancelled while waiting must not cancel the write others wait for.
        await asyncio.shield(task)

    def _used_councils(self, grant_id: str) -> set[str]:
        table = break_glass_notifications
        query = sa.select(table.c.council_gss_code).where(
            table.c.grant_id == grant_id, table.c.notified_because == USED
        )
        with self.store._connect() as conn:
            return {str(code) for code in conn.execute(query).scalars()}

    async def _notify(
        self,
        grant: BreakGlassGrant,
        council: str,
        principal: Principal,
        role: str,
        request_id: str,
        endpoint: str,
    ) -> None:
        # Another gateway process (or this one, before a restart) may have notified it already.
        already = await self.store._read("used_councils", self._used_councils, grant.id)
        if council in already:
            self._remember(grant, already)
            return
        if self.store.audit is None:
            raise AuditUnavailable()
        now = dt.datetime.now(dt.UTC)
        event = AuditEvent(
            request_id=request_id,
            user_sub=principal.sub,
            user_name=principal.name,
            organisation=principal.organisation,
            roles=list(principal.roles),
            client=principal.client,
            jti=principal.jti,
            # Not an HTTP exchange of its own: recorded during the request ``request_id`` (status 0).
            endpoint=f"{endpoint} (break glass first use)"[:100],
            outcome=AuditOutcome.success,
            http_status=0,
            record_class=RecordClass.break_glass,
            issuer=principal.issuer,
            purpose=grant.purpose,
            case_reference=grant.case_reference,
            role=role,
            break_glass=True,
            break_glass_id=grant.id,
            break_glass_reason=grant.reason,
            occurred_at=now,
            notify={
                "break_glass_id": grant.id,
                "councils": [council],
                "opened_at": rfc3339(grant.opened_at),
                "expires_at": rfc3339(grant.expires_at),
                "first_used_at": rfc3339(now),
            },
        )
        try:
            await self.store.audit.record(event)
        except AuditWriteFailed:
            log.error(
                "break glass use not recorded request_id=%s grant_id=%s council=%s",
                request_id,
                grant.id,
                council,
            )
            raise AuditUnavailable() from None
        self._remember(grant, {council})
        log.info(
            "break glass first use notified request_id=%s grant_id=%s council=%s",
            request_id,
            grant.id,
            council,
        )
