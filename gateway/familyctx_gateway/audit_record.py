"""What the gateway records about one request: the audit record (a log entry's payload) and the index
rows derived from it.

An :class:`AuditEvent` is built by the request handler; :func:`audit_payload` turns it into the JSON
document stored (as canonical JSON, :func:`familyctx.auditlog.canonical.canonical_bytes`) in one entry of
the Merkle-tree log, and :func:`index_rows` derives the rows of ``audit_events``, ``audit_subjects``,
``audit_councils`` (and, for break glass and reviews, ``break_glass_grants``,
``break_glass_notifications``, ``audit_reviews``) from that payload alone, so the index can always be
rebuilt from the log. Field meanings follow FHIR R4 AuditEvent / IHE BALP (docs/audit.md has the
mapping): ``who`` = agent, ``whose`` = entity (patient role), ``what`` = entity (query, records shown),
``why`` = purposeOfUse, ``outcome`` = outcome, ``request`` = source and the event's identity.

Payload shape (version 1; every value JSON-native: strings, integers, booleans, null, lists, objects)::

    {"v": 1, "record_class": "access",
     "request": {"request_id", "trace_id", "endpoint", "occurred_at" (RFC 3339 UTC)},
     "who": {"sub", "name", "issuer", "organisation", "roles": [...], "role", "client", "jti"},
     "why": {"purpose", "case_reference", "break_glass": bool, "break_glass_id", "break_glass_reason"},
     "whose": [{"kind": "searched_for"|"returned", "gss_code", "local_person_id", "nhs_number",
                "given_name", "family_name", "date_of_birth", "postcode"}, ...],
     "what": {"query": {...as sent...}, "involvements": [{"gss_code", "local_person_id", "dataset_id",
              "involvement_id"}], "datasets": [{"gss_code", "dataset_id"}],
              "response": {"sha256", "bytes", "media_type"} | null},
     "outcome": {"result": "success"|"partial"|"denied"|"error", "http_status",
                 "councils": [{"gss_code", "state", "detail"}]},
     "grant": {...} (break_glass only), "review": {...} (ig_access reviews only),
     "notify": {"break_glass_id", "councils": [...], "opened_at", "expires_at", "first_used_at"}
               (break_glass only: councils first asked for data under a grant, told before they are),
     "migrated": true (only records carried over from the pre-log schema)}
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from familyctx.identifiers import name_match_key, normalise_nhs_number, normalise_postcode
from familyctx_gateway.audit_schema import (
    audit_councils,
    audit_events,
    audit_reviews,
    audit_subjects,
    break_glass_grants,
    break_glass_notifications,
)

__all__ = [
    "RECORD_VERSION",
    "AuditEvent",
    "AuditOutcome",
    "CouncilOutcome",
    "RecordClass",
    "Subject",
    "SubjectKind",
    "audit_payload",
    "index_rows",
    "rfc3339",
]

#: Version of the payload shape; a reader must check it before reading a record.
RECORD_VERSION = 1


class RecordClass(StrEnum):
    """Record classes (each has its own retention period, ``audit.retention_days``)."""

    access = "access"  # a search or family-context request (personal data asked for or shown)
    break_glass = "break_glass"  # a break-glass grant opened (or refused)
    ig_access = "ig_access"  # an IG officer reading the audit, or reviewing a grant


class AuditOutcome(StrEnum):
    """How the request ended (FHIR AuditEvent.outcome: success 0, partial 4, denied 4, error 8)."""

    success = "success"  # every council answered
    partial = "partial"  # answered, but at least one council was unavailable, timed out or failed
    denied = "denied"  # authenticated, but the role may not make this request
    error = "error"  # the request failed (e.g. unknown subject)


class SubjectKind(StrEnum):
    searched_for = "searched_for"  # what the worker asked for (query terms, or the chosen subject)
    returned = "returned"  # a council record the response showed


@dataclass(frozen=True, slots=True)
class Subject:
    """A person the request was about, as asked for or as shown (raw values; index keys are derived).

    ``gss_code`` / ``local_person_id``: the council record (None for a search by demographics);
    ``date_of_birth``: ISO 8601 date text.
    """

    kind: SubjectKind
    gss_code: str | None = None
    local_person_id: str | None = None
    nhs_number: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: str | None = None
    postcode: str | None = None

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind.value}
        for name in (
            "gss_code",
            "local_person_id",
            "nhs_number",
            "given_name",
            "family_name",
            "date_of_birth",
            "postcode",
        ):
            value = getattr(self, name)
            if value not in (None, ""):
                data[name] = value
        return data


@dataclass(frozen=True, slots=True)
class CouncilOutcome:
    """One council's state in the request (``ok``, ``unavailable``, ``timed_out``, ``refused``,
    ``error``) and, when it did not answer, why (no personal data: the adapter's error wording)."""

    gss_code: str
    state: str
    detail: str | None = None


@dataclass(slots=True)
class AuditEvent:
    """One request, as the gateway records it (see the module docstring for the stored shape).

    ``roles``: every role the token carried; ``role``: the one the gateway policy authorised (None when
    refused). ``break_glass_id`` is kept when a grant was refused too. ``query_terms``: what was asked,
    as sent. ``subjects``: searched for and returned. ``involvements``: ``{gss_code, local_person_id,
    dataset_id, involvement_id}`` shown. ``response_sha256`` / ``response_bytes``: of the exact body
    returned (None for a refusal or an error answered by the error handler). ``grant``: the break-glass
    grant opened (record class ``break_glass``); ``review``: an IG officer's review (``ig_access``);
    ``notify``: councils notified of a grant the first time they are asked for data under it (record
    class ``break_glass``; :meth:`~familyctx_gateway.break_glass.BreakGlassStore.notify_use`).
    """

    request_id: str
    user_sub: str
    user_name: str
    organisation: str
    roles: list[str]
    client: str
    jti: str
    endpoint: str
    outcome: AuditOutcome
    http_status: int
    record_class: RecordClass = RecordClass.access
    issuer: str = ""
    purpose: str | None = None
    case_reference: str | None = None
    role: str | None = None
    break_glass: bool = False
    break_glass_id: str | None = None
    break_glass_reason: str | None = None
    query_terms: dict[str, Any] = field(default_factory=dict)
    subjects: list[Subject] = field(default_factory=list)
    councils: list[CouncilOutcome] = field(default_factory=list)
    involvements: list[dict[str, str]] = field(default_factory=list)
    response_sha256: str | None = None
    response_bytes: int | None = None
    trace_id: str | None = None
    occurred_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    grant: dict[str, Any] | None = None
    review: dict[str, Any] | None = None
    notify: dict[str, Any] | None = None


def rfc3339(value: dt.datetime) -> str:
    """``value`` as RFC 3339 UTC text with microseconds and ``Z`` (naive values are taken as UTC)."""
    utc = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)


