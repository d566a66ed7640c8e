"""Request bodies of the gateway API, validated strictly (see the package docstring)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictStr,
    field_validator,
    model_validator,
)

from familyctx.councils import GSS_CODE_PATTERN
from familyctx.identifiers import is_placeholder_nhs_number, normalise_nhs_number, normalise_postcode
from familyctx.linkage.normalise import LinkFeatures, LinkInput, link_features

__all__ = [
    "EARLIEST_DATE_OF_BIRTH",
    "MAX_COMBINING_MARKS_IN_A_ROW",
    "BreakGlassId",
    "CaseReference",
    "FamilyContextRequest",
    "IsoDateTime",
    "Purpose",
    "SearchRequest",
    "SubjectRef",
]

# --------------------------------------------------------------------------------------------------
# Request field types
# --------------------------------------------------------------------------------------------------

#: Earliest date of birth accepted in a search (exclusive).
EARLIEST_DATE_OF_BIRTH = dt.date(1900, 1, 1)


class Purpose(StrEnum):
    """Why the worker asks (a fixed list; docs/access-control.md, "Purposes"). Recorded in the audit log."""

    s17_assessment = "s17_assessment"
    s47_enquiry = "s47_enquiry"
    cp_conference = "cp_conference"
    cla_review = "cla_review"
    early_help_assessment = "early_help_assessment"


def _iso_date(value: object) -> object:
    """Accept only a ``YYYY-MM-DD`` string naming a real calendar date (ISO 8601 calendar date)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    if not isinstance(value, str) or len(value) != 10 or value[4] != "-" or value[7] != "-":
        raise ValueError("must be a date in the form YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("is not a real calendar date (check the day and month)") from None


#: ISO 8601 / RFC 3339 date, or date and time with an optional fraction and offset (``Z`` or ±hh:mm).
_ISO_DATE_TIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|z|[+-]\d{2}:\d{2})?)?$"
)


def _iso_date_time(value: object) -> dt.datetime:
    """Accept only ISO 8601 text (``2026-05-01T09:00:00Z``, ``2026-05-01T10:00+01:00``, ``2026-05-01``):
    never a bare number (pydantic would read it as seconds since 1970). UTC when no offset is given;
    returned in UTC. ValueError (value-free wording) otherwise, or when the time in UTC would fall
    outside the years 1-9999 (an extreme offset on the first or last day)."""
    if not isinstance(value, str) or not _ISO_DATE_TIME.fullmatch(value.strip()):
        raise ValueError("must be an ISO 8601 date-time such as 2026-05-01T09:00:00Z (not a number)")
    text = value.strip()
    try:
        parsed = dt.datetime.fromisoformat(text[:-1] + "+00:00" if text[-1] in "Zz" else text)
    except ValueError:
        raise ValueError("is not a real date and time (check the day, month, hour and offset)") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    try:
        return parsed.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is outside the years 0001-9999 once converted to UTC") from None


#: A date-time parameter: ISO 8601 text only, returned as an aware UTC datetime (see _iso_date_time).
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_date_time)]


def _plausible_birth_date(value: dt.date) -> dt.date:
    if value <= EARLIEST_DATE_OF_BIRTH:
        raise ValueError("must be after 1900-01-01")
    if value > dt.datetime.now(dt.UTC).date():
        raise ValueError("must not be in the future")
    return value


def _valid_nhs_number(value: str) -> str:
    normalised = normalise_nhs_number(value)
    if normalised is None:
        if is_placeholder_nhs_number(value):
            raise ValueError(
                "is a placeholder (one digit repeated, or a run of digits), not an issued NHS number: "
                "leave it out when the number is not known"
            )
        raise ValueError("is not a valid NHS number (10 digits with a correct check digit)")
    return normalised


#: Why a search name has nothing to match on (the value itself is never repeated).
_NOTHING_MATCHABLE = (
    "has nothing to match on once titles (Mr, Mrs, Dr), placeholders (Baby, Unborn, Unknown), "
    "punctuation, digits and symbols are removed: give the name as recorded, or leave it out"
)


def _features(*, given_name: str | None = None, family_name: str | None = None) -> LinkFeatures:
    return link_features(LinkInput(source="", record_id="", given_name=given_name, family_name=family_name))


def _matchable_given_name(value: str | None) -> str | None:
    """A search's given name, refused (ValueError, value-free) when linkage normalisation
    (:func:`familyctx.linkage.normalise.link_features`) leaves no given name to compare: "!!", an
    emoji, "Baby", "Mr", "Not known". "Baby Jack" and "Mrs Ann" are kept (jack, ann)."""
    if value is not None and not _features(given_name=value).given_key:
        raise ValueError(_NOTHING_MATCHABLE)
    return value


def _matchable_family_name(value: str | None) -> str | None:
    """A search's family name, refused (ValueError, value-free) when linkage normalisation leaves no
    family name to compare: "!!", an emoji, "Mrs", "Unknown", "N/K"."""
    if value is not None and not _features(family_name=value).family_key:
        raise ValueError(_NOTHING_MATCHABLE)
    return value


def _valid_postcode(value: str) -> str:
    normalised = normalise_postcode(value)
    if normalised is None:
        raise ValueError("is not a UK postcode (for example SK1 3XE)")
    return normalised


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


#: Unicode general categories a name never holds: control (Cc, C0 and C1), format (Cf: bidirectional
#: overrides such as U+202E, zero-width spaces and joiners, U+FEFF), private use (Co), surrogates (Cs),
#: line and paragraph separators (Zl, Zp). The same set as registry names (settings.py).
_NOT_IN_A_NAME = frozenset({"Cc", "Cf", "Co", "Cs", "Zl", "Zp"})
#: Most combining marks (Unicode categories Mn, Mc, Me) accepted in a row after one letter: enough for
#: any script's accents and diacritics stacked on a letter, not for "Zalgo" text.
MAX_COMBINING_MARKS_IN_A_ROW = 4


