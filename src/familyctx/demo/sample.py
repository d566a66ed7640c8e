"""The demo's sample queries: find the planted ``mother_moved`` child, then show their family context."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console

from familyctx.demo.errors import DemoError
from familyctx.gateway_client import GatewayClient, fetch_token

__all__ = ["DEMO_CASE_REFERENCE", "DEMO_PURPOSE", "DEMO_USER", "load_scenario", "run_sample_queries"]

DEMO_USER = "sw.stockport"
DEMO_PURPOSE = "s47_enquiry"
DEMO_CASE_REFERENCE = "DEMO-2026-0001"
DEMO_PASSWORD = "demo"  # noqa: S105 - the development provider's published password


def load_scenario(scenarios_path: Path, name: str = "mother_moved") -> dict[str, Any]:
    """The planted scenario ``name`` from ``scenarios.json`` (written by ``familyctx synth``)."""
    try:
        scenarios = json.loads(scenarios_path.read_text(encoding="utf-8"))
        return dict(scenarios[name])
    except (OSError, ValueError, KeyError) as exc:
        raise DemoError(
            f"{scenarios_path} has no usable {name!r} scenario; delete the data directory and rerun"
        ) from exc


def run_sample_queries(
    *, issuer: str, gateway_url: str, scenarios_path: Path, console: Console, password: str = DEMO_PASSWORD
) -> dict[str, Any]:
    """Get a token for sw.stockport, search for the mother_moved child, print the search and the
    child's family context. Returns the family-context answer (JSON dict).

    Raises :class:`familyctx.gateway_client.ClientError` when the provider or gateway refuses.
    """
    from familyctx_gateway.api.schemas import FamilyContextResponse, SearchResponse

    from familyctx.render import render_family_context, render_search

    child = load_scenario(scenarios_path)["child"]
    token = fetch_token(issuer, DEMO_USER, password)
    console.rule(f"[bold]Search as {DEMO_USER} ({DEMO_PURPOSE}, case {DEMO_CASE_REFERENCE})")
    with GatewayClient(gateway_url, token) as client:
        search = client.search({
            "purpose": DEMO_PURPOSE,
            "case_reference": DEMO_CASE_REFERENCE,
            "given_name": child["given_name"],
            "family_name": child["family_name"],
            "date_of_birth": child["date_of_birth"],
        })
        render_search(SearchResponse.model_validate(search), console)
        console.rule("[bold]Family context of the child whose mother moved to another council")
        context = client.family_context({
            "purpose": DEMO_PURPOSE,
            "case_reference": DEMO_CASE_REFERENCE,
            "subject": {"gss_code": child["gss_code"], "local_person_id": child["local_person_id"]},
        })
    render_family_context(FamilyContextResponse.model_validate(context), console)
    return context
