"""Alembic environment of the gateway's audit database (run by :mod:`familyctx_gateway.migrations`).

Online only (a live connection): the caller passes one in ``config.attributes["connection"]``, or the
URL in ``sqlalchemy.url``. On PostgreSQL a transaction-level advisory lock is taken first, so several
gateway processes starting at once upgrade one after the other (the second finds the schema at head);
on SQLite the engine's ``BEGIN IMMEDIATE`` does the same. All revisions run in one transaction.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from familyctx_gateway.audit_schema import metadata
from familyctx_gateway.migrations import ADVISORY_LOCK_KEY, VERSION_TABLE

_version_table = sa.Table(
    VERSION_TABLE,
    sa.MetaData(),
    sa.Column("version_num", sa.String(100), primary_key=True),
)


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY})
        # Alembic's own version table holds 32 characters; ours holds descriptive revision ids.
        _version_table.create(connection, checkfirst=True)
        # Read under the lock: what this run upgrades from (another process may have just upgraded).
        context.config.attributes["revision_before"] = context.get_context().get_current_revision()
        context.run_migrations()


def _online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with engine.connect() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise SystemExit("the gateway's audit migrations run online only: familyctx gateway migrate --config X")
_online()
