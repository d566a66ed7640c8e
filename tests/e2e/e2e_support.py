"""Helpers shared by the end-to-end tests (imported as a plain module: tests/e2e is on sys.path)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import sqlalchemy as sa
from familyctx_gateway.testing.audit import flat_records

#: The gateway's per-adapter deadline in this session (ms): generous, so that a loaded 2-core machine
#: never turns a slow-but-healthy council into "timed_out"; the hang test waits it out once.
DEADLINE_MS = 5000
PURPOSE = "s47_enquiry"
CASE_REFERENCE = "E2E-CASE-0001"
STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"


@dataclass
class Gateway:
    """Calls the live gateway; every 200 answer is checked to have exactly one committed audit record."""

    http: httpx.Client
    audit_engine: sa.Engine
    token: str

    def post(self, path: str, body: Any, *, token: str | None = "default", **kwargs: Any) -> httpx.Response:
        request_id = f"e2e-{uuid.uuid4()}"
        headers = {"X-Request-ID": request_id, **kwargs.pop("headers", {})}
        bearer = self.token if token == "default" else token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        if isinstance(body, (bytes, str)):
            headers["Content-Type"] = "application/json"
            response = self.http.post(path, content=body, headers=headers)
        else:
            response = self.http.post(path, json=body, headers=headers)
        if response.status_code == 200:
            assert response.headers["x-request-id"] == request_id
            rows = audit_rows(self.audit_engine, request_id)
            assert len(rows) == 1, f"expected one audit record for {request_id}, found {len(rows)}"
        return response

    def family_context(self, subject: dict[str, Any], **kwargs: Any) -> httpx.Response:
        body = {"purpose": PURPOSE, "case_reference": CASE_REFERENCE,
                "subject": {"gss_code": subject["gss_code"], "local_person_id": subject["local_person_id"]}}
        return self.post("/v1/family-context", body, **kwargs)


def audit_rows(engine: sa.Engine, request_id: str) -> list[dict[str, Any]]:
    """Committed audit records with this request id (index row, the record, and its query terms,
    roles and subjects returned; :func:`familyctx_gateway.testing.audit.flat_records`)."""
    return flat_records(engine, request_id=request_id)


def personal_data(scenario: dict[str, Any]) -> list[str]:
    """Strings that must never appear in an error body: names, dates of birth, NHS numbers, local ids."""
    people = [scenario["child"], scenario["mother"], *scenario["siblings"]]
    values = []
    for person in people:
        values += [person["given_name"], person["family_name"], person["date_of_birth"]]
        values += [v for v in (person.get("nhs_number"), person["local_person_id"]) if v]
    return values


def person_holding(answer: dict[str, Any], record: dict[str, Any]) -> dict[str, Any]:
    """The merged person of ``answer`` that includes the council record ``record`` (gss + local id)."""
    key = (record["gss_code"], record["local_person_id"])
    matches = [p for p in answer["people"]
               if key in {(r["gss_code"], r["local_person_id"]) for r in p["records"]}]
    assert len(matches) == 1, f"record {key} should be in exactly one person, found {len(matches)}"
    return matches[0]
