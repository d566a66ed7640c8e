"""Request and response bodies of break glass (``/v1/break-glass``): open a grant, read it back, and the
notifications IG officers list. The worker's reason is personal data: it is returned to the worker who
wrote it and to IG officers, and never logged."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from familyctx_gateway.api.schemas.requests import CaseReference, Purpose

__all__ = [
    "DEFAULT_BREAK_GLASS_MINUTES",
    "BreakGlassGrantResponse",
    "BreakGlassNotificationResponse",
    "BreakGlassNotificationsResponse",
    "BreakGlassRequest",
    "BreakGlassWorker",
]

#: Minutes a grant lasts when the request does not say (at most the gateway's ``break_glass.max_minutes``).
DEFAULT_BREAK_GLASS_MINUTES = 30


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


Reason = Annotated[
    StrictStr,
    BeforeValidator(_strip),
    Field(
        min_length=20,
        max_length=1000,
        # Text, line breaks and tabs; no other control characters.
        pattern=r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]+$",
        description="Why you need access beyond your role's purposes, in your own words: 20-1000 "
        "characters (after trimming spaces). Shown to the IG officers of every council in the federation.",
        examples=["Child presented at A&E out of hours; duty manager needs early help history tonight"],
    ),
]


class BreakGlassRequest(BaseModel):
    """``POST /v1/break-glass``: open a time-boxed grant for one purpose and one case reference."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    case_reference: CaseReference
    reason: Reason
    minutes: int | None = Field(
        default=None,
        ge=1,
        le=1440,
        description=f"How long the grant lasts: 1 to the gateway's break_glass.max_minutes (default "
        f"{DEFAULT_BREAK_GLASS_MINUTES}, or the maximum when that is lower)",
    )


class BreakGlassGrantResponse(BaseModel):
    """A grant, as its worker sees it (``POST /v1/break-glass`` 201, ``GET /v1/break-glass/{id}``).

    ``active``: usable now (not expired); ``councils_notified``: GSS codes of the councils whose IG
    officers received a notification.
    """

    break_glass_id: str
    purpose: Purpose
    case_reference: str
    reason: str
    opened_at: dt.datetime
    expires_at: dt.datetime
    active: bool
    councils_notified: list[str] = Field(default_factory=list)


class BreakGlassWorker(BaseModel):
    """Who opened a grant: ``sub`` (token subject), ``name``, ``organisation`` (GSS code of their council)."""

    sub: str
    name: str
    organisation: str


class BreakGlassNotificationResponse(BaseModel):
    """One council's notification of a grant. ``id``: the notification's id (use as ``after`` to page)."""

    id: int
    council_gss_code: str
    break_glass_id: str
    worker: BreakGlassWorker
    purpose: Purpose
    case_reference: str
    reason: str
    opened_at: dt.datetime
    expires_at: dt.datetime


class BreakGlassNotificationsResponse(BaseModel):
    """``GET /v1/break-glass/notifications``: oldest first. ``next_after``: pass as ``after`` for the next
    page; null when this page is the last."""

    notifications: list[BreakGlassNotificationResponse]
    next_after: int | None = None