def _plain_name_text(value: str) -> str:
    """A search name (Unicode text) without control or invisible formatting characters (general categories
    in :data:`_NOT_IN_A_NAME`) and with at most :data:`MAX_COMBINING_MARKS_IN_A_ROW` combining marks in a
    row. Accents, apostrophes, hyphens and any script are kept. ValueError (value-free) otherwise."""
    if any(unicodedata.category(char) in _NOT_IN_A_NAME for char in value):
        raise ValueError(
            "must not contain control or invisible formatting characters (such as a bidirectional "
            "override or a zero-width space): type the name as plain text"
        )
    run = 0
    for char in value:
        run = run + 1 if unicodedata.category(char).startswith("M") else 0
        if run > MAX_COMBINING_MARKS_IN_A_ROW:
            raise ValueError(
                f"has more than {MAX_COMBINING_MARKS_IN_A_ROW} combining marks (accents) in a row on one "
                "letter: type the name as recorded"
            )
    return value


CaseReference = Annotated[
    StrictStr,
    BeforeValidator(_strip),
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9 /_.:\-]*$",
        description="The worker's case reference: 1-64 letters, digits, spaces and / _ . : -",
        examples=["CASE-2026-0042"],
    ),
]
PersonName = Annotated[
    StrictStr,
    BeforeValidator(_strip),
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[^\x00-\x1f\x7f<>{}\[\]\\;=]+$",
        description="A name as recorded: up to 100 characters; letters (any script), spaces, ' and -; no "
        "control or invisible formatting characters, at most 4 combining marks in a row",
    ),
    AfterValidator(_plain_name_text),
]
NhsNumberText = Annotated[
    StrictStr,
    BeforeValidator(_strip),
    Field(
        min_length=10,
        max_length=13,
        pattern=r"^[0-9 \-]+$",
        description="NHS number: 10 digits, spaces or dashes allowed; must pass the modulus-11 check",
        examples=["943 476 5919"],
    ),
    AfterValidator(_valid_nhs_number),
]
PostcodeText = Annotated[
    StrictStr,
    BeforeValidator(_strip),
    Field(
        min_length=5,
        max_length=10,
        pattern=r"^[A-Za-z0-9 ]+$",
        description="UK postcode, any case or spacing",
        examples=["SK1 3XE"],
    ),
    AfterValidator(_valid_postcode),
]
DateOfBirth = Annotated[
    dt.date,
    BeforeValidator(_iso_date),
    AfterValidator(_plausible_birth_date),
    Field(
        description="Date of birth, YYYY-MM-DD; after 1900-01-01 and not in the future",
        examples=["2014-03-05"],
    ),
]
GssCode = Annotated[
    StrictStr,
    Field(
        pattern=GSS_CODE_PATTERN,
        description="ONS/GSS code of a local authority: E followed by 8 digits",
        examples=["E08000007"],
    ),
]
LocalPersonId = Annotated[
    StrictStr,
    Field(
        min_length=1,
        max_length=48,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:\-]*$",
        description="The council's own person id (SSD PERS001A)",
    ),
]

BreakGlassId = Annotated[
    StrictStr,
    Field(
        min_length=36,
        max_length=36,
        pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
        description="The id of your break-glass grant for this case and purpose (POST /v1/break-glass), "
        "to go past a purpose restriction of the gateway policy. Flags the request as break glass.",
        examples=["0b3c2a4e-8f1d-4c6b-9a7e-2d5f6e8a9b10"],
    ),
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SearchRequest(_Request):
    """``POST /v1/searches``: identifiers to search every council for.

    At least one of: ``nhs_number``; ``family_name``; ``given_name`` with ``date_of_birth``;
    ``date_of_birth`` with ``postcode`` (data minimisation: never a date of birth alone). A name counts
    only when something matchable is left after linkage normalisation (titles, placeholders such as
    "Baby", punctuation and symbols removed); a name with nothing left is refused (422 on that field),
    so no query reaching a council is broader than these combinations.
    """

    purpose: Purpose
    case_reference: CaseReference
    nhs_number: NhsNumberText | None = None
    given_name: PersonName | None = None
    family_name: PersonName | None = None
    date_of_birth: DateOfBirth | None = None
    postcode: PostcodeText | None = None
    break_glass_id: BreakGlassId | None = None

    @field_validator("given_name")
    @classmethod
    def _given_matchable(cls, value: str | None) -> str | None:
        return _matchable_given_name(value)

    @field_validator("family_name")
    @classmethod
    def _family_matchable(cls, value: str | None) -> str | None:
        return _matchable_family_name(value)

    @model_validator(mode="after")
    def _enough_to_search(self) -> SearchRequest:
        if self.nhs_number or self.family_name:
            return self
        if self.date_of_birth and (self.given_name or self.postcode):
            return self
        raise ValueError(
            "give at least an NHS number, a family name, a given name with a date of birth, "
            "or a date of birth with a postcode"
        )


class SubjectRef(_Request):
    """The person chosen from search results: a council and that council's own person id."""

    gss_code: GssCode
    local_person_id: LocalPersonId


class FamilyContextRequest(_Request):
    """``POST /v1/family-context``: assemble the family around ``subject`` for ``purpose``."""

    purpose: Purpose
    case_reference: CaseReference
    subject: SubjectRef
    break_glass_id: BreakGlassId | None = None
