"""The warehouse as SQLAlchemy Core sees it: engine, mapped tables, dataset freshness.

Tables are lightweight ``sa.table`` clauses built from the flavour mapping, not reflected types: the
adapter reads raw values and normalises them itself (a 'NULL' string in a date column must not fail a
query). Every statement uses bound parameters; only fixed SQL constants are inlined (so that
expression indexes match, see :mod:`.indexes`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import time
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from familyctx_adapter.errors import WarehouseMappingError
from familyctx_adapter.flavour import check_flavour
from familyctx_adapter.mapping import FlavourMapping
from familyctx_adapter.normalise import clean_text, timestamp_of

__all__ = [
    "DatasetFreshness",
    "Warehouse",
    "create_warehouse_engine",
    "nhs_key_expression",
    "surname_key_expression",
]

#: Datasets the adapter knows how to read, with the logical tables each needs.
DATASET_TABLES: Mapping[str, tuple[str, ...]] = {
    "csc": ("cin", "cp", "cla", "involvement", "professional"),
    "early_help": ("early_help",),
    "asc": ("asc_client", "asc_involvement"),
    "housing": ("tenancy",),
}


def create_warehouse_engine(url: str, *, pool_size: int = 8) -> sa.Engine:
    """An engine for the warehouse URL. SQLite connections may cross threads (gRPC worker pool).

    No pre-ping on checkout (it would double the round trips of every lookup): a connection lost
    mid-request fails that request as UNAVAILABLE and SQLAlchemy then replaces the pool's connections.

    A database server is read in autocommit: the adapter only reads (``prepare``'s DDL is idempotent
    statement by statement), and every statement already sees its own snapshot under READ COMMITTED, so
    nothing visible changes; but a lookup is then one round trip instead of three (no BEGIN, and no
    ROLLBACK when the pool takes the connection back). It also keeps psycopg's prepared statements:
    psycopg forgets them on every ROLLBACK, so in a transaction per request no statement was ever
    prepared and every lookup was planned afresh (``prepare_threshold``: prepared from the 5th use of
    the same SQL on a connection).
    """
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = sa.create_engine(
            url, connect_args={"check_same_thread": False}, pool_size=pool_size, hide_parameters=True
        )
        sa.event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return sa.create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_recycle=1800,
        hide_parameters=True,
        isolation_level="AUTOCOMMIT",
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection SQLite tuning for random reads over a large file: a 64 MiB page cache (default 2 MiB)
    and up to 1 GiB memory-mapped I/O. Reads only; no effect on what is stored."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA cache_size = -65536")
    cursor.execute("PRAGMA mmap_size = 1073741824")
    cursor.close()


def nhs_key_expression(column: Any) -> sa.ColumnElement[Any]:
    """replace(replace(col, ' ', ''), '-', ''): the NHS number without spaces or dashes.

    Constants are inlined (not bound) so the statement matches the expression index exactly.
    """
    space: sa.ColumnClause[Any] = sa.literal_column("' '")
    dash: sa.ColumnClause[Any] = sa.literal_column("'-'")
    empty: sa.ColumnClause[Any] = sa.literal_column("''")
    return sa.func.replace(sa.func.replace(column, space, empty), dash, empty)


def surname_key_expression(column: Any) -> sa.ColumnElement[Any]:
    """lower(replace(replace(replace(col, '''', ''), '-', ''), ' ', '')): family name for lookup.

    Folds case (ASCII on SQLite), apostrophes, hyphens and spaces, so "O'NEILL" and "Oneill" meet.
    """
    empty: sa.ColumnClause[Any] = sa.literal_column("''")
    expr: sa.ColumnElement[Any] = sa.func.replace(column, sa.literal_column("''''"), empty)
    expr = sa.func.replace(expr, sa.literal_column("'-'"), empty)
    expr = sa.func.replace(expr, sa.literal_column("' '"), empty)
    return sa.func.lower(expr)


@dataclasses.dataclass(frozen=True, slots=True)
class DatasetFreshness:
    """One warehouse_refresh row: when the dataset was refreshed (UTC), its promise (seconds)."""

    dataset_id: str
    refreshed_at: dt.datetime | None
    refresh_interval_seconds: int
    coverage_from: dt.datetime | None
    source_system: str

    def is_stale(self, now: dt.datetime) -> bool:
        """Stale when never refreshed or older than its promised interval."""
        if self.refreshed_at is None:
            return True
        return (now - self.refreshed_at).total_seconds() > self.refresh_interval_seconds


class Warehouse:
    """Mapped tables over one engine. Build with :meth:`open`; it checks the mapping against the schema."""

    def __init__(self, engine: sa.Engine, mapping: FlavourMapping, present: frozenset[str]) -> None:
        self.engine = engine
        self.mapping = mapping
        self.present = present
        self._tables: dict[str, sa.TableClause] = {}
        for logical in present:
            tmap = mapping.table(logical)
            self._tables[logical] = sa.table(tmap.table, *(sa.column(c) for c in tmap.columns.values()))
        self._freshness: dict[str, DatasetFreshness] = {}
        self._freshness_at = -1.0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, engine: sa.Engine, mapping: FlavourMapping) -> Warehouse:
        """Check every mapped table and column exists; optional tables absent are skipped.

        Raises WarehouseMappingError naming the missing table/column (schema names are not personal data),
        or when the warehouse's distinguishing features say it is another CMS flavour (:mod:`.flavour`).
        """
        inspector = sa.inspect(engine)
        existing = {name.lower(): name for name in inspector.get_table_names()}
        check_flavour(
            mapping,
            {
                lower: frozenset(c["name"].lower() for c in inspector.get_columns(name))
                for lower, name in existing.items()
            },
        )
        present: set[str] = set()
        for logical, tmap in mapping.tables.items():
            if tmap.table.lower() not in existing:
                if tmap.optional:
                    continue
                raise WarehouseMappingError(
                    f"warehouse has no table {tmap.table!r} (the {mapping.cms} mapping reads it as {logical})"
                )
            cols = {c["name"].lower() for c in inspector.get_columns(existing[tmap.table.lower()])}
            missing = [c for c in tmap.columns.values() if c.lower() not in cols]
            if missing:
                raise WarehouseMappingError(
                    f"table {tmap.table!r} lacks column(s) {', '.join(missing)} for the {mapping.cms} mapping"
                )
            present.add(logical)
        return cls(engine, mapping, frozenset(present))

    def has(self, logical: str) -> bool:
        """Whether the logical table is mapped and present in this warehouse."""
        return logical in self._tables

    def t(self, logical: str) -> sa.TableClause:
        """The table clause for a logical table."""
        return self._tables[logical]

    def c(self, logical: str, column: str) -> sa.ColumnClause[Any]:
        """The column clause for a logical table's logical column."""
        physical = self.mapping.table(logical).columns[column]
        return self._tables[logical].c[physical]

    def has_column(self, logical: str, column: str) -> bool:
        """Whether the flavour maps this logical column (mosaic lacks some)."""
        return self.has(logical) and column in self.mapping.table(logical).columns

    def cols(self, logical: str) -> list[sa.ColumnElement[Any]]:
        """All mapped columns of a logical table, labelled by logical name."""
        tmap = self.mapping.table(logical)
        table = self._tables[logical]
        return [table.c[phys].label(name) for name, phys in tmap.columns.items()]

    def table_name(self, logical: str) -> str:
        """Physical name, for provenance."""
        return self.mapping.table(logical).table

    def datasets(self) -> list[str]:
        """Dataset ids this warehouse can answer for (tables present), in contract order."""
        return [d for d, needs in DATASET_TABLES.items() if all(self.has(t) for t in needs)]

    def freshness(self, max_age_seconds: float = 10.0) -> dict[str, DatasetFreshness]:
        """warehouse_refresh rows by dataset id, cached for ``max_age_seconds``."""
        now = time.monotonic()
        with self._lock:
            if now - self._freshness_at <= max_age_seconds:
                return self._freshness
        stmt = sa.select(*self.cols("refresh"))
        result: dict[str, DatasetFreshness] = {}
        with self.engine.connect() as conn:
            for row in conn.execute(stmt).mappings():
                dataset_id = clean_text(row["id"])
                try:
                    interval = int(row["refresh_interval_seconds"] or 0)
                except (TypeError, ValueError):
                    interval = 0
                result[dataset_id] = DatasetFreshness(
                    dataset_id=dataset_id,
                    refreshed_at=timestamp_of(row["refreshed_at"]),
                    refresh_interval_seconds=interval,
                    coverage_from=timestamp_of(row["coverage_from"]),
                    source_system=clean_text(row["source_system"]),
                )
        with self._lock:
            self._freshness, self._freshness_at = result, now
        return result
