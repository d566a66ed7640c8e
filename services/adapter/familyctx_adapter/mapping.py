"""How each CMS flavour's warehouse maps onto the contract: data, not code.

A :class:`FlavourMapping` names, for every *logical* table the adapter reads, the physical table and
the physical column behind each logical column. The SSD tables follow the Standard Safeguarding
Dataset extract for that CMS (src/familyctx/warehouse/ssd/ssd_ddl_reference_<cms>.csv; item refs such
as PERS001A are the SSD's); the council-own tables (staff_directory, person_relationships, asc_*,
housing_tenancies, warehouse_refresh) follow docs/adapter.md. A council whose table names differ
renames them with ``table_names`` in its config; a column mapping that differs is a new flavour here.

Flavour differences handled by data:

* mosaic ``ssd_professionals`` has no ``prof_professional_name``: the name comes from staff_directory.
* mosaic ``ssd_involvements`` has no ``invo_person_id``: involvements reach a person through
  ``invo_referral_id`` -> ``ssd_cin_episodes.cine_referral_id`` -> ``cine_person_id``.
* mosaic has no ``ssd_family``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

__all__ = ["CMS_FLAVOURS", "FLAVOURS", "FlavourMapping", "TableMap", "mapping_for"]

CMS_FLAVOURS: tuple[str, ...] = ("systemc", "mosaic", "eclipse")


@dataclass(frozen=True)
class TableMap:
    """One logical table: physical ``table`` name, ``columns`` logical -> physical, the ``dataset_id``
    its facts are provenanced to (warehouse_refresh row), and whether the adapter can run without it."""

    table: str
    columns: Mapping[str, str]
    dataset_id: str = "csc"
    optional: bool = False

    def without(self, *logical: str) -> TableMap:
        """The same table with some logical columns absent in this flavour."""
        return replace(
            self, columns=MappingProxyType({k: v for k, v in self.columns.items() if k not in logical})
        )


def _t(table: str, dataset_id: str = "csc", optional: bool = False, **columns: str) -> TableMap:
    return TableMap(table, MappingProxyType(columns), dataset_id, optional)


# --- SSD tables (column names as in the SSD extracts; common to the three flavours) -----------------
_SSD: dict[str, TableMap] = {
    "person": _t(
        "ssd_person",
        id="pers_person_id",  # PERS001A
        nhs_number="pers_single_unique_id",  # PERS013A
        given_name="pers_forename",
        family_name="pers_surname",
        date_of_birth="pers_dob",
        sex="pers_sex",
        expected_date_of_birth="pers_expected_dob",  # PERS009A
        date_of_death="pers_death_date",
    ),
    "address": _t(
        "ssd_address",
        id="addr_table_id",
        person_id="addr_person_id",
        start_date="addr_address_start_date",
        end_date="addr_address_end_date",
        postcode="addr_address_postcode",
        detail_json="addr_address_json",
    ),
    "mother": _t(
        "ssd_mother",
        optional=True,
        id="moth_table_id",
        mother_id="moth_person_id",
        child_id="moth_childs_person_id",
    ),
    "family": _t(
        "ssd_family",
        optional=True,
        id="fami_table_id",
        family_id="fami_family_id",
        person_id="fami_person_id",
    ),
    "involvement": _t(
        "ssd_involvements",
        id="invo_involvements_id",
        professional_id="invo_professional_id",
        role="invo_professional_role_id",
        team="invo_professional_team",
        person_id="invo_person_id",
        referral_id="invo_referral_id",
        start_date="invo_involvement_start_date",
        end_date="invo_involvement_end_date",
    ),
    "professional": _t(
        "ssd_professionals",
        id="prof_professional_id",
        staff_id="prof_staff_id",
        name="prof_professional_name",
        job_title="prof_professional_job_title",
        department="prof_professional_department",
    ),
    "department": _t("ssd_department", optional=True, id="dept_team_id", name="dept_team_name"),
    "cin": _t(
        "ssd_cin_episodes",
        id="cine_referral_id",
        person_id="cine_person_id",
        start_date="cine_referral_date",
        end_date="cine_close_date",
        primary_need="cine_cin_primary_need_code",
        worker_id="cine_referral_worker_id",
    ),
    "cp": _t(
        "ssd_cp_plans",
        id="cppl_cp_plan_id",
        person_id="cppl_person_id",
        referral_id="cppl_referral_id",
        start_date="cppl_cp_plan_start_date",
        end_date="cppl_cp_plan_end_date",
        initial_category="cppl_cp_plan_initial_category",
        latest_category="cppl_cp_plan_latest_category",
    ),
    "cla": _t(
        "ssd_cla_episodes",
        id="clae_cla_episode_id",
        person_id="clae_person_id",
        referral_id="clae_referral_id",
        start_date="clae_cla_episode_start_date",
        end_date="clae_cla_episode_ceased_date",
    ),
    "early_help": _t(
        "ssd_early_help_episodes",
        dataset_id="early_help",
        id="earl_episode_id",
        person_id="earl_person_id",
        start_date="earl_episode_start_date",
        end_date="earl_episode_end_date",
        organisation="earl_episode_organisation",
        worker_id="earl_episode_worker_id",
    ),
}

# --- council-own tables (same shape in every demo council; renamable by config) ---------------------
_OWN: dict[str, TableMap] = {
    "staff": _t(
        "staff_directory",
        id="staff_id",
        name="display_name",
        job_title="job_title",
        team="team_name",
        phone="phone",
        email="email",
    ),
    "relationship": _t(
        "person_relationships",
        optional=True,
        id="relationship_id",
        person_id="person_id",
        related_id="related_person_id",
        code="relationship_code",
        description="relationship_desc",
        start_date="start_date",
        end_date="end_date",
    ),
    "asc_client": _t("asc_clients", dataset_id="asc", optional=True, id="client_id", person_id="person_id"),
    "asc_involvement": _t(
        "asc_involvements",
        dataset_id="asc",
        optional=True,
        id="involvement_id",
        client_id="client_id",
        service_type="service_type",
        status="status",
        start_date="start_date_text",
        end_date="end_date_text",
        worker_id="worker_staff_id",
    ),
    "tenancy": _t(
        "housing_tenancies",
        dataset_id="housing",
        optional=True,
        id="tenancy_ref",
        person_id="person_id",
        tenancy_type="tenancy_type",
        start_date="start_date_text",
        end_date="end_date_text",
        arrears_pence="arrears_pence",
        nosp_served="nosp_served",
        eviction_stage="eviction_stage",
        asb_cases="asb_cases",
        officer_id="officer_staff_id",
    ),
    "refresh": _t(
        "warehouse_refresh",
        id="dataset_id",
        refreshed_at="refreshed_at",
        refresh_interval_seconds="refresh_interval_seconds",
        coverage_from="coverage_from",
        source_system="source_system",
    ),
}


@dataclass(frozen=True)
class FlavourMapping:
    """The mapping for one CMS flavour.

    ``involvements_by_person``: ssd_involvements carries the person id (else joined via the referral);
    ``practitioner_name_from_ssd``: ssd_professionals carries the name (else staff_directory only).
    """

    cms: str
    tables: Mapping[str, TableMap] = field(default_factory=dict)
    involvements_by_person: bool = True
    practitioner_name_from_ssd: bool = True

    def table(self, logical: str) -> TableMap:
        """The :class:`TableMap` for a logical table; KeyError if this flavour has none."""
        return self.tables[logical]

    def has(self, logical: str) -> bool:
        """Whether this flavour maps the logical table at all (e.g. mosaic has no ``family``)."""
        return logical in self.tables


def _build(cms: str, **changes: TableMap | None) -> Mapping[str, TableMap]:
    tables: dict[str, TableMap] = {**_SSD, **_OWN}
    for name, table in changes.items():
        if table is None:
            tables.pop(name, None)
        else:
            tables[name] = table
    return MappingProxyType(tables)


FLAVOURS: Mapping[str, FlavourMapping] = MappingProxyType(
    {
        "systemc": FlavourMapping("systemc", _build("systemc")),
        "eclipse": FlavourMapping("eclipse", _build("eclipse")),
        "mosaic": FlavourMapping(
            "mosaic",
            _build(
                "mosaic",
                family=None,
                involvement=_SSD["involvement"].without("person_id"),
                professional=_SSD["professional"].without("name"),
            ),
            involvements_by_person=False,
            practitioner_name_from_ssd=False,
        ),
    }
)


def mapping_for(cms: str, table_names: Mapping[str, str] | None = None) -> FlavourMapping:
    """The mapping for ``cms`` with physical table names overridden by ``table_names``.

    ``table_names`` keys may be logical names (``tenancy``) or default physical names
    (``housing_tenancies``). Raises KeyError for an unknown flavour.
    """
    base = FLAVOURS[cms]
    if not table_names:
        return base
    tables = {}
    for logical, tmap in base.tables.items():
        new_name = table_names.get(logical) or table_names.get(tmap.table)
        tables[logical] = replace(tmap, table=new_name) if new_name else tmap
    return replace(base, tables=MappingProxyType(tables))
