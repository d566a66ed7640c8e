"""The SQL tables of one Merkle log, named under a prefix (``audit`` at the gateway, ``disclosure`` at an
adapter), so that two logs can share a database and each owner's Alembic migrations create their own.

``<prefix>_entries``
    One row per record. ``seq`` (0-based, gapless) is the leaf's position in the tree. ``payload`` holds
    the canonical bytes that were hashed (an envelope ``{"class", "record", "recorded_at"}``, see
    :mod:`.log`); NULL once redacted under retention, when ``redacted_at`` is set. ``leaf_hash`` =
    ``SHA-256(0x00 || payload)`` is kept for ever, so the tree still verifies after redaction.
``<prefix>_tree_state``
    A single row (``id = 1``) holding the tree size and its frontier (compact range, JSON): appenders
    lock it, which serialises appends across processes.
``<prefix>_tree_nodes``
    The hash of every perfect subtree of two or more leaves, keyed ``(last_seq, level)``: the subtree of
    ``2**level`` leaves ending at leaf ``last_seq``, written when that leaf completes it. The key is the
    order in which appends complete them (inserts go to the end of the index, and ``verify_log`` reads
    them in key order beside the entries). With them any inclusion or consistency proof, or any past
    root, needs O(log n) rows.
``<prefix>_tree_heads``
    Signed tree heads: ``tree_size``, ``root_hash``, ``issued_at``, ``log_id`` and the compact JWS ``jws``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa

__all__ = ["LogTables", "log_tables"]

_PREFIX = re.compile(r"^[a-z][a-z0-9_]{0,30}$")

#: An integer primary key that is SQLite's rowid (no separate index) and BIGINT elsewhere.
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


@dataclass(frozen=True, slots=True)
class LogTables:
    """The four tables of one log (see the module docstring), all on the same ``MetaData``."""

    prefix: str
    entries: sa.Table
    tree_state: sa.Table
    tree_nodes: sa.Table
    tree_heads: sa.Table

    @property
    def all(self) -> list[sa.Table]:
        """The tables in creation order."""
        return [self.entries, self.tree_state, self.tree_nodes, self.tree_heads]

    def create(self, bind: sa.Engine | sa.Connection) -> None:
        """Create the tables that are missing (for tests and the embedded default; production schemas
        come from the owner's Alembic migrations)."""
        metadata = self.entries.metadata
        metadata.create_all(bind, tables=self.all)


def log_tables(metadata: sa.MetaData, prefix: str) -> LogTables:
    """Define the log's tables on ``metadata`` as ``<prefix>_entries``, ``<prefix>_tree_state``,
    ``<prefix>_tree_nodes`` and ``<prefix>_tree_heads``. ``prefix``: lower-case letters, digits and
    underscores, starting with a letter (``ValueError`` otherwise). Defining the same prefix twice on one
    ``MetaData`` raises SQLAlchemy's ``InvalidRequestError``."""
    if not _PREFIX.match(prefix):
        raise ValueError("prefix must be lower-case letters, digits or '_', starting with a letter")
    entries = sa.Table(
        f"{prefix}_entries",
        metadata,
        sa.Column("seq", _SEQ, primary_key=True, autoincrement=False),
        sa.Column("record_class", sa.String(40), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=True),
        sa.Column("leaf_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("redacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index(f"ix_{prefix}_entries_class_time", "record_class", "recorded_at"),
    )
    tree_state = sa.Table(
        f"{prefix}_tree_state",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("frontier", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("id = 1", name=f"ck_{prefix}_tree_state_single_row"),
    )
    tree_nodes = sa.Table(
        f"{prefix}_tree_nodes",
        metadata,
        sa.Column("last_seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("level", sa.SmallInteger, primary_key=True, autoincrement=False),
        sa.Column("hash", sa.LargeBinary(32), nullable=False),
    )
    tree_heads = sa.Table(
        f"{prefix}_tree_heads",
        metadata,
        sa.Column("tree_size", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("root_hash", sa.LargeBinary(32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("log_id", sa.String(100), nullable=False),
        sa.Column("jws", sa.Text, nullable=False),
    )
    return LogTables(prefix, entries, tree_state, tree_nodes, tree_heads)
