"""Table shapes of a council's warehouse: the SSD tables per CMS flavour, plus the council's own tables.

The SSD tables are built from the Standard Safeguarding Dataset's published DDL reference
(``ssd/ssd_ddl_reference_<cms>.csv``, one row per column, SQL Server types). Rules (interfaces.md):
a field listed twice keeps its first definition by ``ordinal_position``; (n)varchar(n)/(n)char(n)
become ``String(n)`` (MAX or text become ``Text``), datetime/timestamp ``DateTime``, int/integer
``Integer``, float/decimal/double ``Float``. Only primary keys are declared: the adapter's ``prepare``
creates its own search indexes.
"""

from __future__ import annotations

import csv
import functools
import io
import re
from importlib import resources
from typing import Any

import sqlalchemy as sa

__all__ = [
    "CMS_FLAVOURS",
    "COUNCIL_TABLES",
    "SSD_PRIMARY_KEYS",
    "SSD_TABLES",
    "build_metadata",
    "ssd_columns",
    "ssd_tables_for",
]

CMS_FLAVOURS: tuple[str, ...] = ("systemc", "mosaic", "eclipse")

#: SSD tables a family context uses, with the column that identifies a row.
SSD_PRIMARY_KEYS: dict[str, str] = {
    "ssd_person": "pers_person_id",
    "ssd_family": "fami_table_id",
    "ssd_mother": "moth_table_id",
    "ssd_address": "addr_table_id",
    "ssd_linked_identifiers": "link_table_id",
    "ssd_involvements": "invo_involvements_id",
    "ssd_professionals": "prof_professional_id",
    "ssd_department": "dept_team_id",
    "ssd_cin_episodes": "cine_referral_id",
    "ssd_cp_plans": "cppl_cp_plan_id",
    "ssd_cla_episodes": "clae_cla_episode_id",
    "ssd_early_help_episodes": "earl_episode_id",
    "ssd_contacts": "cont_contact_id",
}
SSD_TABLES: tuple[str, ...] = tuple(SSD_PRIMARY_KEYS)

#: Tables each council keeps in its own shape (same in every demo council in this slice).
COUNCIL_TABLES: tuple[str, ...] = (
    "staff_directory",
    "person_relationships",
    "asc_clients",
    "asc_involvements",
    "housing_tenancies",
    "warehouse_refresh",
)

_SIZED = re.compile(r"^n?(?:var)?char\((\d+|max)\)$", re.IGNORECASE)


def _column_type(full_type: str) -> sa.types.TypeEngine[Any]:
    t = full_type.strip().lower()
    m = _SIZED.match(t)
    if m:
        size = m.group(1)
        return sa.Text() if size == "max" else sa.String(int(size))
    if t in ("text", "ntext"):
        return sa.Text()
    if t.startswith(("datetime", "timestamp", "date")):
        return sa.DateTime()
    if t in ("int", "integer", "bigint", "smallint"):
        return sa.Integer()
    if t.startswith(("float", "decimal", "double", "numeric", "real")):
        return sa.Float()
    raise ValueError(f"unsupported SSD column type {full_type!r}")


@functools.cache
def ssd_columns(cms: str) -> dict[str, tuple[tuple[str, str], ...]]:
    """Columns of each SSD table for one CMS flavour: ``{table: ((field_name, full_type), ...)}``.

    Ordered by ``ordinal_position``; a field listed more than once keeps its first definition. Only the
    tables in :data:`SSD_TABLES` that the flavour defines are returned (mosaic has no ``ssd_family``).
    Raises ``ValueError`` for an unknown flavour.
    """
    if cms not in CMS_FLAVOURS:
        raise ValueError(f"unknown CMS flavour {cms!r}; expected one of {', '.join(CMS_FLAVOURS)}")
    text = (
        resources.files("familyctx.warehouse")
        .joinpath("ssd", f"ssd_ddl_reference_{cms}.csv")
        .read_text(encoding="utf-8")
    )
    rows = [r for r in csv.DictReader(io.StringIO(text)) if r["table_name"] in SSD_PRIMARY_KEYS]
    rows.sort(key=lambda r: int(r["ordinal_position"]))  # stable: file order breaks ties
    tables: dict[str, dict[str, str]] = {}
    for r in rows:
        tables.setdefault(r["table_name"], {}).setdefault(r["field_name"], r["full_type"])
    return {name: tuple(tables[name].items()) for name in SSD_TABLES if name in tables}


