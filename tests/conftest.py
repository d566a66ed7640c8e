"""Fixtures shared by every level of the suite."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from familyctx.trust.pki import DevPki

#: Server used by PostgreSQL tests. CI and developer machines run one on loopback with trust auth.
POSTGRES_ADMIN_URL = os.environ.get(
    "FAMILYCTX_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def _admin_engine() -> sa.Engine:
    return sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test; dropped afterwards.

    Fails (never skips) when the server is not reachable: a PostgreSQL test must not pass by skipping.
    """
    name = f"fctest_{uuid.uuid4().hex[:12]}"
    admin = _admin_engine()
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory: pytest.TempPathFactory) -> DevPki:
    """A development PKI for this test session (CA, gateway client certificate and assertion key, an
    adapter certificate per demo council); helpers in tests/trust_support.py use it."""
    from trust_support import make_dev_pki

    return make_dev_pki(tmp_path_factory.mktemp("dev-pki") / "pki")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test under tests/e2e ``e2e``. ``make test`` runs the rest on two xdist workers, then
    the ``e2e`` tests in one process, so that one federation of real processes serves them all."""
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)
