"""The disclosure log's tables and their Alembic migrations.

Tables (one SQLAlchemy ``MetaData``, :data:`metadata`):

- the Merkle log under the prefix ``disclosure`` (:func:`familyctx.auditlog.tables.log_tables`):
  ``disclosure_entries`` (one canonical record per row, hashed into the tree), ``disclosure_tree_state``,
  ``disclosure_tree_nodes``, ``disclosure_tree_heads`` (signed tree heads);
- ``disclosure_index``: one row per record, for finding records (``seq`` -> ``disclosure_entries``):
  request id, time, method, outcome, requester (sub, organisation, role, client), purpose, case
  reference, break glass, assertion ``jti``, local person ids, datasets released and withheld, counts and
  the response hash. The Merkle entry is the evidence; the index is a convenience written in the same
  transaction (``familyctx audit verify`` checks the entries, not the index). Once the record is
  redacted under retention (:mod:`familyctx_adapter.disclosure_retention`) its personal columns
  (:data:`PERSONAL_INDEX_COLUMNS`) are NULL;
- ``disclosure_people``: ``(seq, local_person_id)`` per person released, so that a council can list
  every disclosure of one of its people (subject access) with an index lookup; deleted under retention.

Schema changes are Alembic revisions in ``familyctx_adapter/migrations/versions``; the version is kept in
``disclosure_alembic_version``. :func:`upgrade` applies them; :func:`schema_status` says where a database
stands. Start-up applies them for SQLite (``disclosure_log.auto_migrate``) and otherwise refuses to start
on an old schema: ``familyctx adapter migrate --config ...`` upgrades.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from familyctx.auditlog.tables import log_tables

__all__ = [
    "LOG_PREFIX",
    "PERSONAL_INDEX_COLUMNS",
    "VERSION_TABLE",
    "SchemaStatus",
    "disclosure_index",
    "disclosure_people",
    "log",
    "metadata",
    "schema_status",
    "upgrade",
]

LOG_PREFIX = "disclosure"
VERSION_TABLE = "disclosure_alembic_version"
_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: PostgreSQL advisory lock key held while migrating (an arbitrary constant: "fcxdisc" in ASCII).
_MIGRATION_LOCK = 0x66637864697363

#: ``disclosure_index`` columns that identify a person (the worker, the case, the people released): set
#: NULL when the record is redacted under retention (revision ``disclosure_0002`` made them nullable).
PERSONAL_INDEX_COLUMNS = ("requester_sub", "client", "case_reference", "assertion_jti", "local_person_ids")

metadata = sa.MetaData()
log = log_tables(metadata, LOG_PREFIX)

disclosure_index = sa.Table(
    "disclosure_index",
    metadata,
    sa.Column(
        "seq",
        _SEQ,
        sa.ForeignKey(f"{LOG_PREFIX}_entries.seq", name="fk_disclosure_index_seq"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    sa.Column("method", sa.String(40), nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),
    sa.Column("requester_sub", sa.String(255), nullable=True),  # NULL once redacted
    sa.Column("requester_organisation", sa.String(16), nullable=False),
    sa.Column("requester_role", sa.String(40), nullable=False),
    sa.Column("client", sa.String(255), nullable=True),  # NULL once redacted
    sa.Column("purpose", sa.String(40), nullable=False),
    sa.Column("case_reference", sa.String(255), nullable=True),  # NULL once redacted
    sa.Column("break_glass", sa.Boolean, nullable=False),
    sa.Column("assertion_jti", sa.String(128), nullable=True),  # NULL once redacted
    sa.Column("local_person_ids", sa.JSON, nullable=True),  # NULL once redacted
    sa.Column("datasets_released", sa.JSON, nullable=False),
    sa.Column("datasets_withheld", sa.JSON, nullable=False),
    sa.Column("people", sa.Integer, nullable=False),
    sa.Column("involvements", sa.Integer, nullable=False),
    sa.Column("response_sha256", sa.String(64), nullable=True),
    sa.Index("ix_disclosure_index_request_id", "request_id"),
    sa.Index("ix_disclosure_index_occurred_at", "occurred_at"),
    sa.Index("ix_disclosure_index_requester", "requester_sub", "occurred_at"),
    sa.Index("ix_disclosure_index_case_reference", "case_reference"),
)

disclosure_people = sa.Table(
    "disclosure_people",
    metadata,
    sa.Column(
        "seq",
        _SEQ,
        sa.ForeignKey(f"{LOG_PREFIX}_entries.seq", name="fk_disclosure_people_seq"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("local_person_id", sa.String(128), primary_key=True),
    sa.Index("ix_disclosure_people_local_person_id", "local_person_id", "seq"),
)


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a disclosure log database stands: its ``current`` Alembic revision (None: no schema yet)
    and the ``head`` this code needs. ``at_head`` when they agree."""

    current: str | None
    head: str

    @property
    def at_head(self) -> bool:
        """True when the database has every migration this code knows."""
        return self.current == self.head


def _config(connection: sa.Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision of the migrations shipped with this code."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package ships at least one revision
        raise RuntimeError("no disclosure log migrations found")
    return head


def schema_status(engine: sa.Engine) -> SchemaStatus:
    """The revision of the database behind ``engine`` and the head. Raises SQLAlchemy errors when the
    database cannot be reached."""
    with engine.connect() as conn:
        current = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()
    return SchemaStatus(current=current, head=head_revision())


def upgrade(engine: sa.Engine, revision: str = "head") -> SchemaStatus:
    """Apply the migrations up to ``revision`` (default: head) on ``engine``, in one transaction where
    the database supports transactional DDL (PostgreSQL, SQLite). Idempotent, and safe when several
    replicas start at once: on PostgreSQL the transaction first takes an advisory lock (so a second
    upgrader waits, then finds the schema at head); on SQLite it is ``BEGIN IMMEDIATE``. Returns the new
    status. Raises SQLAlchemy errors when the database cannot be reached or refuses the DDL."""
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        command.upgrade(_config(conn), revision)
        conn.commit()
    return schema_status(engine)


def downgrade(engine: sa.Engine, revision: str) -> SchemaStatus:
    """Undo migrations down to ``revision`` (``base``: drop every disclosure log table). For tests and
    for an operator rolling back a release; a downgrade to base deletes the log."""
    with engine.connect() as conn:
        command.downgrade(_config(conn), revision)
        conn.commit()
    return schema_status(engine)
