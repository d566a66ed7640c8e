"""Record linkage across councils: grade pairs of person records certain / probable / possible.

Councils share no person id (domain.md). Rules (issue 2; deepened in issue 5):

- **certain**: the same valid NHS number on both sides (NHS Data Dictionary, modulus-11 checked by
  :func:`familyctx.identifiers.normalise_nhs_number`) and the dates of birth do not contradict.
- **probable**: no NHS number conflict, family and given names agree (rapidfuzz ratio >= 90 on
  normalised names) and the dates of birth are equal; or dates of birth day/month-swapped with names
  and postcode equal.
- **possible**: no NHS number conflict and names similar (ratio >= 85) with dates of birth equal or
  swapped; or names agree, a date of birth missing on one side and the postcode equal.
- Two different valid NHS numbers: never linked. An invalid or placeholder NHS number counts as missing.

Only certain links merge records (union-find); probable and possible links are evidence for a worker to
confirm. Records of the same council are never linked to each other: the council's own person index
already says they are different people.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.fuzz import ratio

from familyctx.identifiers import name_match_key, normalise_nhs_number, normalise_postcode
from familyctx_gateway.api.schemas import FieldOutcome, MatchGrade

__all__ = [
    "FieldComparison",
    "Link",
    "LinkRecord",
    "Linkage",
    "compare",
    "dates_swapped",
    "link_records",
    "normalise_name",
]

NAMES_AGREE = 90.0
NAMES_SIMILAR = 85.0

_DROP = str.maketrans("", "", "'’‘`´-‐‑– .,")


def normalise_name(value: str | None) -> str:
    """Casefold, strip diacritics (NFKD), drop apostrophes, hyphens, dots and spaces
    (:func:`familyctx.identifiers.name_match_key`). "Zoë O'Neill" -> "zoeoneill"; "" for ``None``."""
    return name_match_key(value)


def dates_swapped(a: dt.date, b: dt.date) -> bool:
    """True when ``b`` is ``a`` with day and month exchanged (a common keying error), and they differ."""
    return a != b and a.year == b.year and a.day == b.month and a.month == b.day


@dataclass(frozen=True, slots=True)
class LinkRecord:
    """The identifiers of one council record, as linkage sees them (raw; normalised on construction)."""

    gss_code: str
    local_person_id: str
    nhs_number: str | None
    given_name: str
    family_name: str
    date_of_birth: dt.date | None
    postcode: str | None

    @classmethod
    def of(
        cls,
        gss_code: str,
        local_person_id: str,
        *,
        nhs_number: str | None,
        given_name: str | None,
        family_name: str | None,
        date_of_birth: dt.date | None,
        postcode: str | None,
    ) -> LinkRecord:
        return cls(
            gss_code,
            local_person_id,
            normalise_nhs_number(nhs_number),
            normalise_name(given_name),
            normalise_name(family_name),
            date_of_birth,
            normalise_postcode(postcode),
        )


@dataclass(frozen=True, slots=True)
class FieldComparison:
    """How one field compared between two records: ``outcome`` agree / similar / swapped (date of birth
    with day and month exchanged) / disagree / missing, and ``score`` 0-100 where a similarity was
    computed (rapidfuzz ratio on folded names)."""

    field: str
    outcome: FieldOutcome
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Link:
    """A graded pair: indexes into the linked sequence, the grade, and per-field evidence."""

    left: int
    right: int
    grade: MatchGrade
    fields: tuple[FieldComparison, ...]


def _equal_or_missing(field: str, a: str | None, b: str | None) -> FieldComparison:
    if not a or not b:
        return FieldComparison(field, FieldOutcome.missing)
    return FieldComparison(field, FieldOutcome.agree if a == b else FieldOutcome.disagree)


def _names(field: str, a: str, b: str) -> FieldComparison:
    if not a or not b:
        return FieldComparison(field, FieldOutcome.missing)
    score = round(ratio(a, b), 1)
    if score >= NAMES_AGREE:
        outcome = FieldOutcome.agree
    elif score >= NAMES_SIMILAR:
        outcome = FieldOutcome.similar
    else:
        outcome = FieldOutcome.disagree
    return FieldComparison(field, outcome, score)


def _dob(a: dt.date | None, b: dt.date | None) -> FieldComparison:
    if a is None or b is None:
        return FieldComparison("date_of_birth", FieldOutcome.missing)
    if a == b:
        return FieldComparison("date_of_birth", FieldOutcome.agree)
    if dates_swapped(a, b):
        return FieldComparison("date_of_birth", FieldOutcome.swapped)
    return FieldComparison("date_of_birth", FieldOutcome.disagree)


def compare(a: LinkRecord, b: LinkRecord) -> tuple[MatchGrade | None, tuple[FieldComparison, ...]]:
    """Grade one pair of records; ``None`` when they must not be linked. Evidence is always returned."""
    nhs = _equal_or_missing("nhs_number", a.nhs_number, b.nhs_number)
    family = _names("family_name", a.family_name, b.family_name)
    given = _names("given_name", a.given_name, b.given_name)
    dob = _dob(a.date_of_birth, b.date_of_birth)
    postcode = _equal_or_missing("postcode", a.postcode, b.postcode)
    evidence = (nhs, family, given, dob, postcode)

    if nhs.outcome is FieldOutcome.disagree:
        return None, evidence
    if nhs.outcome is FieldOutcome.agree:
        if dob.outcome is FieldOutcome.disagree:
            return MatchGrade.probable, evidence
        return MatchGrade.certain, evidence

    names_agree = family.outcome is FieldOutcome.agree and given.outcome is FieldOutcome.agree
    names_similar = {family.outcome, given.outcome} <= {FieldOutcome.agree, FieldOutcome.similar}
    if names_agree and dob.outcome is FieldOutcome.agree:
        return MatchGrade.probable, evidence
    if names_agree and dob.outcome is FieldOutcome.swapped and postcode.outcome is FieldOutcome.agree:
        return MatchGrade.probable, evidence
    if names_similar and dob.outcome in (FieldOutcome.agree, FieldOutcome.swapped):
        return MatchGrade.possible, evidence
    if names_agree and dob.outcome is FieldOutcome.missing and postcode.outcome is FieldOutcome.agree:
        return MatchGrade.possible, evidence
    return None, evidence


@dataclass(frozen=True, slots=True)
class Linkage:
    """Result of :func:`link_records`.

    ``groups``: lists of record indexes merged by certain links (every record is in exactly one group,
    in order of first appearance); ``links``: every graded pair (certain ones inside groups, probable and
    possible ones across groups).
    """

    groups: list[list[int]]
    links: list[Link]


def link_records(records: Sequence[LinkRecord]) -> Linkage:
    """Link records of different councils pairwise and group them by certain links (union-find)."""
    parent = list(range(len(records)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    links: list[Link] = []
    for i, j in itertools.combinations(range(len(records)), 2):
        if records[i].gss_code == records[j].gss_code:
            continue
        grade, evidence = compare(records[i], records[j])
        if grade is None:
            continue
        links.append(Link(i, j, grade, evidence))
        if grade is MatchGrade.certain:
            ri, rj = find(i), find(j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)

    groups: dict[int, list[int]] = {}
    for i in range(len(records)):
        groups.setdefault(find(i), []).append(i)
    return Linkage(list(groups.values()), links)
