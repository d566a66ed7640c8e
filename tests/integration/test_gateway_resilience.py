"""A council that is down or past its deadline ends in an explicit state; the others still answer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from familyctx_gateway.testing.gateway import RunningGateway, running_gateway
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer
from familyctx_gateway.testing.scenario import LEEDS, MANCHESTER, NHS, STOCKPORT

PURPOSE = {"purpose": "s17_assessment", "case_reference": "CASE-7"}
BOLTON_SLEEPS, BURY_DOWN = "E08000001", "E08000002"
SLOW_DEADLINE_MS = 400


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    # Module-wide: these tests never change the issuer's keys (test_gateway_auth.py does, per test).
    with running_issuer() as running:
        yield running


@pytest.fixture
async def gw(issuer: TestIssuer, tmp_path: Path) -> AsyncIterator[RunningGateway]:
    async with running_gateway(
        issuer,
        f"sqlite:///{tmp_path / 'audit.sqlite'}",
        sleeping=True,
        unreachable=True,
        slow_deadline_ms=SLOW_DEADLINE_MS,
    ) as running:
        yield running


async def test_search_reports_down_and_timed_out_councils_and_answers_from_the_rest(
    gw: RunningGateway,
) -> None:
    resp = await gw.client.post(
        "/v1/searches", json={**PURPOSE, "nhs_number": NHS["claire"]}, headers=gw.auth()
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    sources = {s["gss_code"]: s for s in body["sources"]}
    assert sources[BURY_DOWN]["state"] == "unavailable"
    assert sources[BOLTON_SLEEPS]["state"] == "timed_out"
    assert f"{SLOW_DEADLINE_MS} ms" in sources[BOLTON_SLEEPS]["detail"]
    # The sleeping council sleeps 60 s; the gateway gave up at its deadline, far sooner.
    assert sources[BOLTON_SLEEPS]["latency_ms"] < 30_000
    assert {code: sources[code]["state"] for code in (STOCKPORT, LEEDS, MANCHESTER)} == dict.fromkeys(
        (STOCKPORT, LEEDS, MANCHESTER), "ok"
    )
    [mother] = body["candidates"]
    assert {r["local_person_id"] for r in mother["records"]} == {"S-1003", "L-77"}


async def test_family_context_with_a_council_down_and_one_timed_out(gw: RunningGateway) -> None:
    resp = await gw.client.post(
        "/v1/family-context",
        json={**PURPOSE, "subject": {"gss_code": STOCKPORT, "local_person_id": "S-1001"}},
        headers=gw.auth(),
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    sources = {s["gss_code"]: s["state"] for s in body["sources"]}
    assert sources == {
        STOCKPORT: "ok",
        LEEDS: "ok",
        MANCHESTER: "ok",
        BOLTON_SLEEPS: "timed_out",
        BURY_DOWN: "unavailable",
    }
    mother = next(p for p in body["people"] if p["given_name"] == "Claire")
    states = {s["gss_code"]: s["state"] for s in mother["council_states"]}
    assert states[LEEDS] == "records_found"
    assert states[BOLTON_SLEEPS] == "timed_out"
    assert states[BURY_DOWN] == "unavailable"
    assert any(i["gss_code"] == LEEDS for i in body["involvements"])


async def test_subject_council_down_gives_explicit_empty_answer(issuer: TestIssuer, tmp_path: Path) -> None:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'a.sqlite'}", unreachable=True) as gw:
        resp = await gw.client.post(
            "/v1/family-context",
            json={**PURPOSE, "subject": {"gss_code": BURY_DOWN, "local_person_id": "B-1"}},
            headers=gw.auth(),
        )
    assert resp.status_code == 200
    body = resp.json()
    assert body["people"] == [] and body["subject_person_id"] is None
    assert {s["gss_code"]: s["state"] for s in body["sources"]}[BURY_DOWN] == "unavailable"


async def test_readiness_does_not_depend_on_councils(gw: RunningGateway) -> None:
    resp = await gw.client.get("/readyz")
    assert resp.status_code == 200
    sources = await gw.client.get("/v1/sources", headers=gw.auth())
    states = {s["gss_code"]: s["state"] for s in sources.json()["sources"]}
    assert states[BURY_DOWN] == "unavailable" and states[BOLTON_SLEEPS] == "timed_out"


async def test_a_council_answering_an_error_is_reported_without_its_message(
    issuer: TestIssuer, tmp_path: Path
) -> None:
    async with running_gateway(issuer, f"sqlite:///{tmp_path / 'a.sqlite'}", broken=True) as gw:
        resp = await gw.client.post(
            "/v1/searches", json={**PURPOSE, "nhs_number": NHS["zoe"]}, headers=gw.auth()
        )
    assert resp.status_code == 200
    wigan = next(s for s in resp.json()["sources"] if s["gss_code"] == "E08000010")
    assert (wigan["state"], wigan["detail"]) == ("error", "adapter answered INTERNAL")
    assert "Zoë O'Neill 9990000018" not in resp.text
    assert [c["records"][0]["local_person_id"] for c in resp.json()["candidates"]] == ["S-1001"]
