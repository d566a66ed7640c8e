"""``POST /v1/searches``: fan FindPeople out to every council, link the candidates, grade the links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from familycontext.v1 import adapter_pb2

from familyctx.trust.assertion import Requester
from familyctx_gateway.adapter_client import Federation
from familyctx_gateway.api import schemas as s
from familyctx_gateway.convert import date_to_proto, person_record
from familyctx_gateway.linkage import Link, LinkRecord, link_records
from familyctx_gateway.sources import SourceTracker

__all__ = ["Outcome", "match_evidence", "run_search", "to_link_record"]


@dataclass
class Outcome:
    """What a request produced, for the response and the audit record."""

    response: Any
    subjects: list[dict[str, str]] = field(default_factory=list)
    councils: dict[str, str] = field(default_factory=dict)
    partial: bool = False


def to_link_record(record: s.PersonRecord) -> LinkRecord:
    """The fields linkage compares (NHS number, names, date of birth, sex, postcode) of one council's
    record, normalised (see :mod:`familyctx_gateway.linkage`)."""
    return LinkRecord.of(
        record.gss_code,
        record.local_person_id,
        nhs_number=record.nhs_number,
        given_name=record.given_name,
        family_name=record.family_name,
        date_of_birth=record.date_of_birth,
        postcode=record.address.postcode if record.address else None,
    )


def _ref(record: s.PersonRecord) -> s.RecordRef:
    return s.RecordRef(gss_code=record.gss_code, local_person_id=record.local_person_id)


def match_evidence(link: Link, records: Sequence[s.PersonRecord]) -> s.MatchEvidence:
    """A linkage :class:`Link` as API evidence (which fields agreed, disagreed or were missing)."""
    return s.MatchEvidence(
        left=_ref(records[link.left]),
        right=_ref(records[link.right]),
        match_grade=link.grade,
        fields=[s.FieldEvidence(field=f.field, outcome=f.outcome, score=f.score) for f in link.fields],
    )


def person_query(req: s.SearchRequest) -> adapter_pb2.PersonQuery:
    """The contract's ``PersonQuery`` for a validated search request (unset fields left empty)."""
    query = adapter_pb2.PersonQuery(
        nhs_number=req.nhs_number or "",
        given_name=req.given_name or "",
        family_name=req.family_name or "",
        postcode=req.postcode or "",
    )
    if req.date_of_birth is not None:
        query.date_of_birth.CopyFrom(date_to_proto(req.date_of_birth))
    return query


_GRADE_ORDER = {s.MatchGrade.certain: 0, s.MatchGrade.probable: 1, s.MatchGrade.possible: 2}


async def run_search(
    req: s.SearchRequest, *, federation: Federation, requester: Requester, max_results: int
) -> Outcome:
    """Search every configured council at once and return linked candidates and each source's state.

    ``requester``: who is asking, as authorised (its ``request_id`` is the response's ``request_id``);
    each council receives an assertion of it signed for that council. ``max_results``: candidates asked
    of each council.
    """
    request_id = requester.request_id
    tracker = SourceTracker(federation)
    find = adapter_pb2.FindPeopleRequest(query=person_query(req), max_results=max_results)
    results = await federation.fan_out(
        "find_people", dict.fromkeys(federation.clients, find), requester=requester
    )
    records: list[s.PersonRecord] = []
    for code, result in results.items():
        tracker.add(result)
        if result.ok:
            records.extend(person_record(p, code, result.name) for p in result.response.candidates)

    linkage = link_records([to_link_record(r) for r in records])
    group_of = {i: g for g, members in enumerate(linkage.groups) for i in members}
    candidates = [
        s.Candidate(
            candidate_id=f"c{g + 1}",
            match_grade=s.MatchGrade.certain if len(members) > 1 else None,
            records=[records[i] for i in members],
        )
        for g, members in enumerate(linkage.groups)
    ]
    best: dict[tuple[int, int], Link] = {}
    for link in linkage.links:
        gl, gr = group_of[link.left], group_of[link.right]
        if gl == gr:
            candidates[gl].evidence.append(match_evidence(link, records))
            continue
        key = (min(gl, gr), max(gl, gr))
        if key not in best or _GRADE_ORDER[link.grade] < _GRADE_ORDER[best[key].grade]:
            best[key] = link
    for (ga, gb), link in best.items():
        evidence = match_evidence(link, records)
        candidates[ga].possible_matches.append(
            s.PossibleMatch(
                candidate_id=candidates[gb].candidate_id, match_grade=link.grade, evidence=evidence
            )
        )
        candidates[gb].possible_matches.append(
            s.PossibleMatch(
                candidate_id=candidates[ga].candidate_id, match_grade=link.grade, evidence=evidence
            )
        )

    response = s.SearchResponse(
        request_id=request_id,
        purpose=req.purpose,
        case_reference=req.case_reference,
        candidates=candidates,
        sources=tracker.statuses(),
    )
    return Outcome(
        response=response,
        subjects=[{"gss_code": r.gss_code, "local_person_id": r.local_person_id} for r in records],
        councils=tracker.states(),
        partial=not tracker.all_ok(),
    )
