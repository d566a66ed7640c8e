"""JSON shapes of the gateway's HTTP API (``/v1``), as published in ``/openapi.json``.

Requests are validated strictly: unknown fields are rejected, strings have bounded length and a safe
character set, dates are real ISO 8601 calendar dates (``YYYY-MM-DD``). Field names are snake_case and
follow the contract (``familycontext.v1``) and the SSD: ``nhs_number`` (SSD PERS013A), ``local_person_id``
(SSD PERS001A), ``gss_code`` (ONS/GSS code of a local authority).

Responses carry personal data only in the fields named for it; every source (council) ends each request
in one explicit state, and every fact carries its provenance.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, StrictStr, model_validator

from familyctx.identifiers import normalise_nhs_number, normalise_postcode

__all__ = [
    "Address",
    "Candidate",
    "CouncilSearchState",
    "DatasetFreshness",
    "DatasetState",
    "FamilyContextRequest",
    "FamilyContextResponse",
    "FamilyPerson",
    "FieldConflict",
    "FieldEvidence",
    "FieldOutcome",
    "Involvement",
    "InvolvementStatus",
    "MatchEvidence",
    "MatchGrade",
    "PersonCouncilState",
    "PersonDatasetState",
    "PersonRecord",
    "PossibleMatch",
    "Practitioner",
    "Provenance",
    "Purpose",
    "RecordRef",
    "Relationship",
    "SearchRequest",
    "SearchResponse",
    "SourceState",
    "SourceStatus",
    "SourcesResponse",
    "SubjectRef",
]

# --------------------------------------------------------------------------------------------------
# Request field types
# --------------------------------------------------------------------------------------------------

#: Earliest date of birth accepted in a search (exclusive).
EARLIEST_DATE_OF_BIRTH = dt.date(1900, 1, 1)


class Purpose(StrEnum):
    """Why the worker asks (a fixed list; interfaces.md). Recorded in the audit log."""

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


def _plausible_birth_date(value: dt.date) -> dt.date:
    if value <= EARLIEST_DATE_OF_BIRTH:
        raise ValueError("must be after 1900-01-01")
    if value > dt.datetime.now(dt.UTC).date():
        raise ValueError("must not be in the future")
    return value


def _valid_nhs_number(value: str) -> str:
    normalised = normalise_nhs_number(value)
    if normalised is None:
        raise ValueError("is not a valid NHS number (10 digits with a correct check digit)")
    return normalised


def _valid_postcode(value: str) -> str:
    normalised = normalise_postcode(value)
    if normalised is None:
        raise ValueError("is not a UK postcode (for example SK1 3XE)")
    return normalised


def _strip(value: object) -> object:
    return value.strip() if isinstance(value, str) else value


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
        description="A name as recorded: up to 100 characters; letters (any script), spaces, ' and -",
    ),
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
        pattern=r"^[EWSN][0-9]{8}$", description="ONS/GSS code of a local authority", examples=["E08000007"]
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


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)


class SearchRequest(_Request):
    """``POST /v1/searches``: identifiers to search every council for.

    At least one of: ``nhs_number``; ``family_name``; ``given_name`` with ``date_of_birth``;
    ``date_of_birth`` with ``postcode``.
    """

    purpose: Purpose
    case_reference: CaseReference
    nhs_number: NhsNumberText | None = None
    given_name: PersonName | None = None
    family_name: PersonName | None = None
    date_of_birth: DateOfBirth | None = None
    postcode: PostcodeText | None = None

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


# --------------------------------------------------------------------------------------------------
# Response shapes
# --------------------------------------------------------------------------------------------------


class SourceState(StrEnum):
    """How one council's adapter ended the request (domain.md: nothing is silently missing)."""

    ok = "ok"
    unavailable = "unavailable"
    timed_out = "timed_out"
    error = "error"
    unknown = "unknown"  # only in GET /v1/sources, before the council was first asked


class DatasetState(StrEnum):
    """One dataset's outcome for one person (contract DatasetState)."""

    records_found = "records_found"
    none_found = "none_found"
    not_in_cohort = "not_in_cohort"
    withheld = "withheld"
    stale = "stale"
    unspecified = "unspecified"


class CouncilSearchState(StrEnum):
    """What looking for one person in one council gave."""

    records_found = (
        "records_found"  # a record of this person there (the source of, or merged by certain link)
    )
    possible_match_only = "possible_match_only"  # only probable/possible candidates, not merged
    none_found = "none_found"
    not_searched = "not_searched"  # e.g. no identifiers good enough to search on
    unavailable = "unavailable"
    timed_out = "timed_out"
    error = "error"


class MatchGrade(StrEnum):
    """Grade of a link between two records (certain records merge; others are shown, never merged)."""

    certain = "certain"
    probable = "probable"
    possible = "possible"


class FieldOutcome(StrEnum):
    agree = "agree"
    similar = "similar"
    swapped = "swapped"  # date of birth with day and month swapped
    disagree = "disagree"
    missing = "missing"  # absent on one side or both


class DatasetFreshness(BaseModel):
    """A dataset a council offers, with its freshness and coverage (contract Dataset)."""

    dataset_id: str
    name: str
    category: str
    refreshed_at: dt.datetime | None = None
    refresh_interval_seconds: int = 0
    stale: bool = False
    coverage_from: dt.date | None = None
    coverage_area: str = ""
    cohort_min_age_years: int | None = None
    cohort_max_age_years: int | None = None


