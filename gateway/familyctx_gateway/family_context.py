"""``POST /v1/family-context``: gather a subject's family across councils, link, merge, show provenance.

Steps: (1) ``GetFamilyContext(include_relatives=true)`` at the subject's council, with ``Describe`` of
every council (cached); (2) ``FindPeople`` for each person returned in every other council, with the
NHS number AND the names and date of birth when known (the adapter returns the union: a relative whose
NHS number is missing or different there is still found by demographics), each candidate graded by the
linker; (3) ``GetFamilyContext(include_relatives=false)`` for the certain matches; (4) merge records
linked by certain matches only, keeping every record and showing conflicting facts. A council that
fails once in a request is not called again in it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from familycontext.v1 import adapter_pb2

from familyctx.identifiers import normalise_nhs_number
from familyctx.linkage import Linker
from familyctx.trust.assertion import Requester
from familyctx_gateway.adapter_client import CallResult, Federation
from familyctx_gateway.api import schemas as s
from familyctx_gateway.convert import date_to_proto, person_record
from familyctx_gateway.errors import SubjectNotFound, UnknownCouncil
from familyctx_gateway.linkage import compare
from familyctx_gateway.merge import Gathered, Key, merge_family
from familyctx_gateway.search import Outcome
from familyctx_gateway.sources import SourceTracker

__all__ = ["run_family_context"]


def _query_for(record: s.PersonRecord) -> adapter_pb2.PersonQuery | None:
    """Identifiers to look a relative up by elsewhere: the NHS number when valid AND the names and date
    of birth when the family name and date of birth are known (the adapter answers the union of the
    NHS-number match and the demographic match). None when there is neither."""
    nhs = normalise_nhs_number(record.nhs_number)
    demographics = bool(record.family_name.strip()) and record.date_of_birth is not None
    if not nhs and not demographics:
        return None
    query = adapter_pb2.PersonQuery(nhs_number=nhs or "")
    if demographics:
        assert record.date_of_birth is not None
        query.given_name = record.given_name
        query.family_name = record.family_name
        query.date_of_birth.CopyFrom(date_to_proto(record.date_of_birth))
    return query


def _failed_state(result: CallResult) -> s.CouncilSearchState:
    """A person's state at a council whose call gave no response: NOT_FOUND means none held there."""
    if result.not_found:
        return s.CouncilSearchState.none_found
    return s.CouncilSearchState(result.state.value)


