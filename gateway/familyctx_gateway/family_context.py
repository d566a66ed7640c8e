"""``POST /v1/family-context``: gather a subject's family across councils, link, merge, show provenance.

Steps: (1) ``GetFamilyContext(include_relatives=true)`` at the subject's council, with ``Describe`` of
every council (cached); (2) ``FindPeople`` for each person returned in every other council (by NHS
number when valid, else names and date of birth); (3) ``GetFamilyContext(include_relatives=false)`` for
the certain matches; (4) merge records linked by certain matches only, keeping every record and
showing conflicting facts. A council that fails once in a request is not called again in it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from familycontext.v1 import adapter_pb2, types_pb2

from familyctx_gateway.adapter_client import CallResult, Federation
from familyctx_gateway.api import schemas as s
from familyctx_gateway.convert import (
    date_from_proto,
    enum_name,
    involvement_status,
    person_record,
    provenance,
)
from familyctx_gateway.errors import SubjectNotFound, UnknownCouncil
from familyctx_gateway.linkage import compare
from familyctx_gateway.search import Outcome, to_link_record
from familyctx_gateway.sources import SourceTracker

__all__ = ["run_family_context"]

Key = tuple[str, str]  # (gss_code, local_person_id)


@dataclass
class _Gathered:
    """Everything the councils said during one request, keyed by (council, local person id)."""

    records: dict[Key, s.PersonRecord] = field(default_factory=dict)
    relationships: list[tuple[str, Any]] = field(default_factory=list)
    involvements: list[tuple[str, Any]] = field(default_factory=list)
    outcomes: list[tuple[str, Any]] = field(default_factory=list)
    parent: dict[Key, Key] = field(default_factory=dict)
    evidence: list[tuple[Key, s.MatchEvidence]] = field(default_factory=list)
    possible: dict[Key, list[s.PossibleMatch]] = field(default_factory=lambda: defaultdict(list))
    council_states: dict[Key, dict[str, s.PersonCouncilState]] = field(
        default_factory=lambda: defaultdict(dict)
    )

    def absorb(self, gss_code: str, council_name: str, response: Any) -> None:
        for person in response.people:
            record = person_record(person, gss_code, council_name)
            self.records[(gss_code, record.local_person_id)] = record
            self.parent.setdefault((gss_code, record.local_person_id), (gss_code, record.local_person_id))
        self.relationships += [(gss_code, r) for r in response.relationships]
        self.involvements += [(gss_code, i) for i in response.involvements]
        self.outcomes += [(gss_code, o) for o in response.dataset_outcomes]

    def find(self, key: Key) -> Key:
        while self.parent[key] != key:
            self.parent[key] = self.parent[self.parent[key]]
            key = self.parent[key]
        return key

    def union(self, home: Key, other: Key) -> None:
        self.parent.setdefault(other, other)
        a, b = self.find(home), self.find(other)
        if a != b:
            self.parent[b] = a  # the home council's record stays the root


def _query_for(record: s.PersonRecord) -> adapter_pb2.PersonQuery | None:
    """Identifiers to look a relative up by elsewhere: NHS number when valid, else names and date of birth."""
    link = to_link_record(record)
    if link.nhs_number:
        return adapter_pb2.PersonQuery(nhs_number=link.nhs_number)
    if record.given_name and record.family_name and record.date_of_birth:
        query = adapter_pb2.PersonQuery(given_name=record.given_name, family_name=record.family_name)
        query.date_of_birth.year = record.date_of_birth.year
        query.date_of_birth.month = record.date_of_birth.month
        query.date_of_birth.day = record.date_of_birth.day
        return query
    return None


def _failed_state(result: CallResult) -> s.CouncilSearchState:
    return s.CouncilSearchState(result.state.value)


async def run_family_context(
    req: s.FamilyContextRequest,
    *,
    federation: Federation,
    request_id: str,
    max_results: int,
    describe_cache_seconds: float,
) -> Outcome:
    """Assemble the family context for ``req.subject``. Raises UnknownCouncil / SubjectNotFound (404)."""
    home = req.subject.gss_code
    if home not in federation:
        raise UnknownCouncil()
    purpose = req.purpose.value
    tracker = SourceTracker(federation)
    home_client = federation.clients[home]
    call = {"request_id": request_id, "purpose": purpose}

    home_result, describes = await asyncio.gather(
        home_client.call(
            "get_family_context",
            adapter_pb2.GetFamilyContextRequest(
                local_person_ids=[req.subject.local_person_id], include_relatives=True
            ),
            **call,
        ),
        federation.describe_all(cache_seconds=describe_cache_seconds, **call),
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

    if not home_result.ok:
        return empty()
    g = _Gathered()
    g.absorb(home, home_client.target.name, home_result.response)
    subject_key = (home, req.subject.local_person_id)
    if subject_key not in g.records:
        raise SubjectNotFound()
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
                    detail="no NHS number, or names and date of birth, to search on",
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
                        **call,
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
            grade, fields = compare(to_link_record(home_record), to_link_record(other))
            if grade is None:
                continue
            evidence = s.MatchEvidence(
                left=s.RecordRef(gss_code=home, local_person_id=home_record.local_person_id),
                right=s.RecordRef(gss_code=code, local_person_id=other.local_person_id),
                match_grade=grade,
                fields=[s.FieldEvidence(field=f.field, outcome=f.outcome, score=f.score) for f in fields],
            )
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
                **call,
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
            if seen is not None and seen.state is s.CouncilSearchState.records_found:
                g.council_states[key][code] = s.PersonCouncilState(
                    gss_code=code,
                    state=_failed_state(result),
                    detail="a record was found but its details could not be fetched: "
                    + (result.detail or ""),
                )

    response = _merge(req, request_id, g, subject_key, home_keys, federation)
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


def _address_text(record: s.PersonRecord) -> str:
    if record.address is None:
        return ""
    return ", ".join([*record.address.lines, record.address.postcode or ""]).strip(", ")


_CONFLICT_FIELDS = {
    "nhs_number": lambda r: r.nhs_number or "",
    "given_name": lambda r: r.given_name.strip(),
    "family_name": lambda r: r.family_name.strip(),
    "date_of_birth": lambda r: r.date_of_birth.isoformat() if r.date_of_birth else "",
    "address": _address_text,
}


def _conflicts(records: list[s.PersonRecord]) -> list[s.FieldConflict]:
    """Fields on which the merged records disagree; every distinct value is shown with its sources."""
    out = []
    for name, getter in _CONFLICT_FIELDS.items():
        by_value: dict[str, list[s.RecordRef]] = {}
        for r in records:
            value = getter(r)
            if value:
                by_value.setdefault(value, []).append(
                    s.RecordRef(gss_code=r.gss_code, local_person_id=r.local_person_id)
                )
        if len(by_value) > 1:
            out.append(s.FieldConflict(field=name, values=list(by_value), sources=list(by_value.values())))
    return out


def _merge(
    req: s.FamilyContextRequest,
    request_id: str,
    g: _Gathered,
    subject_key: Key,
    home_keys: list[Key],
    federation: Federation,
) -> s.FamilyContextResponse:
    order = {code: i for i, code in enumerate(federation.clients)}
    roots: list[Key] = []
    for key in [subject_key, *home_keys, *g.records]:
        root = g.find(key)
        if root not in roots:
            roots.append(root)
    person_id = {root: f"p{i + 1}" for i, root in enumerate(roots)}
    members: dict[Key, list[Key]] = defaultdict(list)
    for key in g.records:
        members[g.find(key)].append(key)

    def pid(gss_code: str, local_id: str) -> str | None:
        key = (gss_code, local_id)
        return person_id[g.find(key)] if key in g.parent else None

    people = []
    for root in roots:
        keys = sorted(members[root], key=lambda k: (k != root, order.get(k[0], 99), k[1]))
        records = [g.records[k] for k in keys]
        first = records[0]
        states = [s.PersonCouncilState(gss_code=root[0], state=s.CouncilSearchState.records_found)]
        for code in federation.clients:
            if code != root[0] and root in g.council_states and code in g.council_states[root]:
                states.append(g.council_states[root][code])
        people.append(
            s.FamilyPerson(
                person_id=person_id[root],
                is_subject=root == g.find(subject_key),
                given_name=first.given_name,
                family_name=first.family_name,
                date_of_birth=first.date_of_birth,
                records=records,
                evidence=[e for k, e in g.evidence if g.find(k) == root],
                conflicts=_conflicts(records),
                possible_matches=[m for k in keys for m in g.possible.get(k, [])],
                council_states=states,
            )
        )
    by_id = {p.person_id: p for p in people}
    for code, outcome in g.outcomes:
        owner = pid(code, outcome.local_person_id)
        if owner is not None:
            by_id[owner].dataset_states.append(
                s.PersonDatasetState(
                    gss_code=code,
                    local_person_id=outcome.local_person_id,
                    dataset_id=outcome.dataset_id,
                    state=s.DatasetState(enum_name(types_pb2.DatasetState, outcome.state, "DATASET_STATE_")),
                    reason=outcome.reason,
                )
            )

    relationships: dict[tuple[str, str, str], s.Relationship] = {}
    for code, rel in g.relationships:
        a, b = pid(code, rel.local_person_id), pid(code, rel.related_local_person_id)
        if a is None or b is None or a == b:
            continue
        kind = enum_name(types_pb2.RelationshipType, rel.type, "RELATIONSHIP_TYPE_")
        merged = relationships.setdefault(
            (a, b, kind),
            s.Relationship(person_id=a, related_person_id=b, type=kind, description=rel.description),
        )
        if rel.HasField("provenance"):
            merged.provenance.append(provenance(rel.provenance, code))

    involvements = []
    for code, inv in g.involvements:
        owner = pid(code, inv.local_person_id)
        if owner is None:
            continue
        practitioner = None
        if inv.HasField("practitioner"):
            p = inv.practitioner
            practitioner = s.Practitioner(name=p.name, role=p.role, team=p.team, phone=p.phone, email=p.email)
        involvements.append(
            s.Involvement(
                involvement_id=inv.involvement_id,
                person_id=owner,
                gss_code=code,
                local_person_id=inv.local_person_id,
                dataset_id=inv.dataset_id,
                category=enum_name(types_pb2.DatasetCategory, inv.category, "DATASET_CATEGORY_"),
                service=inv.service,
                status=involvement_status(inv.status),
                start_date=date_from_proto(inv.start_date) if inv.HasField("start_date") else None,
                end_date=date_from_proto(inv.end_date) if inv.HasField("end_date") else None,
                practitioner=practitioner,
                summary=inv.summary,
                provenance=provenance(inv.provenance, code) if inv.HasField("provenance") else None,
            )
        )
    return s.FamilyContextResponse(
        request_id=request_id,
        purpose=req.purpose,
        case_reference=req.case_reference,
        subject_person_id=person_id[g.find(subject_key)],
        people=people,
        relationships=list(relationships.values()),
        involvements=involvements,
        sources=[],
    )
