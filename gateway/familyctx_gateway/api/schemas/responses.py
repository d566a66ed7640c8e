"""Response bodies of the gateway API: every council's state explicit, every fact with provenance."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from familyctx_gateway.api.schemas.requests import Purpose

__all__ = [
    "Address",
    "AdapterHealth",
    "CouncilContact",
    "RegistrySummary",
    "BreakGlassInUse",
    "Candidate",
    "CouncilSearchState",
    "DatasetFreshness",
    "DatasetState",
    "ErrorField",
    "ErrorResponse",
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
    "RecordRef",
    "Relationship",
    "SearchResponse",
    "SourceState",
    "SourceStatus",
    "SourceSummary",
    "SourcesResponse",
]

# --------------------------------------------------------------------------------------------------
# Response shapes
# --------------------------------------------------------------------------------------------------


class SourceState(StrEnum):
    """How one council's adapter ended the request (domain.md: nothing is silently missing)."""

    ok = "ok"
    unavailable = "unavailable"
    timed_out = "timed_out"
    refused = "refused"  # the adapter refused the gateway's certificate or assertion, or the requester
    error = "error"  # also: an answer larger than the size limit, or malformed (see detail)
    circuit_open = "circuit_open"  # not asked: its circuit breaker is open after repeated failures
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
    refused = "refused"
    error = "error"
    circuit_open = "circuit_open"  # not asked: the council's circuit breaker is open


class MatchGrade(StrEnum):
    """Grade of a link between two records (certain records merge; others are shown, never merged)."""

    certain = "certain"
    probable = "probable"
    possible = "possible"


class FieldOutcome(StrEnum):
    """How one identifier compared between two records (docs/gateway-api.md, "Match evidence")."""

    agree = "agree"
    #: Nearly: a close spelling (Jaro-Winkler), a short form (Bob/Robert), the same postcode sector, an
    #: estimated date of birth in the same month, an expected date of delivery within 6 weeks.
    similar = "similar"
    swapped = "swapped"  # date of birth with day and month swapped; given and family names swapped
    #: In part: another given name (a middle name), part of a double-barrelled name, the same postcode
    #: district, a date of birth with one of day, month or year different.
    partial = "partial"
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


class AdapterHealth(BaseModel):
    """An adapter's last grpc.health.v1 check by the gateway's health watch: ``status`` (``serving``,
    ``not_serving``: data calls are not made, the council is ``unavailable``; ``no_answer``: the check
    failed; ``not_served``: the adapter does not serve grpc.health.v1; ``unknown``: not checked yet),
    ``checked_at`` (UTC) and a short non-personal ``detail``."""

    status: Literal["unknown", "serving", "not_serving", "no_answer", "not_served"]
    checked_at: dt.datetime | None = None
    detail: str | None = None


class CouncilContact(BaseModel):
    """The council's information governance contact, from the council registry."""

    name: str
    email: str


class SourceSummary(SourceStatus):
    """A configured council as ``GET /v1/sources`` reports it: last known state, the last health check,
    and the registry's informational ``datasets_offered`` and ``ig_contact``."""

    last_checked_at: dt.datetime | None = None
    contract_version: str | None = None
    source_system: str | None = None
    health: AdapterHealth | None = None
    datasets_offered: list[str] = Field(default_factory=list)
    ig_contact: CouncilContact | None = None


class RegistrySummary(BaseModel):
    """The council registry in use: ``source`` (``file``: ``registry_file``, re-read while running;
    ``settings``: the inline ``adapters``), ``version`` (1 at start-up, +1 per change applied),
    ``loaded_at`` (UTC), ``councils`` (count), ``retiring`` (removed councils whose channels are still
    open for requests that started before), and the last edit refused: ``last_error`` (the problems,
    never the values) and ``last_error_at``; both None once a later edit is applied."""

    source: Literal["file", "settings"]
    path: str | None = None
    version: int
    loaded_at: dt.datetime
    sha256: str | None = None
    councils: int
    retiring: int = 0
    last_error: str | None = None
    last_error_at: dt.datetime | None = None


