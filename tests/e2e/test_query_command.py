"""``familyctx token`` and ``familyctx query`` against the live federation."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from typing import Any

import sqlalchemy as sa
from e2e_support import LEEDS
from test_resilience import restore  # noqa: F401 - fixture: restarts the adapters a test stops

from familyctx.demo import Federation
from familyctx.demo.supervisor import familyctx_argv


def _cli(*args: str, columns: int = 220) -> subprocess.CompletedProcess[str]:
    return subprocess.run(familyctx_argv(*args), capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "COLUMNS": str(columns), "NO_COLOR": "1"})


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
#: SMITH for ``--token``: a token together with ``--user`` is a usage error.
SMITH_BY_TOKEN = SMITH[2:]


def test_query_explains_401_422_and_unreachable(federation: Federation) -> None:
    refused = _cli("query", "search", *SMITH_BY_TOKEN, "--purpose", "s47_enquiry", "--token", "garbage",
                   *_where(federation))
    assert refused.returncode == 2 and "401" in refused.stderr and "familyctx token" in refused.stderr

    invalid = _cli("query", "search", *SMITH, "--purpose", "nosy", *_where(federation))
    assert invalid.returncode == 2 and "422" in invalid.stderr and "purpose" in invalid.stderr

    token = _cli("token", "--user", "sw.stockport", "--issuer", federation.issuer).stdout.strip()
    down = _cli("query", "search", *SMITH_BY_TOKEN, "--purpose", "s47_enquiry", "--token", token,
                "--gateway", "http://127.0.0.1:9")
    assert down.returncode == 1 and "not reachable" in down.stderr


def test_partial_answer_is_flagged_first_and_nothing_is_cut_at_80_columns(
    federation: Federation, scenario: dict[str, Any], restore: list[str]  # noqa: F811
) -> None:
    """Leeds (the mother's council) is down: exit 0, but the banner comes before every table; and at
    80 columns every practitioner's email and phone is printed whole (no "…")."""
    leeds = federation.child("adapter-leeds")
    restore.append(LEEDS)
    os.kill(leeds.pid, signal.SIGKILL)
    leeds.popen.wait(timeout=30)
    child = scenario["child"]
    result = _cli("query", "family-context", "--user", "sw.stockport", "--council", child["gss_code"],
                  "--person-id", child["local_person_id"], "--purpose", "s47_enquiry",
                  "--case-ref", "CLI-PARTIAL", *_where(federation), columns=80)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    banner = "INCOMPLETE: Leeds (E08000035) did not answer"
    assert banner in out and out.index(banner) < out.index("People")
    assert "…" not in out

    raw = _cli("query", "family-context", "--user", "sw.stockport", "--council", child["gss_code"],
               "--person-id", child["local_person_id"], "--purpose", "s47_enquiry",
               "--case-ref", "CLI-PARTIAL", "--json", *_where(federation))
    answer = json.loads(raw.stdout)
    contacts = [i["practitioner"] for i in answer["involvements"] if i.get("practitioner")]
    assert contacts, "the child's Stockport involvements name practitioners"
    for practitioner in contacts:
        for detail in ("email", "phone"):
            if practitioner.get(detail):
                assert practitioner[detail] in out, practitioner[detail]


def test_provenance_names_the_system_the_same_way_for_every_dataset(
    federation: Federation, scenario: dict[str, Any]
) -> None:
    """Every Stockport involvement (CSC and early help alike) names the system as warehouse_refresh does."""
    child = scenario["child"]
    result = _cli("query", "family-context", "--user", "sw.stockport", "--council", child["gss_code"],
                  "--person-id", child["local_person_id"], "--purpose", "s47_enquiry",
                  "--case-ref", "CLI-PROV", "--json", *_where(federation))
    answer = json.loads(result.stdout)
    engine = sa.create_engine(f"sqlite:///{federation.layout.root / 'stockport.sqlite'}")
    with engine.connect() as conn:
        names = dict(conn.execute(sa.text("SELECT dataset_id, source_system FROM warehouse_refresh")).all())
    engine.dispose()
    stockport = [i for i in answer["involvements"] if i["gss_code"] == child["gss_code"]]
    assert stockport
    for involvement in stockport:
        assert involvement["provenance"]["source_system"] == names[involvement["dataset_id"]]
        assert involvement["provenance"]["source_table"].startswith(("ssd_", "asc_", "housing_"))
