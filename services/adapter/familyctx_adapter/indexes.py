"""The adapter's search indexes in the council's warehouse, created by ``familyctx adapter prepare``.

Idempotent (``CREATE INDEX IF NOT EXISTS`` semantics via SQLAlchemy ``checkfirst``); the same DDL works
on SQLite and PostgreSQL. Expression indexes use exactly the expressions the queries use
(:func:`.warehouse.nhs_key_expression`, :func:`.warehouse.surname_key_expression`), so the planner
can use them. Index names start ``ix_fcx_`` so a council can tell them from its own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from familyctx_adapter.warehouse import Warehouse, nhs_key_expression, surname_key_expression

__all__ = ["COMPOSITE_INDEX_PLAN", "INDEX_PLAN", "prepare_indexes"]

Expression = Callable[[Any], Any]

#: (index suffix, logical table, logical column, expression builder or None for the plain column)
INDEX_PLAN: tuple[tuple[str, str, str, Expression | None], ...] = (
    ("person_nhs_key", "person", "nhs_number", nhs_key_expression),
    ("person_dob", "person", "date_of_birth", None),
    ("person_id", "person", "id", None),
    ("address_person", "address", "person_id", None),
    ("involvement_person", "involvement", "person_id", None),
    ("involvement_referral", "involvement", "referral_id", None),
    ("cin_person", "cin", "person_id", None),
    ("cp_person", "cp", "person_id", None),
    ("cla_person", "cla", "person_id", None),
    ("early_help_person", "early_help", "person_id", None),
    ("mother_mother", "mother", "mother_id", None),
    ("mother_child", "mother", "child_id", None),
    ("family_person", "family", "person_id", None),
    ("family_family", "family", "family_id", None),
    ("relationship_person", "relationship", "person_id", None),
    ("relationship_related", "relationship", "related_id", None),
    ("asc_client_person", "asc_client", "person_id", None),
    ("asc_involvement_client", "asc_involvement", "client_id", None),
    ("tenancy_person", "tenancy", "person_id", None),
    ("professional_id", "professional", "id", None),
    ("staff_id", "staff", "id", None),
)

#: (index suffix, logical table, ((logical column, expression builder or None), ...)): multi-column
#: indexes. The family-name key with the date of birth serves both family-name lookups: the name alone
#: (the index's leading column) and the name within a year of birth (near dates of birth: estimated,
#: mistyped), which then reads only that year's rows. It replaces the earlier single-column
#: ``ix_fcx_person_surname_key``; a warehouse prepared before keeps that one, unused but harmless.
COMPOSITE_INDEX_PLAN: tuple[tuple[str, str, tuple[tuple[str, Expression | None], ...]], ...] = (
    ("person_surname_dob", "person", (("family_name", surname_key_expression), ("date_of_birth", None))),
)


def _existing_index_names(conn: sa.Connection) -> set[str]:
    """Index names already in the database (catalog query: the inspector skips expression indexes)."""
    if conn.dialect.name == "sqlite":
        stmt = sa.text("SELECT name FROM sqlite_master WHERE type = 'index'")
    elif conn.dialect.name == "postgresql":
        stmt = sa.text("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()")
    else:  # pragma: no cover - other dialects rely on IF NOT EXISTS alone
        return set()
    return {str(name).lower() for name in conn.execute(stmt).scalars()}


def prepare_indexes(warehouse: Warehouse) -> list[str]:
    """Create the missing search indexes; return the names created (empty when all existed).

    :data:`INDEX_PLAN` then :data:`COMPOSITE_INDEX_PLAN`; an index is skipped when the flavour does not
    map one of its columns. ``CREATE INDEX IF NOT EXISTS``, so concurrent or repeated runs are safe. A
    plain index is skipped when the column is already the table's single-column primary key.
    Statistics are refreshed (ANALYZE) after creating, so the planners choose the indexes.
    """
    engine = warehouse.engine
    created: list[str] = []
    inspector = sa.inspect(engine)
    md = sa.MetaData()
    tables: dict[str, sa.Table] = {}
    plan: list[tuple[str, str, tuple[tuple[str, Expression | None], ...]]] = [
        (suffix, logical, ((column, expression),)) for suffix, logical, column, expression in INDEX_PLAN
    ]
    plan += COMPOSITE_INDEX_PLAN
    with engine.begin() as conn:
        existing = _existing_index_names(conn)
        for suffix, logical, columns in plan:
            if not all(warehouse.has_column(logical, column) for column, _ in columns):
                continue
            tmap = warehouse.mapping.table(logical)
            physical_cols = [tmap.columns[column] for column, _ in columns]
            name = f"ix_fcx_{suffix}"
            if name in existing:
                continue
            if len(columns) == 1 and columns[0][1] is None:
                pk = inspector.get_pk_constraint(tmap.table).get("constrained_columns") or []
                if [c.lower() for c in pk] == [physical_cols[0].lower()]:
                    continue
            if tmap.table not in tables:
                tables[tmap.table] = sa.Table(tmap.table, md, *(sa.Column(c) for c in tmap.columns.values()))
            table = tables[tmap.table]
            parts = [
                expression(table.c[physical]) if expression else table.c[physical]
                for physical, (_, expression) in zip(physical_cols, columns, strict=True)
            ]
            index = sa.Index(name, *parts, _table=table)
            conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))
            created.append(name)
        if created:
            conn.execute(sa.text("ANALYZE"))
    return created