def audit_payload(event: AuditEvent) -> dict[str, Any]:
    """The JSON document stored for ``event`` in the log (shape in the module docstring).

    Deterministic for a given event: lists keep the order the response showed them in.
    """
    datasets = sorted({(i["gss_code"], i["dataset_id"]) for i in event.involvements})
    payload: dict[str, Any] = {
        "v": RECORD_VERSION,
        "record_class": event.record_class.value,
        "request": {
            "request_id": event.request_id,
            "trace_id": event.trace_id,
            "endpoint": event.endpoint,
            "occurred_at": rfc3339(event.occurred_at),
        },
        "who": {
            "sub": event.user_sub,
            "name": event.user_name,
            "issuer": event.issuer,
            "organisation": event.organisation,
            "roles": list(event.roles),
            "role": event.role,
            "client": event.client,
            "jti": event.jti,
        },
        "why": {
            "purpose": event.purpose,
            "case_reference": event.case_reference,
            "break_glass": event.break_glass,
            "break_glass_id": event.break_glass_id,
            "break_glass_reason": event.break_glass_reason,
        },
        "whose": [s.as_json() for s in event.subjects],
        "what": {
            "query": event.query_terms,
            "involvements": [dict(i) for i in event.involvements],
            "datasets": [{"gss_code": g, "dataset_id": d} for g, d in datasets],
            "response": (
                {
                    "sha256": event.response_sha256,
                    "bytes": event.response_bytes,
                    "media_type": "application/json",
                }
                if event.response_sha256 is not None
                else None
            ),
        },
        "outcome": {
            "result": event.outcome.value,
            "http_status": event.http_status,
            "councils": [
                {"gss_code": c.gss_code, "state": c.state, "detail": c.detail} for c in event.councils
            ],
        },
    }
    if event.grant is not None:
        payload["grant"] = event.grant
    if event.review is not None:
        payload["review"] = event.review
    if event.notify is not None:
        payload["notify"] = event.notify
    return payload


def _date(value: Any) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        return None  # a partial or malformed date asked for: kept in the payload, not indexed


