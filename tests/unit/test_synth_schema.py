"""The warehouse metadata follows the SSD DDL reference of each CMS flavour, read here independently."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import sqlalchemy as sa

from familyctx.warehouse import CMS_FLAVOURS, COUNCIL_TABLES, SSD_TABLES, build_metadata

SSD_DIR = Path(__file__).resolve().parents[2] / "src" / "familyctx" / "warehouse" / "ssd"


def reference_columns(cms: str) -> dict[str, list[tuple[str, str]]]:
    """{table: [(field, full_type)]} from the CSV: first definition of a field by ordinal_position."""
    with (SSD_DIR / f"ssd_ddl_reference_{cms}.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["table_name"] in SSD_TABLES]
    rows.sort(key=lambda r: int(r["ordinal_position"]))
    out: dict[str, list[tuple[str, str]]] = {}
    for r in rows:
        cols = out.setdefault(r["table_name"], [])
        if r["field_name"] not in [c for c, _ in cols]:
            cols.append((r["field_name"], r["full_type"]))
    return out


def expected_type(full_type: str) -> type:
    t = full_type.lower()
    if "char(max)" in t or t == "text":
        return sa.Text
    if "char" in t:
        return sa.String
    if t.startswith(("datetime", "timestamp")):
        return sa.DateTime
    if t.startswith("int"):
        return sa.Integer
    return sa.Float


@pytest.mark.parametrize("cms", CMS_FLAVOURS)
def test_ssd_tables_match_the_reference_exactly(cms: str) -> None:
    md = build_metadata(cms)
    ref = reference_columns(cms)
    assert set(ref) <= set(SSD_TABLES)
    for table, cols in ref.items():
        got = md.tables[table]
        assert [c.name for c in got.columns] == [name for name, _ in cols], table
        for (name, full_type), column in zip(cols, got.columns, strict=True):
            assert type(column.type) is expected_type(full_type), (table, name, full_type)
            if type(column.type) is sa.String:
                assert column.type.length == int(full_type.split("(")[1].rstrip(")")), (table, name)
    ssd_in_md = {name for name in md.tables if name.startswith("ssd_")}
    assert ssd_in_md == set(ref)


def test_flavour_differences_that_the_adapter_relies_on() -> None:
    mosaic, systemc, eclipse = (build_metadata(c) for c in ("mosaic", "systemc", "eclipse"))
    assert "ssd_family" not in mosaic.tables
    assert "ssd_family" in systemc.tables and "ssd_family" in eclipse.tables
    assert "prof_professional_name" not in mosaic.tables["ssd_professionals"].c
    assert "invo_person_id" not in mosaic.tables["ssd_involvements"].c
    assert "invo_person_id" in systemc.tables["ssd_involvements"].c
    assert isinstance(mosaic.tables["ssd_cin_episodes"].c.cine_referral_id.type, sa.Integer)


@pytest.mark.parametrize("cms", CMS_FLAVOURS)
def test_council_tables_and_primary_keys_only(cms: str) -> None:
    md = build_metadata(cms)
    for name in COUNCIL_TABLES:
        assert name in md.tables
    assert [c.name for c in md.tables["staff_directory"].columns] == [
        "staff_id",
        "display_name",
        "job_title",
        "team_name",
        "phone",
        "email",
    ]
    for table in md.tables.values():
        assert len(table.primary_key.columns) == 1, table.name
        assert not table.indexes, table.name  # the adapter's `prepare` creates search indexes


def test_unknown_flavour_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown CMS flavour"):
        build_metadata("azeus")
