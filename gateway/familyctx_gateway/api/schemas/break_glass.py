"""Request and response bodies of break glass (``/v1/break-glass``): open a grant, read it back, and the
notifications IG officers list. The worker's reason is personal data: it is returned to the worker who
wrote it and to IG officers, and never logged."""

from __future__ import annotations

import datetime as dt
import unicodedata
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from familyctx_gateway.api.schemas.requests import CaseReference, Purpose

__all__ = [
    "DEFAULT_BREAK_GLASS_MINUTES",
    "MIN_REASON_LETTERS_OR_DIGITS",
    "BreakGlassGrantResponse",
    "BreakGlassNotificationResponse",
    "BreakGlassNotificationsResponse",
    "BreakGlassRequest",
    "BreakGlassWorker",
]

#: Minutes a grant lasts when the request does not say (at most the gateway's ``break_glass.max_minutes``).
DEFAULT_BREAK_GLASS_MINUTES = 30


#: Letters or digits a reason needs at least (after trimming), so that it says something.
MIN_REASON_LETTERS_OR_DIGITS = 20
#: Fewest different letters or digits a reason may use: "aaaa..." or "abab..." says nothing.
_MIN_DIFFERENT_CHARACTERS = 5
#: Unicode general categories a reason may not contain: control (line breaks and tabs included),
#: format (bidirectional overrides, zero-width characters), private use, surrogates, line and paragraph
#: separators. Ordinary spaces (category Zs) are fine.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})


def _nfc_strip(value: object) -> object:
    """Unicode NFC (one code point per accented letter, as typed on most keyboards), then trimmed."""
    return unicodedata.normalize("NFC", value).strip() if isinstance(value, str) else value


def _check_reason(value: str) -> str:
    """A reason a person wrote: no invisible or control characters, at least
    :data:`MIN_REASON_LETTERS_OR_DIGITS` letters or digits, not a few characters repeated."""
    if any(unicodedata.category(c) in _REFUSED_CATEGORIES for c in value):
        raise ValueError(
            "must be one line of visible text: no line breaks, tabs, control characters or invisible "
            "formatting (such as bidirectional overrides)"
        )
    letters = [c.casefold() for c in value if unicodedata.category(c)[0] in "LN"]
    if len(letters) < MIN_REASON_LETTERS_OR_DIGITS:
        raise ValueError(
            f"must say why you need access in at least {MIN_REASON_LETTERS_OR_DIGITS} letters or digits"
        )
    if len(set(letters)) < _MIN_DIFFERENT_CHARACTERS:
        raise ValueError("must say why you need access in words, not repeat a few characters")
    return value


Reason = Annotated[
    StrictStr,
    BeforeValidator(_nfc_strip),
    Field(
        min_length=20,
        max_length=1000,
        description="Why you need access beyond your role's purposes, in your own words: one line of "
        f"20-1000 characters (after trimming spaces, Unicode NFC) with at least "
        f"{MIN_REASON_LETTERS_OR_DIGITS} letters or digits; no line breaks, tabs, control or invisible "
        "formatting characters. Shown to the IG officers of your council and of every council asked "
        "for data under the grant.",
        examples=["Child presented at A&E out of hours; duty manager needs early help history tonight"],
    ),
    AfterValidator(_check_reason),
]


class BreakGlassRequest(BaseModel):
    """``POST /v1/break-glass``: open a time-boxed grant for one purpose and one case reference."""

    model_config = ConfigDict(extra="forbid")

    purpose: Purpose
    case_reference: CaseReference
    reason: Reason
    minutes: int | None = Field(
        default=None,
        strict=True,  # a JSON integer: not "10", not true, not 10.0
        ge=1,
        le=1440,
        description=f"How long the grant lasts, a whole number (JSON integer) of minutes: 1 to the "
        f"gateway's break_glass.max_minutes (default {DEFAULT_BREAK_GLASS_MINUTES}, or the maximum when "
        "that is lower)",
    )


class BreakGlassGrantResponse(BaseModel):
    """A grant, as its worker sees it (``POST /v1/break-glass`` 201, ``GET /v1/break-glass/{id}``).

    ``active``: usable now (not expired); ``councils_notified``: GSS codes of the councils whose IG
    officers received a notification: the worker's own council when it was opened, then each council
    asked for data under it.
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
    """One council's notification of a grant. ``id``: the notification's id (use as ``after`` to page).

    ``notified_because``: ``opened`` (a worker of this council opened the grant) or ``used`` (this
    council was asked for data under the grant; ``first_used_at``: when it was first asked, null for
    ``opened``). One ``used`` notification per grant and council, however often it is asked.
    """

    id: int
    council_gss_code: str
    break_glass_id: str
    notified_because: Literal["opened", "used"] = "opened"
    first_used_at: dt.datetime | None = None
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