async def run_family_context(
    req: s.FamilyContextRequest,
    *,
    federation: Federation,
    requester: Requester,
    max_results: int,
    describe_cache_seconds: float,
    linker: Linker,
) -> Outcome:
    """Assemble the family context for ``req.subject``.

    ``requester``: who is asking, as authorised; every adapter call carries an assertion of it signed
    for that council, and its ``request_id`` is the response's. ``linker``: the app's linker (loaded
    once at start-up, with the configured model and thresholds). Raises UnknownCouncil
    (404) for a council not configured, SubjectNotFound (404) when the subject's council answers
    NOT_FOUND (or omits the subject). A subject council that does not answer gives a partial answer
    with no people.
    """
    home = req.subject.gss_code
    if home not in federation:
        raise UnknownCouncil()
    request_id = requester.request_id
    tracker = SourceTracker(federation)
    home_client = federation.clients[home]

    home_result, describes = await asyncio.gather(
        home_client.call(
            "get_family_context",
            adapter_pb2.GetFamilyContextRequest(
                local_person_ids=[req.subject.local_person_id], include_relatives=True
            ),
            requester=requester,
        ),
        federation.describe_all(requester=requester, cache_seconds=describe_cache_seconds),
    )
    tracker.add(home_result)
    for _response, describe_call in describes.values():
        if describe_call is not None:
            tracker.add(describe_call)
    described = {code: pair[0] for code, pair in describes.items()}

    def empty() -> Outcome:
        response = s.FamilyContextResponse(
            request_id=request_id,
            purpose=req.purpose,
            case_reference=req.case_reference,
            subject_person_id=None,
            people=[],
            relationships=[],
            involvements=[],
            sources=tracker.statuses(described),
        )
        return Outcome(response=response, councils=tracker.states(), partial=True)

    # The adapter answers NOT_FOUND when none of the ids asked for exist: the subject is not there (404).
    # Only a council that did not answer (unavailable, timed out, error) gives the empty, partial 200.
    if home_result.not_found:
        raise SubjectNotFound(f"{home_client.target.name} ({home})")
    if not home_result.ok:
        return empty()
    g = Gathered()
    g.absorb(home, home_client.target.name, home_result.response)
    subject_key = (home, req.subject.local_person_id)
    if subject_key not in g.records:
        raise SubjectNotFound(f"{home_client.target.name} ({home})")
    home_keys = list(g.records)

    # (2) look each person up in every other council that is still answering.
    others = [code for code in federation.clients if code != home and tracker.usable(code)]
    lookups: list[tuple[Key, str]] = []
    calls = []
    for key in home_keys:
        query = _query_for(g.records[key])
        for code in federation.clients:
            if code == home:
                continue
            if query is None:
                g.council_states[key][code] = s.PersonCouncilState(
                    gss_code=code,
                    state=s.CouncilSearchState.not_searched,
                    detail="no NHS number, or family name and date of birth, to search on",
                )
            elif code not in others:
                failed = tracker.failure(code)
                assert failed is not None
                g.council_states[key][code] = s.PersonCouncilState(
                    gss_code=code, state=_failed_state(failed), detail=failed.detail
                )
            else:
                lookups.append((key, code))
                calls.append(
                    federation.clients[code].call(
                        "find_people",
                        adapter_pb2.FindPeopleRequest(query=query, max_results=max_results),
                        requester=requester,
                    )
                )
    certain_ids: dict[str, set[str]] = defaultdict(set)
    for (key, code), result in zip(lookups, await asyncio.gather(*calls), strict=True):
        tracker.add(result)
        if not result.ok:
            g.council_states[key][code] = s.PersonCouncilState(
                gss_code=code, state=_failed_state(result), detail=result.detail
            )
            continue
        state = s.CouncilSearchState.none_found
        home_record = g.records[key]
        for candidate in result.response.candidates:
            other = person_record(candidate, code, result.name)
            grade, evidence = compare(linker, home_record, other)
            if grade is None or evidence is None:
                continue
            if grade is s.MatchGrade.certain:
                g.records.setdefault((code, other.local_person_id), other)
                g.union(key, (code, other.local_person_id))
                g.evidence.append((key, evidence))
                certain_ids[code].add(other.local_person_id)
                state = s.CouncilSearchState.records_found
            else:
                g.possible[key].append(s.PossibleMatch(record=other, match_grade=grade, evidence=evidence))
                if state is s.CouncilSearchState.none_found:
                    state = s.CouncilSearchState.possible_match_only
        g.council_states[key][code] = s.PersonCouncilState(gss_code=code, state=state)

    # (3) the certain matches' own involvements, from the councils that hold them.
    detail_codes = [code for code in certain_ids if tracker.usable(code)]
    detail_results = await asyncio.gather(
        *(
            federation.clients[code].call(
                "get_family_context",
                adapter_pb2.GetFamilyContextRequest(
                    local_person_ids=sorted(certain_ids[code]), include_relatives=False
                ),
                requester=requester,
            )
            for code in detail_codes
        )
    )
    for code, result in zip(detail_codes, detail_results, strict=True):
        tracker.add(result)
        if result.ok:
            g.absorb(code, result.name, result.response)
            continue
        for key in home_keys:
            seen = g.council_states[key].get(code)
            if seen is None or seen.state is not s.CouncilSearchState.records_found:
                continue
            if result.not_found:  # found a moment ago, gone when its details were asked for
                g.council_states[key][code] = s.PersonCouncilState(
                    gss_code=code,
                    state=s.CouncilSearchState.none_found,
                    detail="a record was found but was no longer there when its details were asked for",
                )
            else:
                g.council_states[key][code] = s.PersonCouncilState(
                    gss_code=code,
                    state=_failed_state(result),
                    detail="a record was found but its details could not be fetched: "
                    + (result.detail or ""),
                )

    response = merge_family(req, request_id, g, subject_key, home_keys, federation)
    response.sources = tracker.statuses(described)
    subjects = [
        {"gss_code": r.gss_code, "local_person_id": r.local_person_id}
        for person in response.people
        for r in person.records
    ]
    subjects += [
        {"gss_code": m.record.gss_code, "local_person_id": m.record.local_person_id}
        for person in response.people
        for m in person.possible_matches
        if m.record
    ]
    return Outcome(
        response=response, subjects=subjects, councils=tracker.states(), partial=not tracker.all_ok()
    )
