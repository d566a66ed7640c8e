"""Merge what the councils said during one family-context request into the API's family shape.

Records are merged only along certain links (a union-find over (council, local person id), whose
root is the subject council's record); every record is kept with its provenance, and fields the
merged records disagree on (NHS number, names, date of birth, sex, address) are listed as conflicts,
each value with the records that hold it, never resolved.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from familycontext.v1 import types_pb2

from familyctx_gateway.adapter_client import Federation
from familyctx_gateway.api import schemas as s
from familyctx_gateway.convert import (
    date_from_proto,
    enum_name,
    involvement_status,
    person_record,
    provenance,
)

__all__ = ["Gathered", "Key", "field_conflicts", "merge_family"]

Key = tuple[str, str]  # (gss_code, local_person_id)


@dataclass
class Gathered:
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


def _address_text(record: s.PersonRecord) -> str:
    if record.address is None:
        return ""
    return ", ".join([*record.address.lines, record.address.postcode or ""]).strip(", ")


def _sex(record: s.PersonRecord) -> str:
    # "unknown" and "unspecified" say nothing: no value, so never a conflict with female or male.
    return "" if record.sex in ("unknown", "unspecified") else record.sex


_CONFLICT_FIELDS = {
    "nhs_number": lambda r: r.nhs_number or "",
    "given_name": lambda r: r.given_name.strip(),
    "family_name": lambda r: r.family_name.strip(),
    "date_of_birth": lambda r: r.date_of_birth.isoformat() if r.date_of_birth else "",
    "sex": _sex,
    "address": _address_text,
}


def field_conflicts(records: list[s.PersonRecord]) -> list[s.FieldConflict]:
    """Fields on which the records of one merged person disagree, none resolved: for each of
    nhs_number, given_name, family_name, date_of_birth (ISO 8601), sex and address (lines and postcode
    joined with ", "), in that order, when the records hold more than one distinct non-empty value,
    a :class:`FieldConflict` with every value (first-seen order) and the records holding each. Empty
    values, and an unknown or unspecified sex, are no value. [] for one record. Never raises."""
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


def merge_family(
    req: s.FamilyContextRequest,
    request_id: str,
    g: Gathered,
    subject_key: Key,
    home_keys: list[Key],
    federation: Federation,
) -> s.FamilyContextResponse:
    """The family-context answer from ``g``: one person per certain-link group (the subject first,
    then the subject council's people, then the others), each with every record, the evidence of its
    merges, its conflicts, its probable/possible matches and its per-council states; relationships and
    involvements re-pointed at those persons. ``sources`` is left empty for the caller to fill."""
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
                conflicts=field_conflicts(records),
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