class SourceStatus(BaseModel):
    """One council's state at the end of this request. ``detail`` never holds personal data."""

    gss_code: str
    name: str
    state: SourceState
    detail: str | None = None
    latency_ms: int | None = None
    datasets: list[DatasetFreshness] = Field(default_factory=list)


class SourceSummary(SourceStatus):
    """A configured council as ``GET /v1/sources`` reports it: last known state."""

    last_checked_at: dt.datetime | None = None
    contract_version: str | None = None
    source_system: str | None = None


class SourcesResponse(BaseModel):
    sources: list[SourceSummary]


class Provenance(BaseModel):
    council_gss_code: str
    source_system: str = ""
    source_table: str = ""
    record_id: str = ""
    extracted_at: dt.datetime | None = None


class Address(BaseModel):
    lines: list[str] = Field(default_factory=list)
    postcode: str | None = None
    uprn: str | None = None
    start_date: dt.date | None = None
    end_date: dt.date | None = None


class RecordRef(BaseModel):
    gss_code: str
    local_person_id: str


class PersonRecord(BaseModel):
    """One person as one council records them (demographics only)."""

    gss_code: str
    council_name: str
    local_person_id: str
    nhs_number: str | None = None
    given_name: str = ""
    family_name: str = ""
    date_of_birth: dt.date | None = None
    date_of_birth_estimated: bool = False
    sex: str = "unspecified"
    address: Address | None = None
    date_of_death: dt.date | None = None
    provenance: Provenance | None = None


class FieldEvidence(BaseModel):
    """How one identifier compared between two records. Values are not repeated here."""

    field: str  # nhs_number | family_name | given_name | date_of_birth | postcode
    outcome: FieldOutcome
    score: float | None = None  # name similarity 0-100 (rapidfuzz ratio on normalised names)


class MatchEvidence(BaseModel):
    """Why two records are (or might be) the same person."""

    left: RecordRef
    right: RecordRef
    match_grade: MatchGrade
    fields: list[FieldEvidence]


class PossibleMatch(BaseModel):
    """A probable or possible match, shown for the worker to confirm; never merged."""

    candidate_id: str | None = None  # search: the other candidate
    record: PersonRecord | None = None  # family context: the other council's record
    match_grade: MatchGrade
    evidence: MatchEvidence


class Candidate(BaseModel):
    """A search result: one person, possibly recorded in several councils (linked only when certain).

    ``match_grade`` is ``certain`` when several records were merged, ``None`` for a single record.
    """

    candidate_id: str
    match_grade: MatchGrade | None = None
    records: list[PersonRecord]
    evidence: list[MatchEvidence] = Field(default_factory=list)
    possible_matches: list[PossibleMatch] = Field(default_factory=list)


class SearchResponse(BaseModel):
    request_id: str
    purpose: Purpose
    case_reference: str
    candidates: list[Candidate]
    sources: list[SourceStatus]


class FieldConflict(BaseModel):
    """Records of one merged person disagree on a field: every value shown, none chosen."""

    field: str
    values: list[str]
    sources: list[list[RecordRef]]  # sources[i] recorded values[i]


class PersonDatasetState(BaseModel):
    gss_code: str
    local_person_id: str
    dataset_id: str
    state: DatasetState
    reason: str = ""


class PersonCouncilState(BaseModel):
    gss_code: str
    state: CouncilSearchState
    detail: str | None = None


class FamilyPerson(BaseModel):
    """One person of the family, merged across councils by certain links only."""

    person_id: str  # stable within this response only, e.g. "p1"
    is_subject: bool = False
    given_name: str = ""
    family_name: str = ""
    date_of_birth: dt.date | None = None
    records: list[PersonRecord]
    evidence: list[MatchEvidence] = Field(default_factory=list)
    conflicts: list[FieldConflict] = Field(default_factory=list)
    possible_matches: list[PossibleMatch] = Field(default_factory=list)
    council_states: list[PersonCouncilState] = Field(default_factory=list)
    dataset_states: list[PersonDatasetState] = Field(default_factory=list)


class Relationship(BaseModel):
    """``related_person_id`` is ``type`` of ``person_id`` (contract Relationship)."""

    person_id: str
    related_person_id: str
    type: str  # parent, child, sibling, half_sibling, step_parent, step_child, partner, grandparent, ...
    description: str = ""
    provenance: list[Provenance] = Field(default_factory=list)


class InvolvementStatus(StrEnum):
    open = "open"
    closed = "closed"
    unknown = "unknown"


class Practitioner(BaseModel):
    name: str = ""
    role: str = ""
    team: str = ""
    phone: str = ""
    email: str = ""


class Involvement(BaseModel):
    involvement_id: str
    person_id: str
    gss_code: str
    local_person_id: str
    dataset_id: str
    category: str
    service: str
    status: InvolvementStatus
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    practitioner: Practitioner | None = None
    summary: str = ""
    provenance: Provenance | None = None


class FamilyContextResponse(BaseModel):
    request_id: str
    purpose: Purpose
    case_reference: str
    subject_person_id: str | None = None  # None when the subject's council did not answer
    people: list[FamilyPerson]
    relationships: list[Relationship]
    involvements: list[Involvement]
    sources: list[SourceStatus]


class ErrorField(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    """Every 4xx/5xx body. ``errors`` lists per-field problems for 422. Never holds submitted values."""

    detail: str
    errors: list[ErrorField] = Field(default_factory=list)
    request_id: str | None = None
