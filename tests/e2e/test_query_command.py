"""``familyctx token`` and ``familyctx query`` against the live federation."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any

from familyctx.demo import Federation
from familyctx.demo.supervisor import familyctx_argv


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(familyctx_argv(*args), capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": "220", "NO_COLOR": "1"})


def _where(federation: Federation) -> list[str]:
    return ["--issuer", federation.issuer, "--gateway", federation.gateway_url]


def test_query_search_and_family_context_print_readably(
    federation: Federation, scenario: dict[str, Any]
) -> None:
    child = scenario["child"]
    search = _cli("query", "search", "--user", "sw.stockport", "--family-name", child["family_name"],
                  "--given-name", child["given_name"], "--dob", child["date_of_birth"],
                  "--purpose", "s47_enquiry", "--case-ref", "CLI-1", *_where(federation))
    assert search.returncode == 0, search.stderr
    assert child["local_person_id"] in search.stdout and "Search results" in search.stdout

    context = _cli("query", "family-context", "--user", "tm.leeds", "--council", child["gss_code"],
                   "--person-id", child["local_person_id"], "--purpose", "s17_assessment",
                   "--case-ref", "CLI-2", *_where(federation))
    assert context.returncode == 0, context.stderr
    for heading in ("People", "Relationships", "Involvements", "What each source said", "Sources"):
        assert heading in context.stdout
    assert f"{child['given_name']} {child['family_name']} (subject)" in context.stdout


def test_query_json_is_the_raw_answer(federation: Federation, scenario: dict[str, Any]) -> None:
    child = scenario["child"]
    result = _cli("query", "family-context", "--user", "sw.stockport", "--council", child["gss_code"],
                  "--person-id", child["local_person_id"], "--purpose", "s47_enquiry",
                  "--case-ref", "CLI-3", "--json", *_where(federation))
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["case_reference"] == "CLI-3" and answer["people"]


SMITH = ["--user", "sw.stockport", "--family-name", "Smith", "--case-ref", "C"]


def test_query_explains_401_422_and_unreachable(federation: Federation) -> None:
    refused = _cli("query", "search", *SMITH, "--purpose", "s47_enquiry", "--token", "garbage",
                   *_where(federation))
    assert refused.returncode == 2 and "401" in refused.stderr and "familyctx token" in refused.stderr

    invalid = _cli("query", "search", *SMITH, "--purpose", "nosy", *_where(federation))
    assert invalid.returncode == 2 and "422" in invalid.stderr and "purpose" in invalid.stderr

    token = _cli("token", "--user", "sw.stockport", "--issuer", federation.issuer).stdout.strip()
    down = _cli("query", "search", *SMITH, "--purpose", "s47_enquiry", "--token", token,
                "--gateway", "http://127.0.0.1:9")
    assert down.returncode == 1 and "not reachable" in down.stderr
