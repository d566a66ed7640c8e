"""Alembic environment of the adapter's disclosure log.

Programmatic only (no alembic.ini): :func:`familyctx_adapter.disclosure_schema.upgrade` passes an open
connection in ``config.attributes["connection"]``. The version is kept in ``disclosure_alembic_version``
so that a council may keep the log beside other schemas (the gateway's uses its own table). On SQLite,
batch mode lets later revisions alter tables. Offline mode (``--sql``) renders DDL for a DBA to review.
"""

from __future__ import annotations

from alembic import context

from familyctx_adapter.disclosure_schema import VERSION_TABLE, metadata

config = context.config


def _configure(**options: object) -> None:
    context.configure(target_metadata=metadata, version_table=VERSION_TABLE, **options)  # type: ignore[arg-type]


if context.is_offline_mode():
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes["connection"]
    _configure(connection=connection, render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()
