"""JSON bodies are read strictly (api/json_body.py), against the real app: a key given twice is refused
(422, naming the declared field, never its values) instead of the last one silently winning, and a number
too long for Python to read (over 4300 digits) is a 422 naming the field, not "must be UTF-8 JSON".
Neither is served nor audited; nothing sent is echoed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from familyctx_gateway.api.json_body import body_problems, load_json_body
from familyctx_gateway.testing.audit import flat_records
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer

LONG = "9" * 5000  # valid JSON, under the 64 KiB body limit; int() refuses more than 4300 digits
SEARCH = '"case_reference": "CASE-1", "family_name": "Smith"'
FAMILY = '"purpose": "s47_enquiry", "case_reference": "CASE-1"'
REASON = "Strategy meeting today: grandmother may be the safe carer"


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with running_issuer() as running:
        yield running


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'audit.sqlite'}") as running:
        yield running


async def _refused(gw: RunningGateway, path: str, body: str, request_id: str) -> list[dict[str, str]]:
    """POST ``body`` (raw JSON text): a 422 in the ErrorResponse shape, nothing audited; its errors."""
    resp = await gw.client.post(
        path,
        content=body.encode(),
        headers={**gw.auth(), "Content-Type": "application/json", "X-Request-ID": request_id},
    )
    assert resp.status_code == 422, resp.text
    payload = resp.json()
    assert payload["detail"].startswith("The request is not valid") and payload["request_id"] == request_id
    assert flat_records(gw.settings.audit.database_url, request_id=request_id) == []
    assert "9999" not in resp.text
    return list(payload["errors"])


async def test_a_purpose_given_twice_is_refused_not_served_as_the_last_one(gw: RunningGateway) -> None:
    body = f'{{"purpose": "s47_enquiry", "purpose": "s17_assessment", {SEARCH}}}'
    errors = await _refused(gw, "/v1/searches", body, "dup-purpose")
    assert errors == [
        {
            "field": "purpose",
            "message": "purpose is given more than once: send each field once (duplicate keys are refused)",
        }
    ]
    # The same body with the key once is served and audited with that purpose.
    resp = await gw.client.post(
        "/v1/searches",
        content=f'{{"purpose": "s47_enquiry", {SEARCH}}}'.encode(),
        headers={**gw.auth(), "Content-Type": "application/json", "X-Request-ID": "dup-once"},
    )
    assert resp.status_code == 200, resp.text
    [record] = flat_records(gw.settings.audit.database_url, request_id="dup-once")
    assert record["purpose"] == "s47_enquiry"


async def test_values_given_twice_are_never_echoed(gw: RunningGateway) -> None:
    body = f'{{"purpose": "s17_assessment", {SEARCH}, "family_name": "O\'Neill-Secret"}}'
    resp = await gw.client.post(
        "/v1/searches", content=body.encode(), headers={**gw.auth(), "Content-Type": "application/json"}
    )
    assert resp.status_code == 422 and "Secret" not in resp.text and "Smith" not in resp.text
    assert [e["field"] for e in resp.json()["errors"]] == ["family_name"]


async def test_a_nested_key_given_twice_is_named_by_its_path(gw: RunningGateway) -> None:
    subject = '{"gss_code": "E08000007", "local_person_id": "S-1", "gss_code": "E08000035"}'
    body = f'{{{FAMILY}, "subject": {subject}}}'
    errors = await _refused(gw, "/v1/family-context", body, "dup-nested")
    assert [e["field"] for e in errors] == ["subject.gss_code"]
    assert "E08000035" not in str(errors)


async def test_an_undeclared_key_given_twice_is_not_named(gw: RunningGateway) -> None:
    secret = "Siobhan ONeill 1990-07-21"
    body = f'{{"purpose": "s17_assessment", {SEARCH}, "{secret}": 1, "{secret}": 2}}'
    errors = await _refused(gw, "/v1/searches", body, "dup-unknown")
    assert errors == [
        {"field": "body", "message": "A key is given more than once in one JSON object: send each key once"}
    ]


async def test_a_break_glass_reason_given_twice_is_refused(gw: RunningGateway) -> None:
    body = f'{{{FAMILY}, "reason": "{REASON}", "reason": "{REASON}, again"}}'
    errors = await _refused(gw, "/v1/break-glass", body, "dup-reason")
    assert [e["field"] for e in errors] == ["reason"]


@pytest.mark.parametrize(
    ("path", "body", "field", "expects"),
    [
        (
            "/v1/searches",
            f'{{"purpose": "s17_assessment", "case_reference": "C", "family_name": {LONG}}}',
            "family_name",
            "family_name must be text of 1-100 characters",
        ),
        (
            "/v1/searches",
            f'{{"purpose": "s17_assessment", "case_reference": "C", "family_name": [-{LONG}]}}',
            "family_name",
            "family_name must be text",
        ),
        (
            "/v1/family-context",
            f'{{{FAMILY}, "subject": {{"gss_code": "E08000007", "local_person_id": {LONG}}}}}',
            "subject.local_person_id",
            "subject.local_person_id must be 1-48 letters",
        ),
        (
            "/v1/break-glass",
            f'{{{FAMILY}, "reason": "{REASON}", "minutes": {LONG}}}',
            "minutes",
            "(this gateway's break_glass.max_minutes)",
        ),
    ],
)
async def test_a_number_too_long_to_read_names_its_field(
    gw: RunningGateway, path: str, body: str, field: str, expects: str
) -> None:
    errors = await _refused(gw, path, body, "long-number")
    assert len(errors) == 1 and errors[0]["field"] == field, errors
    assert errors[0]["message"].startswith(f"{field} is a number too long to read (thousands of digits); ")
    assert expects in errors[0]["message"]
    assert "UTF-8" not in errors[0]["message"]


async def test_a_number_too_long_under_an_undeclared_key_is_not_named(gw: RunningGateway) -> None:
    body = f'{{"purpose": "s17_assessment", {SEARCH}, "secret-key": {{"x": {LONG}}}}}'
    errors = await _refused(gw, "/v1/searches", body, "long-unknown")
    assert errors == [
        {
            "field": "body",
            "message": "The body holds a number too long to read (thousands of digits): no field takes one",
        }
    ]


async def test_a_number_too_long_without_a_token_is_still_refused_before_anything_is_asked(
    gw: RunningGateway,
) -> None:
    """Like a body that is not JSON (400) or too large (413), a body that cannot be read unambiguously
    is refused when it is read, before the token is looked at; no field value is echoed either way."""
    resp = await gw.client.post(
        "/v1/searches",
        content=f'{{"purpose": "s17_assessment", {SEARCH}, "given_name": {LONG}}}'.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert resp.status_code == 422 and [e["field"] for e in resp.json()["errors"]] == ["given_name"]


def test_problems_are_found_in_document_order_at_any_depth() -> None:
    deep = "[" * 500 + LONG + "]" * 500
    text = f'{{"a": 1, "a": 2, "b": [{{"c": {LONG}}}, {{"d": 1, "d": 1}}], "e": {deep}}}'
    document, flagged = load_json_body(text)
    assert flagged
    assert [(p["type"], p["loc"]) for p in body_problems(document)] == [
        ("json_duplicate_key", ("body", "a")),
        ("json_number_too_long", ("body", "b", 0, "c")),
        ("json_duplicate_key", ("body", "b", 1, "d")),
        ("json_number_too_long", ("body", "e", *([0] * 500))),
    ]
    assert all(p["input"] is None for p in body_problems(document))  # never the value


def test_an_ordinary_document_is_parsed_as_json_loads_does() -> None:
    text = '{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "n": 12345678901234567890}'
    document, flagged = load_json_body(text)
    assert not flagged and body_problems(document) == []
    assert document == {"a": [1, -2, 3.5, "x", None, True, {"b": {}}], "n": 12345678901234567890}
    assert type(document) is dict
