"""The gateway access policy as a table an IG team can read: role x action x purpose -> decision.

:func:`access_rows` asks the policy itself, through :meth:`AccessPolicy.authorise` (the very call every
request goes through), for each role of :data:`~familyctx_gateway.access.ROLE_ORDER`, each action of
:data:`~familyctx_gateway.access.ACTIONS` and, for actions that carry one, each purpose; the requests
that may use break glass (``search``, ``family_context``) are asked again with a grant. A decision is
``allowed``, ``break glass`` (allowed only with a valid break-glass grant) or ``refused``. An action
decided the same for every purpose is one row (purpose ``any``). :func:`render_table` prints the rows.
Used by ``familyctx gateway check-policy``; mirrors the adapter's
:mod:`familyctx_adapter.policy_table`.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from familyctx_gateway.access import ACTIONS, ROLE_ORDER, AccessPolicy
from familyctx_gateway.api.schemas import Purpose
from familyctx_gateway.auth import Principal
from familyctx_gateway.break_glass import BreakGlassGrant
from familyctx_gateway.errors import Forbidden

__all__ = [
    "ALLOWED",
    "BREAK_GLASS",
    "GRANT_ACTIONS",
    "PURPOSE_ACTIONS",
    "REFUSED",
    "AccessRow",
    "access_rows",
    "decision",
    "render_table",
]

#: Decisions shown in the table.
ALLOWED, BREAK_GLASS, REFUSED = "allowed", "break glass", "refused"
#: Actions a request makes for a purpose (the others carry none).
PURPOSE_ACTIONS = ("search", "family_context", "open_break_glass")
#: Actions a break-glass grant may be sent with (``break_glass_id`` in the request body).
GRANT_ACTIONS = ("search", "family_context")
#: The council the asking worker is from (any GSS code: the policy is asked, not a real council).
_ORGANISATION = "E08000007"


@dataclass(frozen=True, slots=True)
class AccessRow:
    """One line of the table: ``role``, ``action``, ``purpose`` (a purpose, ``any`` when every purpose
    is decided the same, ``-`` for an action without one) and ``decision`` (:data:`ALLOWED`,
    :data:`BREAK_GLASS` or :data:`REFUSED`)."""

    role: str
    action: str
    purpose: str
    decision: str


def _principal(role: str) -> Principal:
    return Principal(
        sub="check-policy",
        name="",
        organisation=_ORGANISATION,
        roles=(role,),
        client="check-policy",
        jti="",
        issuer="",
    )


def _grant(role: str, purpose: str) -> BreakGlassGrant:
    """A stand-in for a valid grant: the policy only asks whether one was sent."""
    now = dt.datetime.now(dt.UTC)
    return BreakGlassGrant(
        id="00000000-0000-4000-8000-000000000000",
        user_sub="check-policy",
        issuer="",
        user_name="",
        organisation=_ORGANISATION,
        client="check-policy",
        role=role,
        purpose=purpose,
        case_reference="CHECK-POLICY",
        reason="",
        opened_at=now,
        expires_at=now + dt.timedelta(minutes=30),
        request_id="check-policy",
    )


def _allowed(policy: AccessPolicy, role: str, action: str, purpose: str, grant: bool) -> bool:
    try:
        policy.authorise(
            _principal(role),
            action=action,
            purpose=purpose or None,
            break_glass=_grant(role, purpose) if grant else None,
        )
    except Forbidden:
        return False
    return True


def decision(policy: AccessPolicy, role: str, action: str, purpose: str = "") -> str:
    """What ``policy`` decides for a worker holding only ``role`` asking ``action`` (one of
    :data:`~familyctx_gateway.access.ACTIONS`) for ``purpose`` ("" for none)."""
    if _allowed(policy, role, action, purpose, grant=False):
        return ALLOWED
    if action in GRANT_ACTIONS and _allowed(policy, role, action, purpose, grant=True):
        return BREAK_GLASS
    return REFUSED


def access_rows(policy: AccessPolicy) -> list[AccessRow]:
    """Rows for every role (in :data:`~familyctx_gateway.access.ROLE_ORDER`) and action, one per
    purpose where the purposes are decided differently."""
    rows: list[AccessRow] = []
    for role in ROLE_ORDER:
        for action in ACTIONS:
            if action not in PURPOSE_ACTIONS:
                rows.append(AccessRow(role, action, "-", decision(policy, role, action)))
                continue
            by_purpose = {p.value: decision(policy, role, action, p.value) for p in Purpose}
            if len(set(by_purpose.values())) == 1:
                rows.append(AccessRow(role, action, "any", next(iter(by_purpose.values()))))
            else:
                rows.extend(AccessRow(role, action, p, d) for p, d in by_purpose.items())
    return rows


def render_table(rows: Sequence[AccessRow]) -> str:
    """The rows as a fixed-width text table (a blank line between roles), with a legend."""
    head = ("role", "action", "purpose", "decision")
    body = [(r.role, r.action, r.purpose, r.decision) for r in rows]
    widths = [max(len(row[i]) for row in (head, *body)) for i in range(len(head))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) for cell, w in zip(cells, widths, strict=True)).rstrip()

    lines = [line(head), "  ".join("-" * w for w in widths)]
    for index, row in enumerate(body):
        if index and row[0] != body[index - 1][0]:
            lines.append("")
        lines.append(line(row))
    legend = (
        "Each row is a worker whose token holds that one role. allowed = the policy permits it; break "
        "glass = only with a valid break-glass grant for the case (search and family_context); refused = "
        "not even with break glass. purpose any = the same for every purpose; - = the action has no "
        "purpose. search, family_context and open_break_glass also need the worker's council "
        "(organisation) in the token, whatever the policy."
    )
    lines += ["", *textwrap.wrap(legend, width=100)]
    return "\n".join(lines)
