"""The SQLAlchemy implementation of the source port, for SQLite and PostgreSQL warehouses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from familycontext.v1 import adapter_pb2, types_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from familyctx.identifiers import parse_date
from familyctx_adapter.errors import PeopleNotFound, SourceUnavailable
from familyctx_adapter.family import RelationshipReader, best_edges
from familyctx_adapter.involvements import InvolvementReader
from familyctx_adapter.mapping import mapping_for
from familyctx_adapter.people import PersonReader
from familyctx_adapter.queries import PersonSearch
from familyctx_adapter.settings import AdapterSettings
from familyctx_adapter.source import WarehouseSource
from familyctx_adapter.warehouse import DatasetFreshness, Warehouse, create_warehouse_engine

__all__ = ["CONTRACT_VERSION", "DATASET_INFO", "SqlWarehouseSource"]

CONTRACT_VERSION = "1.0.0"
T = types_pb2

#: dataset id -> (name, category, cohort min age, cohort max age; 0 = no bound), inclusive, in years.
DATASET_INFO: Mapping[str, tuple[str, int, int, int]] = {
    "csc": ("Children's social care", T.DATASET_CATEGORY_CHILDRENS_SOCIAL_CARE, 0, 24),
    "early_help": ("Early help", T.DATASET_CATEGORY_EARLY_HELP, 0, 24),
    "asc": ("Adult social care", T.DATASET_CATEGORY_ADULT_SOCIAL_CARE, 18, 0),
    "housing": ("Housing", T.DATASET_CATEGORY_HOUSING, 0, 0),
}
#: Maximum relatives added to a family context (guards against mis-keyed families).
MAX_RELATIVES = 200


def _age(dob: dt.date, today: dt.date) -> int:
    return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


def _timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(value)
    return ts


class SqlWarehouseSource(WarehouseSource):
    """Reads one council's warehouse through SQLAlchemy Core. Build with :meth:`from_settings`.

    Thread-safe: each call takes its own pooled connection.
    """

    def __init__(self, warehouse: Warehouse, settings: AdapterSettings) -> None:
        self.w = warehouse
        self.settings = settings
        self.people = PersonReader(warehouse, gss_code=settings.council.gss_code)
        self.relationships = RelationshipReader(warehouse)
        self.involvements = InvolvementReader(warehouse)

    @classmethod
    def from_settings(cls, settings: AdapterSettings, engine: sa.Engine | None = None) -> SqlWarehouseSource:
        """Connect, check the flavour mapping against the schema. Raises WarehouseMappingError or
        SourceUnavailable (warehouse not reachable)."""
        url = sa.engine.make_url(settings.database_url)
        if (
            engine is None
            and url.get_backend_name() == "sqlite"
            and url.database not in (None, "", ":memory:")
        ):
            # SQLite would silently create an empty file; a missing warehouse is an error, not an empty one.
            if not Path(url.database).is_file():
                raise SourceUnavailable(f"warehouse file {url.database} does not exist")
        engine = engine or create_warehouse_engine(settings.database_url, pool_size=max(settings.threads, 1))
        try:
            warehouse = Warehouse.open(engine, mapping_for(settings.cms, settings.table_names))
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(f"warehouse not reachable ({type(exc.orig).__name__})") from exc
        return cls(warehouse, settings)

    def close(self) -> None:
        self.w.engine.dispose()

    def check(self) -> bool:
        try:
            with self.w.engine.connect() as conn:
                conn.execute(sa.select(sa.func.count()).select_from(self.w.t("refresh")))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    # --- provenance ----------------------------------------------------------------------------------
    def _provenance(
        self, logical: str, record_id: str, fresh: Mapping[str, DatasetFreshness]
    ) -> types_pb2.Provenance:
        dataset = self.w.mapping.table(logical).dataset_id
        info = fresh.get(dataset)
        prov = T.Provenance(
            council_gss_code=self.settings.council.gss_code,
            # The system's display name from the dataset's warehouse_refresh row, for every dataset
            # alike ("Liquidlogic LCS", "Mosaic Adults", "Northgate Housing"); the cms code only when
            # the warehouse does not name it. The table goes in source_table.
            source_system=info.source_system if info and info.source_system else self.settings.cms,
            source_table=self.w.table_name(logical),
            record_id=record_id,
        )
        ts = _timestamp(info.refreshed_at if info else None)
        if ts is not None:
            prov.extracted_at.CopyFrom(ts)
        return prov

    def _connect(self) -> sa.Connection:
        try:
            return self.w.engine.connect()
        except sa.exc.OperationalError as exc:
            raise SourceUnavailable(f"warehouse not reachable ({type(exc.orig).__name__})") from exc

    # --- Describe ------------------------------------------------------------------------------------
    def describe(self) -> adapter_pb2.DescribeResponse:
        fresh = self.w.freshness()
        council = self.settings.council
        resp = adapter_pb2.DescribeResponse(
            council=T.Council(
                gss_code=council.gss_code, name=council.name, dfe_la_number=council.dfe_la_number
            ),
            contract_version=CONTRACT_VERSION,
            source_system=self.settings.cms,
        )
        for dataset_id in self._offered(fresh):
            name, category, lo, hi = DATASET_INFO[dataset_id]
            info = fresh[dataset_id]
            ds = T.Dataset(
                dataset_id=dataset_id,
                name=name,
                category=category,  # type: ignore[arg-type]
                refresh_interval_seconds=info.refresh_interval_seconds,
                coverage_area=self.settings.area_name,
                cohort=T.Cohort(min_age_years=lo, max_age_years=hi),
            )
            ts = _timestamp(info.refreshed_at)
            if ts is not None:
                ds.refreshed_at.CopyFrom(ts)
            if info.coverage_from is not None:
                c = info.coverage_from
                ds.coverage_from.CopyFrom(T.Date(year=c.year, month=c.month, day=c.day))
            resp.datasets.append(ds)
        return resp

    def _offered(self, fresh: Mapping[str, DatasetFreshness]) -> list[str]:
        """Datasets with both a warehouse_refresh row and the tables to read them."""
        return [d for d in self.w.datasets() if d in fresh]

    # --- FindPeople ----------------------------------------------------------------------------------
    def find_people(self, search: PersonSearch, max_results: int) -> list[types_pb2.Person]:
        fresh = self.w.freshness()
        with self._connect() as conn:
            ranked = self.people.search(conn, search)[:max_results]
            self.people.load_addresses(conn, ranked)
        return [self.people.to_message(r, self._provenance("person", r.id, fresh)) for r in ranked]

    # --- GetFamilyContext ----------------------------------------------------------------------------
    def get_family_context(
        self, local_person_ids: Sequence[str], include_relatives: bool
    ) -> adapter_pb2.GetFamilyContextResponse:
        fresh = self.w.freshness()
        now = dt.datetime.now(dt.UTC)
        today = now.date()
        with self._connect() as conn:
            rows = {r.id: r for r in self.people.by_ids(conn, local_person_ids)}
            if not rows:
                raise PeopleNotFound("none of the local_person_ids asked for exist in this council's records")
            asked = [pid for pid in local_person_ids if pid in rows]

            def sex(pid: str) -> int:
                return self.people.to_sex(rows[pid].row) if pid in rows else T.SEX_UNSPECIFIED

            edges = self.relationships.edges(conn, asked, sex)
            if include_relatives:
                related = sorted({e.related for e in edges} | {e.person for e in edges})
                new = [p for p in related if p not in rows][:MAX_RELATIVES]
                for r in self.people.by_ids(conn, new):
                    rows[r.id] = r
                # Second pass: relationships among relatives too (a sibling's mother), with sexes known.
                edges = self.relationships.edges(conn, list(rows), sex)
            people_ids = list(rows)
            offered = self._offered(fresh)
            in_cohort = self._cohorts({pid: r.row for pid, r in rows.items()}, offered, today)
            searched = {d for d in offered if any(d in in_cohort[p] for p in people_ids)}
            involvements = self.involvements.read(
                conn, people_ids, searched, lambda logical, rec: self._provenance(logical, rec, fresh)
            )
        involvements = [i for i in involvements if i.dataset_id in in_cohort.get(i.local_person_id, set())]
        resp = adapter_pb2.GetFamilyContextResponse()
        for pid in people_ids:
            resp.people.append(self.people.to_message(rows[pid], self._provenance("person", pid, fresh)))
        for e in best_edges(edges, set(rows)):
            resp.relationships.append(
                T.Relationship(
                    local_person_id=e.person,
                    related_local_person_id=e.related,
                    type=e.rtype,  # type: ignore[arg-type]
                    description=e.description,
                    provenance=self._provenance(e.table_key, e.record_id, fresh),
                )
            )
        resp.involvements.extend(involvements)
        found = {(i.local_person_id, i.dataset_id) for i in involvements}
        for pid in people_ids:
            for dataset_id in offered:
                resp.dataset_outcomes.append(
                    self._outcome(pid, dataset_id, in_cohort[pid], found, fresh, now)
                )
        return resp

    def _cohorts(self, rows: Mapping[str, Any], offered: list[str], today: dt.date) -> dict[str, set[str]]:
        """Datasets each person is in the cohort of; unknown date of birth => every dataset."""
        out: dict[str, set[str]] = {}
        for pid, row in rows.items():
            dob = parse_date(row["date_of_birth"])
            age = _age(dob, today) if dob else None
            ok = set()
            for d in offered:
                _, _, lo, hi = DATASET_INFO[d]
                if age is None or ((not lo or age >= lo) and (not hi or age <= hi)):
                    ok.add(d)
            out[pid] = ok
        return out

    def _outcome(
        self,
        pid: str,
        dataset_id: str,
        cohort: set[str],
        found: set[tuple[str, str]],
        fresh: Mapping[str, DatasetFreshness],
        now: dt.datetime,
    ) -> types_pb2.DatasetOutcome:
        name, _, lo, hi = DATASET_INFO[dataset_id]
        if dataset_id not in cohort:
            bound = f"aged {lo} or over" if lo else f"aged {hi} or under"
            return T.DatasetOutcome(
                local_person_id=pid,
                dataset_id=dataset_id,
                state=T.DATASET_STATE_NOT_IN_COHORT,
                reason=f"{name} covers people {bound}; not searched",
            )
        info = fresh[dataset_id]
        if info.is_stale(now):
            when = info.refreshed_at.isoformat(timespec="seconds") if info.refreshed_at else "never"
            return T.DatasetOutcome(
                local_person_id=pid,
                dataset_id=dataset_id,
                state=T.DATASET_STATE_STALE,
                reason=f"last refreshed {when}, promised every {info.refresh_interval_seconds} s; "
                f"{'records found' if (pid, dataset_id) in found else 'none found'} in stale data",
            )
        if (pid, dataset_id) in found:
            return T.DatasetOutcome(
                local_person_id=pid, dataset_id=dataset_id, state=T.DATASET_STATE_RECORDS_FOUND
            )
        return T.DatasetOutcome(
            local_person_id=pid,
            dataset_id=dataset_id,
            state=T.DATASET_STATE_NONE_FOUND,
            reason="searched; no records",
        )
