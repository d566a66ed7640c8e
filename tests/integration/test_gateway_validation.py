"""Malformed requests get 400, 413 or 422 with a message a person can act on; never 500, never an echo."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer

OK = {"purpose": "s17_assessment", "case_reference": "CASE-1"}


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    # Module-wide: these tests never change the issuer's keys (test_gateway_auth.py does, per test).
    with running_issuer() as running:
        yield running


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        yield running


async def _errors(gw: RunningGateway, path: str, body: Any) -> dict[str, str]:
    resp = await gw.client.post(path, json=body, headers=gw.auth())
    assert resp.status_code == 422, resp.text
    payload = resp.json()
    assert payload["detail"].startswith("The request is not valid")
    return {e["field"]: e["message"] for e in payload["errors"]}


@pytest.mark.parametrize(
    ("body", "field", "expected"),
    [
        (
            {**OK, "given_name": "Zoë", "date_of_birth": "2014-02-31"},
            "date_of_birth",
            "not a real calendar date",
        ),
        ({**OK, "given_name": "Zoë", "date_of_birth": "05/03/2014"}, "date_of_birth", "YYYY-MM-DD"),
        ({**OK, "given_name": "Zoë", "date_of_birth": "2999-01-01"}, "date_of_birth", "not be in the future"),
        ({**OK, "given_name": "Zoë", "date_of_birth": "1899-12-31"}, "date_of_birth", "after 1900-01-01"),
        ({**OK, "family_name": "x" * 101}, "family_name", "1-100 characters"),
        ({**OK, "family_name": "Smith", "postcode": "SK1 3XE SK1 3XE"}, "postcode", "at most 10"),
        ({**OK, "nhs_number": "943 476 5918"}, "nhs_number", "check digit"),
        ({**OK, "nhs_number": "99999999999999"}, "nhs_number", "10 digits"),
        ({**OK, "purpose": "curiosity", "family_name": "Smith"}, "purpose", "s17_assessment"),
        ({**OK, "case_reference": "", "family_name": "Smith"}, "case_reference", "1-64 characters"),
        ({**OK, "case_reference": "c" * 65, "family_name": "Smith"}, "case_reference", "1-64 characters"),
        ({**OK, "family_name": 12345}, "family_name", "text"),
        ({**OK, "family_name": ["Smith"]}, "family_name", "text"),
        ({**OK, "family_name": "Smith", "ssn": "123"}, "body", "unexpected field(s)"),
        ({"case_reference": "C", "family_name": "Smith"}, "purpose", "is required"),
        (OK, "body", "Give at least an NHS number"),
        ({**OK, "given_name": "Zoë"}, "body", "Give at least an NHS number"),
        (["not", "an", "object"], "body", "JSON object"),
    ],
)
async def test_search_validation_messages(gw: RunningGateway, body: Any, field: str, expected: str) -> None:
    errors = await _errors(gw, "/v1/searches", body)
    assert field in errors, errors
    assert expected in errors[field]


@pytest.mark.parametrize(
    ("field", "name"),
    [
        pytest.param("family_name", "Smi\u202eth", id="bidi override U+202E"),
        pytest.param("given_name", "Jo\u200bhn", id="zero-width space U+200B"),
        pytest.param("family_name", "\ufeffSmith", id="byte order mark U+FEFF"),
        pytest.param("family_name", "Smith\u2066", id="bidi isolate U+2066"),
        pytest.param("given_name", "Jo\u0085hn", id="C1 control U+0085"),
        pytest.param("family_name", "Smi\u2028th", id="line separator U+2028"),
    ],
)
async def test_names_with_invisible_or_control_characters_are_refused(
    gw: RunningGateway, field: str, name: str
) -> None:
    body = {**OK, "family_name": "Smith", "given_name": "John", "date_of_birth": "2014-03-05", field: name}
    errors = await _errors(gw, "/v1/searches", body)
    assert list(errors) == [field], errors
    assert "invisible formatting characters" in errors[field]
    assert name not in errors[field]


async def test_names_with_too_many_combining_marks_in_a_row_are_refused(gw: RunningGateway) -> None:
    errors = await _errors(gw, "/v1/searches", {**OK, "family_name": "Smi" + "\u0301" * 5 + "th"})
    assert list(errors) == ["family_name"], errors
    assert "more than 4 combining marks" in errors["family_name"]


@pytest.mark.parametrize(
    "name",
    [
        "O'Neill",
        "Smith-Jones",
        "Zoë",
        "Jose\u0301",  # é as e + combining acute (NFD)
        "Nguye\u0302\u0303n",  # Vietnamese: two marks stacked on one letter
        "Ng\u0169\u0300",
        "Siobhán Ní Bhriain",
        "\u0645\u064f\u062d\u064e\u0645\u064e\u0651\u062f",  # Arabic with harakat (combining marks)
        "\u0928\u093f\u0924\u093f\u0928",  # Devanagari vowel signs (Mc/Mn)
    ],
)
async def test_names_with_accents_apostrophes_hyphens_and_marks_are_accepted(
    gw: RunningGateway, name: str
) -> None:
    resp = await gw.client.post("/v1/searches", json={**OK, "family_name": name}, headers=gw.auth())
    assert resp.status_code == 200, resp.text


async def test_messages_never_echo_submitted_values(gw: RunningGateway) -> None:
    body = {
        **OK,
        "given_name": "Zoë",
        "family_name": "<script>O'Neill",
        "date_of_birth": "2014-02-31",
        "nhs_number": "943 476 5918",
        "postcode": "NOT A CODE",
    }
    resp = await gw.client.post("/v1/searches", json=body, headers=gw.auth())
    assert resp.status_code == 422
    for value in ("Zoë", "O'Neill", "2014-02-31", "943 476 5918", "9434765918", "NOT A CODE"):
        assert value not in resp.text


@pytest.mark.parametrize(
    ("subject", "field"),
    [
        ({"gss_code": "Stockport", "local_person_id": "S-1"}, "subject.gss_code"),
        ({"gss_code": "E08000007", "local_person_id": "S 1; DROP TABLE"}, "subject.local_person_id"),
        ({"gss_code": "E08000007"}, "subject.local_person_id"),
        ("E08000007/S-1", "subject"),
    ],
)
async def test_family_context_validation(gw: RunningGateway, subject: Any, field: str) -> None:
    errors = await _errors(gw, "/v1/family-context", {**OK, "subject": subject})
    assert field in errors, errors


SEARCH_FIELDS = (
    "purpose, case_reference, nhs_number, given_name, family_name, date_of_birth, postcode, break_glass_id"
)


async def test_unknown_keys_are_never_echoed(gw: RunningGateway) -> None:
    secret_key = "Siobhan ONeill dob 1990-07-21"
    resp = await gw.client.post(
        "/v1/searches", json={**OK, "family_name": "Smith", secret_key: 1}, headers=gw.auth()
    )
    assert resp.status_code == 422
    assert "Siobhan" not in resp.text and "1990" not in resp.text
    assert resp.json()["errors"] == [
        {
            "field": "body",
            "message": "unexpected field(s): remove fields that are not part of this request "
            f"(allowed: {SEARCH_FIELDS})",
        }
    ]
    resp = await gw.client.post(
        "/v1/family-context",
        json={**OK, "subject": {"gss_code": "E08000007", "local_person_id": "S-1", secret_key: 1}},
        headers=gw.auth(),
    )
    assert resp.status_code == 422
    assert resp.json()["errors"] == [
        {
            "field": "subject",
            "message": "unexpected field(s) in subject: remove fields that are not part of this request "
            "(allowed: gss_code, local_person_id)",
        }
    ]
    assert "Siobhan" not in resp.text and "1990" not in resp.text


UNREADABLE = (
    "The request body must be UTF-8 JSON sent with Content-Type: application/json, not compressed, "
    "at most 64 KiB"
)


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        pytest.param(b'{"purpose": ', {}, id="malformed JSON"),
        pytest.param(
            b'{"purpose": "s17_assessment", "family_name": "O\xff\xfeNeill"}', {}, id="invalid UTF-8"
        ),
        pytest.param(
            gzip.compress(json.dumps({**OK, "family_name": "Siobhan"}).encode()),
            {"Content-Encoding": "gzip"},
            id="gzip-encoded body",
        ),
        pytest.param(
            b"purpose=s17_assessment&family_name=Siobhan",
            {"Content-Type": "application/x-www-form-urlencoded"},
            id="form",
        ),
        pytest.param(
            json.dumps({**OK, "family_name": "Siobhan"}).encode(),
            {"Content-Type": "text/plain"},
            id="JSON as text/plain",
        ),
    ],
)
async def test_unreadable_bodies_are_one_400_in_the_error_shape(
    gw: RunningGateway, body: bytes, headers: dict[str, str]
) -> None:
    resp = await gw.client.post(
        "/v1/searches",
        content=body,
        headers={
            **gw.auth(),
            "Content-Type": "application/json",
            "X-Request-ID": "rid-unreadable",
            **headers,
        },
    )
    assert resp.status_code == 400, resp.text
    assert resp.json() == {"detail": UNREADABLE, "errors": [], "request_id": "rid-unreadable"}
    assert resp.headers["x-request-id"] == "rid-unreadable"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" * 5000 + b"]" * 5000, id="arrays nested 5000 deep"),
        pytest.param(b'{"a":' * 5000 + b"1" + b"}" * 5000, id="objects nested 5000 deep"),
        pytest.param(b'{"a":' * 10_000, id="10,000 unclosed objects (~49 KB, under the size limit)"),
    ],
)
async def test_json_nested_too_deeply_is_a_400_that_says_so(gw: RunningGateway, body: bytes) -> None:
    # Before: the generic "must be UTF-8 JSON ... at most 64 KiB", which the body already was.
    resp = await gw.client.post(
        "/v1/searches",
        content=body,
        headers={**gw.auth(), "Content-Type": "application/json", "X-Request-ID": "rid-deep"},
    )
    assert resp.status_code == 400, resp.text
    payload = resp.json()
    assert payload["detail"].startswith("The request body is JSON nested too deeply"), payload
    assert payload["errors"] == [] and payload["request_id"] == "rid-deep"


async def test_oversized_body_is_413(gw: RunningGateway) -> None:
    body = {**OK, "family_name": "Smith", "padding": "x" * (70 * 1024)}
    resp = await gw.client.post("/v1/searches", json=body, headers=gw.auth())
    assert resp.status_code == 413
    assert resp.json()["detail"] == "Request body too large: the limit is 65536 bytes"
    assert "x" * 100 not in resp.text


async def test_oversized_body_without_content_length_is_413(gw: RunningGateway) -> None:
    async def chunks():  # a streamed (chunked) body declares no length up front
        yield b'{"purpose": "s17_assessment", "case_reference": "C", "family_name": "'
        for _ in range(70):
            yield b"x" * 1024
        yield b'"}'

    headers = {**gw.auth(), "Content-Type": "application/json"}
    resp = await gw.client.post("/v1/searches", content=chunks(), headers=headers)
    assert resp.status_code == 413
    assert resp.json()["detail"]
    assert "x" * 100 not in resp.text


async def test_validation_happens_after_authentication(gw: RunningGateway) -> None:
    resp = await gw.client.post("/v1/searches", json={"purpose": "nonsense"})
    assert resp.status_code == 401