class SourcesResponse(BaseModel):
    sources: list[SourceSummary]
    registry: RegistrySummary | None = None


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
    expected_date_of_birth: dt.date | None = None  # unborn child (SSD PERS009A)
    sex: str = "unspecified"
    address: Address | None = None
    date_of_death: dt.date | None = None
    provenance: Provenance | None = None


class FieldEvidence(BaseModel):
    """How one identifier compared between two records. Values are not repeated here.

    ``field``: nhs_number | given_name | family_name | date_of_birth | sex | postcode. ``level``: the
    linkage model's comparison level, in words ("exact", "short form (Bob/Robert)", "postcode sector").
    ``weight``: that level's log2 Bayes factor (positive: evidence for the same person, negative: against;
    term-frequency adjusted for names). ``score``: 0-100 string similarity (Jaro-Winkler x 100 on folded
    names) where one was computed. docs/gateway-api.md, "Match evidence".
    """

    field: str
    outcome: FieldOutcome
    score: float | None = None
    level: str | None = None
    weight: float | None = None


class MatchEvidence(BaseModel):
    """Why two records are (or might be) the same person.

    ``match_weight``: log2 of the posterior odds that they are (the sum of the fields' weights and the
    prior); ``match_probability``: 0-1; ``rules``: guard rules that capped the grade ("given names
    disagree"). docs/gateway-api.md, "Match evidence".
    """

    left: RecordRef
    right: RecordRef
    match_grade: MatchGrade
    fields: list[FieldEvidence]
    match_weight: float | None = None
    match_probability: float | None = None
    rules: list[str] = Field(default_factory=list)


class FieldConflict(BaseModel):
    """Records of one merged person disagree on a field: every value shown, none chosen.

    ``field``: nhs_number | given_name | family_name | date_of_birth | sex | address; ``values``: each
    distinct value as recorded (dates ISO 8601); ``sources[i]``: the records holding ``values[i]``.
    In a search ``Candidate`` and a family-context ``FamilyPerson``."""

    field: str
    values: list[str]
    sources: list[list[RecordRef]]  # sources[i] recorded values[i]


class PossibleMatch(BaseModel):
    """A probable or possible match, shown for the worker to confirm; never merged.

    In a search, ``candidate_id`` names the other candidate and ``record`` is null; in a family
    context, ``record`` is the other council's record and ``candidate_id`` is null (one shape for both
    answers; docs/gateway-api.md)."""

    candidate_id: str | None = None  # search: the other candidate
    record: PersonRecord | None = None  # family context: the other council's record
    match_grade: MatchGrade
    evidence: MatchEvidence


class Candidate(BaseModel):
    """A search result: one person, possibly recorded in several councils (linked only when certain).

    ``match_grade`` is ``certain`` when several records were merged, ``None`` for a single record.
    ``conflicts``: fields on which the merged records disagree (two dates of birth, two spellings),
    every value with the records holding it, none resolved; [] for a single record.
    """

    candidate_id: str
    match_grade: MatchGrade | None = None
    records: list[PersonRecord]
    evidence: list[MatchEvidence] = Field(default_factory=list)
    conflicts: list[FieldConflict] = Field(default_factory=list)
    possible_matches: list[PossibleMatch] = Field(default_factory=list)


class BreakGlassInUse(BaseModel):
    """The break-glass grant a response was given under (the request sent its ``break_glass_id``):
    ``id`` (the break_glass_id) and ``expires_at``. Every council asked was told it is break glass."""

    id: str
    expires_at: dt.datetime


_BREAK_GLASS = Field(
    default=None,
    description="Set when this answer was given under a break-glass grant (the request's break_glass_id): "
    "its id and when it expires. Null for an ordinary request.",
)


class SearchResponse(BaseModel):
    request_id: str
    purpose: Purpose
    case_reference: str
    break_glass: BreakGlassInUse | None = _BREAK_GLASS
    candidates: list[Candidate]
    sources: list[SourceStatus]


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
    break_glass: BreakGlassInUse | None = _BREAK_GLASS
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
