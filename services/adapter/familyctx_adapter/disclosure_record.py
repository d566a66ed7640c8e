"""What one disclosure record holds: who asked, why, and exactly what this council released.

A record is a plain mapping, hashed as canonical JSON (:func:`familyctx.auditlog.canonical.canonical_bytes`)
into the adapter's own Merkle log (:mod:`familyctx_adapter.disclosure`). One record per FindPeople or
GetFamilyContext answer (record class ``disclosure``) and per refusal by the sharing policy (class
``refusal``: PERMISSION_DENIED, nothing released). Calls refused before authentication (no client
certificate, no valid assertion) are not disclosures and are not recorded here (the adapter's log lines
keep them).

Record shape (version 1; every key always present, lists sorted, times RFC 3339 UTC)::

    {"record_version": 1, "council": "E08000007", "method": "GetFamilyContext",
     "outcome": "disclosed" | "refused", "occurred_at": "2026-01-31T09:05:00.000000Z",
     "request_id": "...", "assertion": {"jti": "...", "issued_at": "...", "expires_at": "..."},
     "requester": {"sub", "name", "organisation", "role", "client"},
     "purpose": "s47_enquiry", "case_reference": "...",
     "break_glass": false, "break_glass_reason": "",
     "asked": {"query_fields": ["nhs_number"], "local_person_ids": [], "include_relatives": false},
     "released": {"local_person_ids": [...], "involvement_ids": [...], "datasets_released": [...],
                  "datasets_withheld": [...], "fields_withheld": ["person.address", "csc:practitioner.phone"],
                  "people": 3, "relationships": 2, "involvements": 4},
     "policies": ["@id", ...],
     "response_sha256": "<hex of SHA-256 over the serialised response message>" | null}

``fields_withheld`` names person fields as is (``person.address``) and involvement fields of a released
dataset as ``<dataset>:<field>``. ``asked`` holds which identifiers a search used (field names, never
their values) or the local ids a family context was asked for. ``response_sha256`` is over the bytes the
adapter sends (``SerializeToString(deterministic=True)``; these messages have no map fields, so it is
what gRPC writes on the wire), ``null`` for a refusal. Follows FHIR AuditEvent meanings: ``requester`` is
the agent, ``purpose`` the purposeOfUse, ``released`` the entities, ``outcome`` the outcome.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from familycontext.v1 import adapter_pb2

from familyctx.trust.assertion import VerifiedAssertion
from familyctx_adapter.policy import PERSON_FIELDS, Disclosure

__all__ = [
    "CLASS_DISCLOSURE",
    "CLASS_REFUSAL",
    "RECORD_VERSION",
    "Asked",
    "RecordMaker",
    "Released",
    "asked_family_context",
    "asked_find_people",
    "datasets_present",
    "disclosure_record",
    "record_summary",
    "released_family_context",
    "refusal_released",
    "released_find_people",
    "response_sha256",
]

RECORD_VERSION = 1
#: Record classes (``<prefix>_entries.record_class``; retention is set per class).
CLASS_DISCLOSURE = "disclosure"
CLASS_REFUSAL = "refusal"
_QUERY_FIELDS = ("nhs_number", "given_name", "family_name", "date_of_birth", "postcode", "local_person_id")


@dataclass(frozen=True, slots=True)
class Asked:
    """What the request asked for, without personal data: the identifier fields a search used, or the
    council's own local person ids a family context was asked for."""

    query_fields: tuple[str, ...] = ()
    local_person_ids: tuple[str, ...] = ()
    include_relatives: bool = False

    def as_record(self) -> dict[str, Any]:
        """The ``asked`` part of a record."""
        return {
            "query_fields": list(self.query_fields),
            "local_person_ids": sorted(self.local_person_ids),
            "include_relatives": self.include_relatives,
        }


