"""(d) Malformed requests get 422 (unreadable bodies 400) with messages a person can act on, never 500,
never echoed data."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_support import CASE_REFERENCE, PURPOSE, Gateway

SUBJECT = {"gss_code": "E08000007", "local_person_id": "100001"}
FC = "/v1/family-context"
SEARCH = "/v1/searches"
SECRET_NAME = "Zzyzx-Private-Name"


CASES: list[tuple[str, str, Any, str]] = [
    ("impossible date", SEARCH, {"purpose": PURPOSE, "case_reference": CASE_REFERENCE, "given_name": "Ann",
                                 "date_of_birth": "2014-02-30"}, "date_of_birth"),
    ("day-first date", SEARCH, {"purpose": PURPOSE, "case_reference": CASE_REFERENCE, "given_name": "Ann",
                                "date_of_birth": "05/03/2014"}, "date_of_birth"),
    ("oversized name", SEARCH, {"purpose": PURPOSE, "case_reference": CASE_REFERENCE,
                                "family_name": SECRET_NAME * 1000}, "family_name"),
    ("unknown purpose", SEARCH, {"purpose": "curiosity", "case_reference": CASE_REFERENCE,
                                 "family_name": "Smith"}, "purpose"),
    ("purpose of wrong type", FC, {"purpose": 47, "case_reference": CASE_REFERENCE, "subject": SUBJECT},
     "purpose"),
    ("subject of wrong type", FC, {"purpose": PURPOSE, "case_reference": CASE_REFERENCE, "subject": "100001"},
     "subject"),
    ("missing case reference", FC, {"purpose": PURPOSE, "subject": SUBJECT}, "case_reference"),
    ("bad gss code", FC, {"purpose": PURPOSE, "case_reference": CASE_REFERENCE,
                          "subject": {"gss_code": "Stockport", "local_person_id": "1"}}, "subject.gss_code"),
    ("unknown field", SEARCH, {"purpose": PURPOSE, "case_reference": CASE_REFERENCE, "family_name": "Smith",
                               SECRET_NAME: "blue"}, "body"),
    ("invalid NHS number", SEARCH, {"purpose": PURPOSE, "case_reference": CASE_REFERENCE,
                                    "nhs_number": "9434765918"}, "nhs_number"),
    ("too little to search on", SEARCH, {"purpose": PURPOSE, "case_reference": CASE_REFERENCE,
                                         "given_name": SECRET_NAME}, "body"),
    ("json array", FC, [1, 2, 3], "body"),
]


@pytest.mark.parametrize(("case", "path", "body", "field"), CASES, ids=[c[0] for c in CASES])
def test_malformed_request_is_422_with_actionable_message(
    case: str, path: str, body: Any, field: str, gateway: Gateway
) -> None:
    response = gateway.post(path, body)
    assert response.status_code == 422, f"{case}: {response.status_code} {response.text[:300]}"
    answer = response.json()
    assert answer["detail"]
    fields = {e["field"]: e["message"] for e in answer["errors"]}
    assert field in fields, f"{case}: {answer}"
    assert len(fields[field]) > 10
    assert SECRET_NAME not in response.text, "the submitted value must not be echoed"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"{purpose: s47", "The request body must be UTF-8 JSON"),
        (b'{"family_name": "O\xffNeill"}', "The request body must be UTF-8 JSON"),
        (b"[" * 5000 + b"]" * 5000, "The request body is JSON nested too deeply"),
    ],
    ids=["not json", "not UTF-8", "nested 5000 deep"],
)
def test_unreadable_body_is_400_in_the_error_shape(body: bytes, detail: str, gateway: Gateway) -> None:
    response = gateway.post(SEARCH, body)
    assert response.status_code == 400, response.text
    answer = response.json()
    assert answer["detail"].startswith(detail)
    assert answer["errors"] == [] and answer["request_id"] == response.headers["x-request-id"]


def test_oversized_body_is_rejected_not_500(gateway: Gateway) -> None:
    body = {"purpose": PURPOSE, "case_reference": CASE_REFERENCE, "family_name": "x" * (200 * 1024)}
    response = gateway.post(SEARCH, body)
    assert response.status_code in (413, 422)
    assert response.json()["detail"]
