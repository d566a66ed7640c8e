"""One federation of real processes for the whole end-to-end session.

``familyctx synth`` (small data) into a temporary directory, ``adapter prepare``, then the OIDC
provider, three council adapters and the gateway, each its own process on free loopback ports, started
and stopped by the demo's supervisor (:class:`familyctx.demo.Federation`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from e2e_support import DEADLINE_MS, Gateway

from familyctx.demo import Federation, FederationOptions, load_scenario, pick_free_ports
from familyctx.gateway_client import fetch_token


@pytest.fixture(scope="session")
def federation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Federation]:
    data_dir = tmp_path_factory.mktemp("federation")
    options = FederationOptions(people=60, seed=7, deadline_ms=DEADLINE_MS, ready_timeout_seconds=90)
    with Federation(data_dir, pick_free_ports(), options) as running:
        running.build()
        running.start()
        yield running


@pytest.fixture(scope="session")
def scenario(federation: Federation) -> dict[str, Any]:
    """scenarios.json["mother_moved"]: child, mother, mother_previous_record, siblings, grandparent."""
    return load_scenario(federation.layout.scenarios)


@pytest.fixture(scope="session")
def token(federation: Federation) -> str:
    """An access token for sw.stockport (social worker, Stockport) from the real provider."""
    return fetch_token(federation.issuer, "sw.stockport", "demo")


@pytest.fixture(scope="session")
def gateway(federation: Federation, token: str) -> Iterator[Gateway]:
    engine = sa.create_engine(f"sqlite:///{federation.layout.audit_database}")
    with httpx.Client(base_url=federation.gateway_url, timeout=60) as http:
        yield Gateway(http, engine, token)
    engine.dispose()