@dataclass(frozen=True, slots=True)
class Released:
    """What left the adapter: local person ids, involvement ids, datasets released and withheld by the
    sharing policy, fields withheld (``person.address`` or ``<dataset>:<field>``), counts, and the ``@id``
    of every policy that decided (``policies``)."""

    local_person_ids: tuple[str, ...] = ()
    involvement_ids: tuple[str, ...] = ()
    datasets_released: tuple[str, ...] = ()
    datasets_withheld: tuple[str, ...] = ()
    fields_withheld: tuple[str, ...] = ()
    relationships: int = 0
    policies: tuple[str, ...] = field(default=())

    def as_record(self) -> dict[str, Any]:
        """The ``released`` part of a record (lists sorted and without repeats)."""
        return {
            "local_person_ids": sorted(set(self.local_person_ids)),
            "involvement_ids": sorted(set(self.involvement_ids)),
            "datasets_released": sorted(set(self.datasets_released)),
            "datasets_withheld": sorted(set(self.datasets_withheld)),
            "fields_withheld": sorted(set(self.fields_withheld)),
            "people": len(set(self.local_person_ids)),
            "relationships": self.relationships,
            "involvements": len(set(self.involvement_ids)),
        }


def response_sha256(response: Any) -> str:
    """Hex SHA-256 of ``response`` (a protobuf message) serialised deterministically."""
    return hashlib.sha256(response.SerializeToString(deterministic=True)).hexdigest()


def asked_find_people(request: adapter_pb2.FindPeopleRequest) -> Asked:
    """Which identifier fields a FindPeople request carried (names only, never values)."""
    query = request.query
    used = []
    for name in _QUERY_FIELDS:
        if name == "date_of_birth":
            if query.HasField("date_of_birth"):
                used.append(name)
        elif getattr(query, name):
            used.append(name)
    return Asked(query_fields=tuple(used))


def asked_family_context(request: adapter_pb2.GetFamilyContextRequest) -> Asked:
    """The local person ids a GetFamilyContext request asked for (at most 200, each cut to 128 chars)."""
    ids = tuple(dict.fromkeys(i[:128] for i in list(request.local_person_ids)[:200]))
    return Asked(local_person_ids=ids, include_relatives=request.include_relatives)


def datasets_present(response: adapter_pb2.GetFamilyContextResponse) -> list[str]:
    """Dataset ids an unfiltered GetFamilyContext answer mentions (involvements, then outcomes), in order
    and without repeats: the datasets the sharing policy is asked about."""
    present = [i.dataset_id for i in response.involvements] + [
        o.dataset_id for o in response.dataset_outcomes
    ]
    return list(dict.fromkeys(present))


def _policies(disclosure: Disclosure, datasets: Iterable[str] = ()) -> tuple[str, ...]:
    decisions = [disclosure.people, *(disclosure.fields.values()), *(disclosure.dataset(d) for d in datasets)]
    return tuple(sorted({p for d in decisions for p in d.policies}))


def _person_fields_withheld(disclosure: Disclosure) -> list[str]:
    return [f for f in PERSON_FIELDS if not disclosure.field("", f).allowed]


def released_find_people(response: adapter_pb2.FindPeopleResponse, disclosure: Disclosure) -> Released:
    """What a filtered FindPeople answer released: the candidates' local ids (demographics only, no
    datasets) and the person fields ``disclosure`` withheld."""
    return Released(
        local_person_ids=tuple(p.local_person_id for p in response.candidates),
        fields_withheld=tuple(_person_fields_withheld(disclosure)),
        policies=_policies(disclosure),
    )


