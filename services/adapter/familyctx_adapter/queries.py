"""Validation of incoming requests: proto in, checked values out, :class:`InvalidQuery` otherwise.

Messages say what to fix and never echo the value sent (it may be personal data).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from familycontext.v1 import adapter_pb2

from familyctx.identifiers import is_placeholder_nhs_number, normalise_nhs_number, normalise_postcode
from familyctx.linkage.normalise import LinkInput, link_features
from familyctx_adapter.errors import InvalidQuery
from familyctx_adapter.normalise import clean_text

__all__ = [
    "MAX_FAMILY_IDS",
    "MAX_ID_LENGTH",
    "MAX_NAME_LENGTH",
    "PersonSearch",
    "check_family_ids",
    "person_search_from_request",
    "result_limit",
]

MAX_NAME_LENGTH = 200
MAX_ID_LENGTH = 48  # SSD person ids are nvarchar(48)
MAX_NHS_INPUT_LENGTH = 20
MAX_POSTCODE_INPUT_LENGTH = 16
MAX_FAMILY_IDS = 50


@dataclass(frozen=True, slots=True)
class PersonSearch:
    """A validated FindPeople query. ``nhs_number``: valid ten digits or None (invalid ones dropped);
    ``postcode``: canonical ("SK1 3XE") or None; names trimmed; ``date_of_birth`` a real date."""

    nhs_number: str | None = None
    given_name: str = ""
    family_name: str = ""
    date_of_birth: dt.date | None = None
    postcode: str | None = None
    local_person_id: str = ""


def _bounded(value: str, field: str, limit: int) -> str:
    if len(value) > limit:
        raise InvalidQuery(f"{field} is longer than {limit} characters")
    return clean_text(value)


def _bounded_name(value: str, field: str, limit: int) -> str:
    """A name as the worker typed it, whitespace collapsed. Unlike warehouse values, a query's "Na" or
    "None" is not a 'no value' marker: treating it as one would turn "given name Na + date of birth"
    into a date-of-birth-only search answered with everyone born that day (Na is also a real surname)."""
    if len(value) > limit:
        raise InvalidQuery(f"{field} is longer than {limit} characters")
    return " ".join(value.split())


def person_search_from_request(request: adapter_pb2.FindPeopleRequest, *, today: dt.date) -> PersonSearch:
    """Validate a FindPeopleRequest. Raises InvalidQuery: no usable identifier, oversized strings,
    impossible or future date of birth, or only a given name/postcode (too broad to search).

    A family name counts as an identifier only when linkage normalisation
    (:func:`familyctx.linkage.normalise.link_features`) leaves something to compare ("Mrs", "!!" or
    "Unknown" alone do not); it is still passed on as given. A date of birth alone is valid (the
    contract's "any subset"); :mod:`.people` narrows it by postcode when there is no usable name."""
    q = request.query
    given = _bounded_name(q.given_name, "given_name", MAX_NAME_LENGTH)
    family = _bounded_name(q.family_name, "family_name", MAX_NAME_LENGTH)
    local_id = _bounded(q.local_person_id, "local_person_id", MAX_ID_LENGTH)
    nhs_raw = _bounded(q.nhs_number, "nhs_number", MAX_NHS_INPUT_LENGTH)
    postcode_raw = _bounded(q.postcode, "postcode", MAX_POSTCODE_INPUT_LENGTH)

    dob: dt.date | None = None
    if q.HasField("date_of_birth") and (q.date_of_birth.year or q.date_of_birth.month or q.date_of_birth.day):
        d = q.date_of_birth
        try:
            dob = dt.date(d.year, d.month, d.day)
        except ValueError:
            raise InvalidQuery("date_of_birth is not a real calendar date (year, month 1-12, day)") from None
        if dob > today or dob.year < 1880:
            raise InvalidQuery("date_of_birth must be between 1880-01-01 and today")

    nhs = normalise_nhs_number(nhs_raw) if nhs_raw else None
    postcode = normalise_postcode(postcode_raw) if postcode_raw else None
    if postcode_raw and postcode is None:
        raise InvalidQuery("postcode is not a UK postcode (e.g. SK1 3XE)")

    family_usable = bool(family) and bool(
        link_features(LinkInput(source="", record_id="", family_name=family)).family_key
    )
    if not (nhs or local_id or dob or family_usable):
        if nhs_raw and is_placeholder_nhs_number(nhs_raw):
            raise InvalidQuery(
                "nhs_number is a placeholder (one digit repeated, or a run of digits), not an issued NHS "
                "number; search by family_name/date_of_birth instead"
            )
        if nhs_raw:
            raise InvalidQuery(
                "nhs_number fails the NHS number check (10 digits, modulus 11); give a valid one or search "
                "by family_name/date_of_birth"
            )
        if family:
            raise InvalidQuery(
                "family_name has nothing to match on once titles, placeholders, punctuation and symbols "
                "are removed; give the name as recorded, or another identifier"
            )
        raise InvalidQuery(
            "give at least one of nhs_number, local_person_id, date_of_birth or family_name "
            "(given_name and postcode only narrow a search)"
        )
    return PersonSearch(
        nhs_number=nhs,
        given_name=given,
        family_name=family,
        date_of_birth=dob,
        postcode=postcode,
        local_person_id=local_id,
    )


def result_limit(requested: int, *, default: int, cap: int) -> int:
    """max_results: 0 -> ``default``; above ``cap`` -> ``cap``; negative -> InvalidQuery."""
    if requested < 0:
        raise InvalidQuery("max_results must be 0 (adapter default) or a positive number")
    if requested == 0:
        return default
    return min(requested, cap)


def check_family_ids(ids: Sequence[str]) -> list[str]:
    """Validate GetFamilyContext ids: 1..50 non-empty ids of at most 48 characters; duplicates dropped."""
    if not ids:
        raise InvalidQuery("local_person_ids is empty; give between 1 and 50 ids")
    if len(ids) > MAX_FAMILY_IDS:
        raise InvalidQuery(f"too many local_person_ids ({len(ids)}); at most {MAX_FAMILY_IDS} per request")
    out: list[str] = []
    for raw in ids:
        if len(raw) > MAX_ID_LENGTH:
            raise InvalidQuery(f"a local_person_id is longer than {MAX_ID_LENGTH} characters")
        value = raw.strip()
        if not value:
            raise InvalidQuery("a local_person_id is empty")
        if value not in out:
            out.append(value)
    return out