def _subject_row(seq: int, subject: Mapping[str, Any]) -> dict[str, Any]:
    family = name_match_key(subject.get("family_name")) or None
    given = name_match_key(subject.get("given_name")) or None
    return {
        "seq": seq,
        "kind": subject["kind"],
        "gss": subject.get("gss_code"),
        "local_person_id": subject.get("local_person_id"),
        "nhs_number": normalise_nhs_number(subject.get("nhs_number")),
        "family_name_key": family[:200] if family else None,
        "given_name_key": given[:200] if given else None,
        "date_of_birth": _date(subject.get("date_of_birth")),
        "postcode": normalise_postcode(subject.get("postcode")),
    }


def _unique_subjects(subjects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for subject in subjects:
        key = tuple(sorted(subject.items()))
        if key not in seen:
            seen.add(key)
            unique.append(subject)
    return unique


def index_rows(seq: int, payload: Mapping[str, Any]) -> dict[sa.Table, list[dict[str, Any]]]:
    """The index rows of log entry ``seq`` whose payload is ``payload``, by table (insert order:
    grants before their notifications and reviews). Pure: the same payload always gives the same rows.
    """
    request, who, why = payload["request"], payload["who"], payload["why"]
    outcome = payload["outcome"]
    response = (payload.get("what") or {}).get("response") or {}
    rows: dict[sa.Table, list[dict[str, Any]]] = {
        audit_events: [
            {
                "seq": seq,
                "record_class": payload["record_class"],
                "request_id": request["request_id"],
                "occurred_at": _parse_time(request["occurred_at"]),
                "user_sub": who.get("sub"),
                "user_name": who.get("name"),
                "organisation": who.get("organisation") or "",
                "role": who.get("role"),
                "client": who.get("client"),
                "jti": who.get("jti"),
                "purpose": why.get("purpose"),
                "case_reference": why.get("case_reference"),
                "break_glass": bool(why.get("break_glass")),
                "break_glass_id": why.get("break_glass_id"),
                "endpoint": request["endpoint"],
                "outcome": outcome["result"],
                "http_status": outcome["http_status"],
                "trace_id": request.get("trace_id"),
                "response_sha256": response.get("sha256"),
                "migrated": bool(payload.get("migrated")),
            }
        ],
        audit_subjects: [_subject_row(seq, s) for s in _unique_subjects(payload.get("whose") or [])],
        audit_councils: [
            {"seq": seq, "gss": c["gss_code"], "state": c["state"], "detail": (c.get("detail") or None)}
            for c in {c["gss_code"]: c for c in outcome.get("councils") or []}.values()
        ],
    }
    grant = payload.get("grant")
    if grant is not None:
        opened, expires = _parse_time(grant["opened_at"]), _parse_time(grant["expires_at"])
        rows[break_glass_grants] = [
            {
                "id": grant["break_glass_id"],
                "user_sub": who["sub"],
                "issuer": who.get("issuer") or "",
                "user_name": who["name"],
                "organisation": who.get("organisation") or "",
                "client": who.get("client") or "",
                "role": who["role"],
                "purpose": why["purpose"],
                "case_reference": why["case_reference"],
                "reason": grant["reason"],
                "opened_at": opened,
                "expires_at": expires,
                "request_id": request["request_id"],
            }
        ]
        rows[break_glass_notifications] = [
            {
                "council_gss_code": code,
                "grant_id": grant["break_glass_id"],
                "worker_sub": who["sub"],
                "worker_name": who["name"],
                "worker_organisation": who.get("organisation") or "",
                "purpose": why["purpose"],
                "case_reference": why["case_reference"],
                "reason": grant["reason"],
                "opened_at": opened,
                "expires_at": expires,
                "notified_because": "opened",
                "first_used_at": None,
            }
            for code in grant.get("councils_notified") or []
        ]
    notify = payload.get("notify")
    if notify is not None:  # councils first asked for data under a grant (break_glass records)
        rows[break_glass_notifications] = [
            {
                "council_gss_code": code,
                "grant_id": notify["break_glass_id"],
                "worker_sub": who["sub"],
                "worker_name": who["name"],
                "worker_organisation": who.get("organisation") or "",
                "purpose": why["purpose"],
                "case_reference": why["case_reference"],
                "reason": why.get("break_glass_reason") or "",
                "opened_at": _parse_time(notify["opened_at"]),
                "expires_at": _parse_time(notify["expires_at"]),
                "notified_because": "used",
                "first_used_at": _parse_time(notify["first_used_at"]),
            }
            for code in notify.get("councils") or []
        ]
    review = payload.get("review")
    if review is not None:
        rows[audit_reviews] = [
            {
                "seq": seq,
                "grant_id": review["break_glass_id"],
                "reviewer_sub": who["sub"],
                "reviewer_name": who["name"],
                "reviewer_organisation": who.get("organisation") or "",
                "reviewed_at": _parse_time(request["occurred_at"]),
                "note": review["note"],
            }
        ]
    return rows