def released_family_context(
    response: adapter_pb2.GetFamilyContextResponse, disclosure: Disclosure, present: Iterable[str]
) -> Released:
    """What a filtered GetFamilyContext answer released: people, involvements, the datasets of
    ``present`` the policy released or withheld, and withheld fields (``<dataset>:<field>`` for each
    released dataset)."""
    present = list(dict.fromkeys(present))
    released = [d for d in present if disclosure.dataset(d).allowed]
    withheld = [d for d in present if not disclosure.dataset(d).allowed]
    fields = _person_fields_withheld(disclosure)
    fields += [f"{d}:{f}" for d in released for f in disclosure.withheld_fields(d)]
    # The filter removed every involvement of a withheld dataset; count what actually left.
    people = [p.local_person_id for p in response.people]
    return Released(
        local_person_ids=tuple(people),
        involvement_ids=tuple(i.involvement_id for i in response.involvements),
        datasets_released=tuple(released),
        datasets_withheld=tuple(withheld),
        fields_withheld=tuple(fields),
        relationships=len(response.relationships),
        policies=_policies(disclosure, present),
    )


def refusal_released(disclosure: Disclosure) -> Released:
    """A refusal releases nothing; it keeps the ``@id`` of the policies that refused (none: default
    deny)."""
    return Released(policies=tuple(sorted(disclosure.people.policies)))


def disclosure_record(
    *,
    council: str,
    method: str,
    verified: VerifiedAssertion,
    asked: Asked,
    released: Released,
    response_hash: str | None,
    occurred_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """The record of one answer (``response_hash`` given: outcome ``disclosed``) or one refusal by
    policy (``response_hash`` None: outcome ``refused``, ``released`` holding only the deciding policies).

    ``council``: this adapter's GSS code; ``method``: ``FindPeople`` or ``GetFamilyContext``;
    ``verified``: the caller's verified assertion; ``response_hash``: :func:`response_sha256` of the
    answer; ``occurred_at``: timezone-aware UTC time (default now). Shape: module docstring.
    """
    who = verified.requester
    moment = occurred_at or dt.datetime.now(dt.UTC)
    return {
        "record_version": RECORD_VERSION,
        "council": council,
        "method": method,
        "outcome": "refused" if response_hash is None else "disclosed",
        "occurred_at": moment,
        "request_id": who.request_id,
        "assertion": {
            "jti": verified.jti,
            "issued_at": verified.issued_at,
            "expires_at": verified.expires_at,
        },
        "requester": {
            "sub": who.sub,
            "name": who.name,
            "organisation": who.organisation,
            "role": who.role,
            "client": who.client,
        },
        "purpose": who.purpose,
        "case_reference": who.case_reference,
        "break_glass": bool(who.break_glass),
        "break_glass_reason": who.break_glass_reason,
        "asked": asked.as_record(),
        "released": released.as_record(),
        "policies": list(released.policies),
        "response_sha256": response_hash,
    }


def record_summary(record: Mapping[str, Any]) -> str:
    """A log-safe summary of a record: method, outcome and counts (no names, ids of people or free text)."""
    released = record.get("released") or {}
    return (
        f"method={record.get('method')} outcome={record.get('outcome')} people={released.get('people', 0)} "
        f"involvements={released.get('involvements', 0)}"
    )


@dataclass(frozen=True, slots=True)
class RecordMaker:
    """Makes the ``(record_class, record)`` of one call: :meth:`disclosed` for an answer, :meth:`refused`
    for a refusal by the sharing policy. ``council``: GSS code; ``method``: RPC name."""

    council: str
    method: str
    verified: VerifiedAssertion
    asked: Asked

    def disclosed(self, response: Any, released: Released) -> tuple[str, dict[str, Any]]:
        """Record class ``disclosure`` for the (filtered) ``response`` about to be sent."""
        record = disclosure_record(
            council=self.council,
            method=self.method,
            verified=self.verified,
            asked=self.asked,
            released=released,
            response_hash=response_sha256(response),
        )
        return CLASS_DISCLOSURE, record

    def refused(self, disclosure: Disclosure) -> tuple[str, dict[str, Any]]:
        """Record class ``refusal``: the policy disclosed no people; nothing released."""
        record = disclosure_record(
            council=self.council,
            method=self.method,
            verified=self.verified,
            asked=self.asked,
            released=refusal_released(disclosure),
            response_hash=None,
        )
        return CLASS_REFUSAL, record
