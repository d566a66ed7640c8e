"""Fixtures shared by the gateway's integration tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from familyctx_gateway.testing.issuer import TestIssuer, running_issuer


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    """A real JWKS-publishing token issuer on 127.0.0.1, one per test module."""
    with running_issuer() as running:
        yield running


@pytest.fixture(params=["sqlite", "postgresql"])
def audit_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The gateway's audit database, once on a SQLite file and once on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.sqlite'}"
    return str(request.getfixturevalue("postgres_url"))
