"""``POST /v1/searches``: fan FindPeople out to every council, link the candidates, grade the links."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from familycontext.v1 import adapter_pb2

from familyctx.linkage import Grade, GradedPair, Linker
from familyctx.trust.assertion import Requester
from familyctx_gateway.adapter_client import Federation
from familyctx_gateway.api import schemas as s
from familyctx_gateway.convert import date_to_proto, person_record
from familyctx_gateway.linkage import link_records, match_evidence
from familyctx_gateway.merge import field_conflicts
from familyctx_gateway.sources import SourceTracker

__all__ = ["Outcome", "person_query", "run_search"]


@dataclass
class Outcome:
    """What a request produced, for the response and the audit record."""

    response: Any
    subjects: list[dict[str, str]] = field(default_factory=list)
    councils: dict[str, str] = field(default_factory=dict)
    partial: bool = False


def _evidence(pair: GradedPair, records: Sequence[s.PersonRecord]) -> s.MatchEvidence:
    return match_evidence(records[pair.left], records[pair.right], pair.grade, pair.score, pair.rules)


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


_GRADE_ORDER = {Grade.certain: 0, Grade.probable: 1, Grade.possible: 2}


def _rank(pair: GradedPair) -> tuple[int, float]:
    """Best link between two candidates first: the higher grade, then the higher match probability."""
    return _GRADE_ORDER[pair.grade], -pair.score.match_probability


async def run_search(
    req: s.SearchRequest,
    *,
    federation: Federation,
    requester: Requester,
    max_results: int,
    linker: Linker,
) -> Outcome:
    """Search every configured council at once and return linked candidates and each source's state.

    ``requester``: who is asking, as authorised (its ``request_id`` is the response's ``request_id``);
    each council receives an assertion of it signed for that council. ``max_results``: candidates asked
    of each council. ``linker``: the app's linker (its model and thresholds, loaded once at
    start-up). Records linked by certain links are one candidate (``match_grade`` certain, with the
    evidence of each link and the fields its records disagree on, ``conflicts``); between two
    candidates the best probable or possible link is listed under both candidates' ``possible_matches``.
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

    linkage = link_records(linker, records)
    group_of = {i: g for g, members in enumerate(linkage.groups) for i in members}
    candidates = [
        s.Candidate(
            candidate_id=f"c{g + 1}",
            match_grade=s.MatchGrade.certain if len(members) > 1 else None,
            records=[records[i] for i in members],
            conflicts=field_conflicts([records[i] for i in members]) if len(members) > 1 else [],
        )
        for g, members in enumerate(linkage.groups)
    ]
    best: dict[tuple[int, int], GradedPair] = {}
    for pair in linkage.pairs:
        gl, gr = group_of[pair.left], group_of[pair.right]
        if gl == gr:  # inside a merged candidate: why its records are one person
            candidates[gl].evidence.append(_evidence(pair, records))
            continue
        key = (min(gl, gr), max(gl, gr))
        if key not in best or _rank(pair) < _rank(best[key]):
            best[key] = pair
    for (ga, gb), pair in best.items():
        evidence = _evidence(pair, records)
        for here, there in ((ga, gb), (gb, ga)):
            candidates[here].possible_matches.append(
                s.PossibleMatch(
                    candidate_id=candidates[there].candidate_id,
                    match_grade=evidence.match_grade,
                    evidence=evidence,
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
