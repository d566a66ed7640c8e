"""What a request asked for and what its response showed, read off the request terms and the response
model, for the audit record (:mod:`familyctx_gateway.audit_record`).

- :func:`searched_for`: the subject the worker asked about: the demographics of a search, or the council
  record chosen for a family context.
- :func:`shown`: every council record the response shows (candidates' records, a family's people and
  their possible matches), every service involvement shown, and each council's state with the reason
  it did not answer (from the response's ``sources``).
- :func:`current_trace_id`: the W3C trace id of the OpenTelemetry span being served, when tracing is on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from familyctx_gateway.api.schemas import FamilyContextResponse, PersonRecord, SearchResponse
from familyctx_gateway.audit_record import CouncilOutcome, Subject, SubjectKind

__all__ = ["Shown", "current_trace_id", "searched_for", "shown"]

_DEMOGRAPHICS = ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode")


@dataclass(slots=True)
class Shown:
    """Council records (``subjects``, kind ``returned``), ``involvements`` (``{gss_code,
    local_person_id, dataset_id, involvement_id}``) and ``councils`` (each one's state) of a response."""

    subjects: list[Subject] = field(default_factory=list)
    involvements: list[dict[str, str]] = field(default_factory=list)
    councils: list[CouncilOutcome] = field(default_factory=list)


def searched_for(query_terms: Mapping[str, Any]) -> list[Subject]:
    """The subject asked about in ``query_terms`` (as the request sent them, JSON-ready): ``subject``
    (``{gss_code, local_person_id}``) for a family context, else the search's demographics. Empty when
    neither is there (e.g. opening a break-glass grant)."""
    chosen = query_terms.get("subject")
    if isinstance(chosen, Mapping):
        return [
            Subject(
                SubjectKind.searched_for,
                gss_code=str(chosen.get("gss_code") or "") or None,
                local_person_id=str(chosen.get("local_person_id") or "") or None,
            )
        ]
    asked = {name: str(query_terms[name]) for name in _DEMOGRAPHICS if query_terms.get(name)}
    return [Subject(SubjectKind.searched_for, **asked)] if asked else []


def _returned(record: PersonRecord) -> Subject:
    return Subject(
        SubjectKind.returned,
        gss_code=record.gss_code,
        local_person_id=record.local_person_id,
        nhs_number=record.nhs_number,
        given_name=record.given_name or None,
        family_name=record.family_name or None,
        date_of_birth=record.date_of_birth.isoformat() if record.date_of_birth else None,
        postcode=record.address.postcode if record.address else None,
    )


def _records(response: Any) -> Iterator[PersonRecord]:
    if isinstance(response, SearchResponse):
        for candidate in response.candidates:
            yield from candidate.records
    elif isinstance(response, FamilyContextResponse):
        for person in response.people:
            yield from person.records
            yield from (m.record for m in person.possible_matches if m.record is not None)


def shown(response: Any) -> Shown:
    """What ``response`` (a SearchResponse or FamilyContextResponse; anything else shows nothing) put in
    front of the worker, each council record once, in the order shown."""
    result = Shown()
    seen: set[tuple[str, str]] = set()
    for record in _records(response):
        key = (record.gss_code, record.local_person_id)
        if key not in seen:
            seen.add(key)
            result.subjects.append(_returned(record))
    if isinstance(response, FamilyContextResponse):
        result.involvements = [
            {
                "gss_code": i.gss_code,
                "local_person_id": i.local_person_id,
                "dataset_id": i.dataset_id,
                "involvement_id": i.involvement_id,
            }
            for i in response.involvements
        ]
    for source in getattr(response, "sources", None) or []:
        result.councils.append(CouncilOutcome(source.gss_code, source.state.value, source.detail or None))
    return result


def current_trace_id() -> str | None:
    """The 32-hex-digit W3C trace id of the current OpenTelemetry span, or None (tracing off)."""
    try:
        from opentelemetry import trace
    except ImportError:  # pragma: no cover - opentelemetry-api is a dependency
        return None
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x}" if context.is_valid else None
