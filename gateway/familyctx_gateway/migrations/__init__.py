"""Alembic migrations of the gateway's audit database, run programmatically (no alembic.ini).

``familyctx gateway migrate --config X`` calls :func:`upgrade_to_head`; at start-up the gateway calls
:func:`ensure_schema`, which upgrades when ``audit.auto_migrate`` allows it (default: SQLite only) and
otherwise refuses to start unless the schema is at head. Revisions live in ``versions/``; the first,
``0001_initial``, creates every gateway table and carries the records of an audit database made by
the earlier ``create_all`` schema into the Merkle-tree log (docs/audit.md, "Migrations").

For developers, a new revision: ``alembic -x url=sqlite:///tmp.sqlite revision -m "..."`` is not wired;
write the file by hand next to ``0001_initial.py`` (``down_revision`` = the previous head) and run
``tests/integration/test_gateway_audit_migrations.py``, which compares the migrated schema with
:data:`familyctx_gateway.audit_schema.metadata`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import sqlalchemy as sa
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from familyctx.auditlog import READ_ONLY

__all__ = [
    "ADVISORY_LOCK_KEY",
    "VERSION_TABLE",
    "SchemaNotCurrent",
    "alembic_config",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "upgrade_to_head",
]

log = logging.getLogger("familyctx_gateway.migrations")

#: The table Alembic keeps the schema version in (named so it cannot meet another tool's).
VERSION_TABLE = "audit_alembic_version"

#: PostgreSQL advisory lock (``pg_advisory_xact_lock``) held while migrating: "FCTXAUD1" as an int64.
ADVISORY_LOCK_KEY = int.from_bytes(b"FCTXAUD1", "big") - 2**63

_HERE = Path(__file__).resolve().parent


class SchemaNotCurrent(Exception):
    """The audit database's schema is not at the version this gateway needs (``current``: the revision
    found, None for an empty or pre-migration database; ``head``: the one needed)."""

    def __init__(self, current: str | None, head: str) -> None:
        self.current, self.head = current, head
        found = f"at revision {current}" if current else "not migrated (empty or made by an earlier release)"
        super().__init__(
            f"the audit database schema is {found}; this gateway needs {head}: run "
            "`familyctx gateway migrate --config <file>` (or set audit.auto_migrate: true)"
        )


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An Alembic :class:`Config` for the gateway's migrations; ``connection`` is the one they run on."""
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision id (the schema this code needs)."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None  # there is always at least 0001_initial
    return head


def current_revision(engine: sa.Engine) -> str | None:
    """The revision the database at ``engine`` is at, or None (empty, or made before migrations).

    Raises ``SQLAlchemyError`` / ``OSError`` when the database cannot be reached."""
    with engine.connect().execution_options(**READ_ONLY) as conn:  # no write lock on SQLite
        return MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE}).get_current_revision()


def upgrade_to_head(engine: sa.Engine) -> tuple[str | None, str]:
    """Upgrade the database at ``engine`` to head in one transaction; returns (from, to) revisions.

    Safe to run from several processes at once (advisory lock on PostgreSQL, ``BEGIN IMMEDIATE`` on
    SQLite through the audit engine). Raises ``SQLAlchemyError`` when a statement fails (nothing is
    changed then: the transaction is rolled back)."""
    from alembic import command

    with engine.connect() as conn:
        config = alembic_config(conn)
        command.upgrade(config, "head")
        conn.commit()
    before = config.attributes.get("revision_before")
    after = head_revision()
    if before != after:
        log.info("audit schema upgraded from=%s to=%s", before or "none", after)
    return before, after


def ensure_schema(engine: sa.Engine, *, auto_migrate: bool) -> None:
    """At start-up: upgrade (``auto_migrate``) or check that the schema is at head.

    Raises :class:`SchemaNotCurrent` when it is not and may not be upgraded here, ``SQLAlchemyError``
    or ``OSError`` when the database cannot be reached."""
    head = head_revision()
    if auto_migrate:
        upgrade_to_head(engine)
        return
    current = current_revision(engine)
    if current != head:
        raise SchemaNotCurrent(current, head)
