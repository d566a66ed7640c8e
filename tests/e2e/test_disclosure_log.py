"""Both ends log: a family context through the live gateway leaves a disclosure record in the log of
each council adapter that answered, under the gateway's request id, and every council's log verifies
with ``familyctx audit`` and the council's own public key (no trust in the gateway needed)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import sqlalchemy as sa
from e2e_support import CASE_REFERENCE, LEEDS, PURPOSE, STOCKPORT, Gateway
from familyctx_adapter import disclosure_schema as schema

from familyctx.councils import DEMO_COUNCILS
from familyctx.demo import Federation
from familyctx.trust.pki import DevPki


def _disclosures(federation: Federation, gss: str, request_id: str) -> list[dict[str, Any]]:
    council = next(c for c in DEMO_COUNCILS if c.gss_code == gss)
    engine = sa.create_engine(f"sqlite:///{federation.layout.disclosure_database(council)}")
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.select(schema.disclosure_index).where(schema.disclosure_index.c.request_id == request_id)
            )
            return [dict(r._mapping) for r in rows]
    finally:
        engine.dispose()


def test_each_council_logs_what_it_released_and_its_log_verifies(
    gateway: Gateway, federation: Federation, scenario: dict[str, Any]
) -> None:
    response = gateway.family_context(scenario["child"])
    assert response.status_code == 200, response.text
    request_id = response.headers["x-request-id"]

    child, mother = scenario["child"], scenario["mother"]
    for person in (child, mother):
        rows = _disclosures(federation, person["gss_code"], request_id)
        family = [r for r in rows if r["method"] == "GetFamilyContext"]
        assert family, f"no disclosure record at {person['gss_code']} for {request_id}"
        assert any(person["local_person_id"] in r["local_person_ids"] for r in family)
        for row in rows:
            assert (row["purpose"], row["case_reference"], row["outcome"]) == (
                PURPOSE,
                CASE_REFERENCE,
                "disclosed",
            )
            assert (row["requester_organisation"], row["requester_role"]) == (STOCKPORT, "social_worker")
            assert row["response_sha256"] and len(row["response_sha256"]) == 64
    assert {child["gss_code"], mother["gss_code"]} == {STOCKPORT, LEEDS}

    pki = DevPki(federation.layout.pki_dir, tuple(c.gss_code for c in DEMO_COUNCILS))
    for council in DEMO_COUNCILS:
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from familyctx.cli import app; app()",
                "audit",
                "verify",
                "--database",
                str(federation.layout.disclosure_database(council)),
                "--jwks",
                str(pki.adapter_audit_jwks(council.gss_code)),
                "--log-id",
                f"adapter-{council.gss_code}",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, (council.name, result.stdout, result.stderr)
        assert "adapter disclosure log" in result.stdout