def ssd_tables_for(cms: str) -> tuple[str, ...]:
    """Names of the SSD tables present in one CMS flavour, in :data:`SSD_TABLES` order."""
    return tuple(ssd_columns(cms))


def _council_tables(md: sa.MetaData) -> None:
    s = sa.String
    sa.Table(
        "staff_directory",
        md,
        sa.Column("staff_id", s(48), primary_key=True),
        sa.Column("display_name", s(200)),
        sa.Column("job_title", s(200)),
        sa.Column("team_name", s(200)),
        sa.Column("phone", s(40)),
        sa.Column("email", s(200)),
    )
    sa.Table(
        "person_relationships",
        md,
        sa.Column("relationship_id", s(48), primary_key=True),
        sa.Column("person_id", s(48)),
        sa.Column("related_person_id", s(48)),
        sa.Column("relationship_code", s(20)),
        sa.Column("relationship_desc", s(100)),
        sa.Column("start_date", sa.DateTime()),
        sa.Column("end_date", sa.DateTime()),
    )
    sa.Table(
        "asc_clients",
        md,
        sa.Column("client_id", s(20), primary_key=True),
        sa.Column("person_id", s(48)),
        sa.Column("primary_support_reason", s(100)),
    )
    sa.Table(
        "asc_involvements",
        md,
        sa.Column("involvement_id", s(20), primary_key=True),
        sa.Column("client_id", s(20)),
        sa.Column("service_type", s(100)),
        sa.Column("status", s(10)),
        sa.Column("start_date_text", s(20)),
        sa.Column("end_date_text", s(20)),
        sa.Column("worker_staff_id", s(48)),
    )
    sa.Table(
        "housing_tenancies",
        md,
        sa.Column("tenancy_ref", s(20), primary_key=True),
        sa.Column("person_id", s(48)),
        sa.Column("tenant_role", s(30)),
        sa.Column("tenancy_type", s(60)),
        sa.Column("start_date_text", s(20)),
        sa.Column("end_date_text", s(20)),
        sa.Column("address_line1", s(200)),
        sa.Column("town", s(100)),
        sa.Column("postcode", s(10)),
        sa.Column("arrears_pence", sa.Integer()),
        sa.Column("nosp_served", s(1)),
        sa.Column("eviction_stage", s(60), nullable=True),
        sa.Column("asb_cases", sa.Integer()),
        sa.Column("officer_staff_id", s(48)),
    )
    sa.Table(
        "warehouse_refresh",
        md,
        sa.Column("dataset_id", s(40), primary_key=True),
        sa.Column("refreshed_at", sa.DateTime()),
        sa.Column("refresh_interval_seconds", sa.Integer()),
        sa.Column("coverage_from", sa.DateTime()),
        sa.Column("source_system", s(60)),
    )


def build_metadata(cms: str) -> sa.MetaData:
    """A fresh ``MetaData`` holding every warehouse table for one CMS flavour.

    SSD tables follow the flavour's DDL reference exactly (column names, order, types); council-own
    tables (``COUNCIL_TABLES``) follow interfaces.md. Primary keys only, no indexes. Raises
    ``ValueError`` for an unknown flavour.
    """
    md = sa.MetaData()
    for table, columns in ssd_columns(cms).items():
        pk = SSD_PRIMARY_KEYS[table]
        sa.Table(
            table,
            md,
            *(
                sa.Column(name, _column_type(ftype), primary_key=(name == pk), autoincrement=False)
                for name, ftype in columns
            ),
        )
    _council_tables(md)
    return md
