"""The adapter's mapping from each CMS flavour's warehouse to the contract, on SQLite fixture rows.

Real SQL against a real SQLite file built with the synth's build_metadata; no fakes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from familycontext.v1 import types_pb2 as T
from familyctx_adapter.errors import PeopleNotFound, WarehouseMappingError
from familyctx_adapter.indexes import prepare_indexes
from familyctx_adapter.queries import PersonSearch
from familyctx_adapter.sql_source import SqlWarehouseSource
from unit.test_adapter_fixture_warehouse import (
    BROTHER,
    CHILD,
    GRANDMOTHER,
    LOOKALIKE,
    MOTHER,
    STRANGER,
    SYSTEM_NAMES,
    UNKNOWN_DOB,
    build_warehouse,
    settings_for,
)

FLAVOURS = ("systemc", "mosaic", "eclipse")


@pytest.fixture(scope="module", params=FLAVOURS)
def source(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SqlWarehouseSource]:
    """A prepared fixture warehouse per flavour (read-only in these tests, so shared by the module)."""
    cms = request.param
    url = f"sqlite:///{tmp_path_factory.mktemp(cms)}/warehouse.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, cms)
    engine.dispose()
    src = SqlWarehouseSource.from_settings(settings_for(cms, url))
    prepare_indexes(src.w)
    yield src
    src.close()


def ids(people) -> list[str]:  # noqa: ANN001
    return [p.local_person_id for p in people]


def test_find_by_nhs_number_normalises_the_person(source: SqlWarehouseSource) -> None:
    [zoe] = source.find_people(PersonSearch(nhs_number="9434765919"), 25)
    assert zoe.local_person_id == CHILD
    assert zoe.nhs_number == "9434765919"  # stored as "943 476 5919"
    assert (zoe.given_name, zoe.family_name) == ("Zoë", "O'Neill")  # diacritic kept, ALL-CAPS title-cased
    assert (zoe.date_of_birth.year, zoe.date_of_birth.month, zoe.date_of_birth.day) == (2014, 3, 5)
    assert zoe.sex == T.SEX_FEMALE
    assert zoe.address.postcode == "SK1 3XE"  # stored "sk13xe"; the 1900-01-01 end marks it current
    assert list(zoe.address.lines) == ["12 High Street", "Stockport"]
    assert zoe.address.uprn == "100012345678"
    prov = zoe.provenance
    assert prov.council_gss_code == source.settings.council.gss_code
    assert (prov.source_system, prov.source_table, prov.record_id) == (
        SYSTEM_NAMES[source.settings.cms],  # the system's display name, from warehouse_refresh
        "ssd_person",
        CHILD,
    )
    assert prov.extracted_at.seconds > 0


def test_nhs_number_with_dashes_finds_the_mother(source: SqlWarehouseSource) -> None:
    assert ids(source.find_people(PersonSearch(nhs_number="9434765870"), 25)) == [MOTHER]


def test_name_and_dob_finds_variants_and_swapped_date_but_not_strangers(source: SqlWarehouseSource) -> None:
    found = source.find_people(
        PersonSearch(given_name="Zoe", family_name="ONeill", date_of_birth=dt.date(2014, 3, 5)), 25
    )
    assert ids(found)[0] == CHILD
    assert LOOKALIKE in ids(found)  # recorded 03/05/2014: day and month swapped
    assert STRANGER not in ids(found)  # same date of birth, different names
    lookalike = next(p for p in found if p.local_person_id == LOOKALIKE)
    assert lookalike.nhs_number == ""  # mistyped check digit in the source: never sent


def test_placeholder_and_null_values_are_not_returned(source: SqlWarehouseSource) -> None:
    [brother] = source.find_people(PersonSearch(local_person_id=BROTHER), 25)
    assert brother.nhs_number == ""  # 9999999999 placeholder
    assert brother.given_name == "Liam"
    [unknown] = source.find_people(PersonSearch(local_person_id=UNKNOWN_DOB), 25)
    assert unknown.given_name == ""  # the string 'NULL'
    assert not unknown.HasField("date_of_birth")  # 1900-01-01 sentinel
    assert unknown.sex == T.SEX_UNKNOWN
    [grandmother] = source.find_people(PersonSearch(local_person_id=GRANDMOTHER), 25)
    assert grandmother.nhs_number == ""  # 'NULL'


def test_family_name_search_folds_apostrophes_and_narrows_by_postcode(source: SqlWarehouseSource) -> None:
    assert set(ids(source.find_people(PersonSearch(family_name="o'neill"), 25))) == {CHILD, BROTHER, MOTHER}
    assert ids(source.find_people(PersonSearch(family_name="ONEILL", given_name="zoe"), 25)) == [CHILD]
    assert ids(source.find_people(PersonSearch(family_name="O Neill", postcode="SK1 3XE"), 25)) == [CHILD]
    assert source.find_people(PersonSearch(family_name="Oneill", postcode="LS6 1AA"), 25) == []


def test_max_results_bounds_candidates(source: SqlWarehouseSource) -> None:
    assert len(source.find_people(PersonSearch(family_name="O'Neill"), 2)) == 2


def test_family_context_people_relationships_and_inverses(source: SqlWarehouseSource) -> None:
    ctx = source.get_family_context([CHILD], include_relatives=True)
    assert set(ids(ctx.people)) == {CHILD, BROTHER, MOTHER}
    rels = {(r.local_person_id, r.related_local_person_id): r for r in ctx.relationships}
    assert rels[(CHILD, MOTHER)].type == T.RELATIONSHIP_TYPE_PARENT
    assert rels[(MOTHER, CHILD)].type == T.RELATIONSHIP_TYPE_CHILD  # inferred inverse
    assert rels[(MOTHER, CHILD)].description == "Daughter"
    assert rels[(CHILD, BROTHER)].type == T.RELATIONSHIP_TYPE_SIBLING
    assert rels[(BROTHER, CHILD)].description == "Sister"
    assert rels[(BROTHER, MOTHER)].type == T.RELATIONSHIP_TYPE_PARENT  # from ssd_mother
    assert rels[(BROTHER, MOTHER)].provenance.source_table == "ssd_mother"
    assert rels[(MOTHER, BROTHER)].description == "Son"
    assert all(r.provenance.council_gss_code == source.settings.council.gss_code for r in ctx.relationships)


def test_family_context_without_relatives_returns_only_those_asked(source: SqlWarehouseSource) -> None:
    ctx = source.get_family_context([CHILD, MOTHER], include_relatives=False)
    assert set(ids(ctx.people)) == {CHILD, MOTHER}
    assert {(r.local_person_id, r.related_local_person_id) for r in ctx.relationships} == {
        (CHILD, MOTHER),
        (MOTHER, CHILD),
    }


def test_involvements_with_named_practitioners(source: SqlWarehouseSource) -> None:
    ctx = source.get_family_context([CHILD], include_relatives=True)
    by_id = {i.involvement_id: i for i in ctx.involvements}
    cin = by_id["cin:1001"]
    assert (cin.service, cin.status, cin.dataset_id) == ("Child in need", T.INVOLVEMENT_STATUS_OPEN, "csc")
    # The open allocation beats the older closed one; the name comes from ssd_professionals where the
    # flavour has it (upper case there) and from staff_directory in mosaic.
    assert cin.practitioner.name == "Priya Shah"
    assert cin.practitioner.email == "priya.shah@example.gov.uk"
    assert cin.practitioner.phone == "0161 474 0001"
    assert cin.practitioner.team == "Children's Team 2"
    cp = by_id["cp:CP1"]
    assert (cp.service, cp.summary, cp.status) == (
        "Child protection plan",
        "Category: Neglect",
        T.INVOLVEMENT_STATUS_OPEN,
    )
    assert cp.practitioner.name == "Priya Shah"
    cla = by_id["cla:CL1"]
    assert (cla.service, cla.status, cla.local_person_id) == (
        "Looked after",
        T.INVOLVEMENT_STATUS_CLOSED,
        BROTHER,
    )
    eh = by_id["eh:EH1"]
    assert (eh.dataset_id, eh.status, eh.practitioner.name) == (
        "early_help",
        T.INVOLVEMENT_STATUS_OPEN,
        "Kim Lee",
    )
    home_care, reablement = by_id["asc:AI1"], by_id["asc:AI2"]
    assert home_care.status == T.INVOLVEMENT_STATUS_OPEN  # end 'NULL'
    assert (home_care.start_date.year, home_care.start_date.month, home_care.start_date.day) == (2023, 4, 3)
    assert reablement.status == T.INVOLVEMENT_STATUS_CLOSED
    assert (reablement.end_date.month, reablement.end_date.day) == (2, 1)  # dd/mm/yyyy text
    assert home_care.practitioner.name == "Olu Adeyemi"
    assert home_care.provenance.source_system == "Liquidlogic LAS"
    # One council, one naming: CSC and early help come from the same system and say so alike.
    system = SYSTEM_NAMES[source.settings.cms]
    assert (cp.provenance.source_system, cp.provenance.source_table) == (system, "ssd_cp_plans")
    assert (eh.provenance.source_system, eh.provenance.source_table) == (system, "ssd_early_help_episodes")
    tenancy = by_id["tenancy:T1"]
    assert tenancy.status == T.INVOLVEMENT_STATUS_OPEN
    assert tenancy.summary == "Secure tenancy; Arrears £312.50; Notice seeking possession served; 2 ASB cases"
    assert tenancy.practitioner.name == "Dan Price"
    assert (tenancy.provenance.source_system, tenancy.provenance.source_table) == (
        "Northgate Housing", "housing_tenancies")
    assert "Mental health" not in str(ctx)  # ASC support reason is not disclosed


def test_dataset_outcomes_one_per_person_and_dataset(source: SqlWarehouseSource) -> None:
    ctx = source.get_family_context([CHILD], include_relatives=True)
    outcomes = {(o.local_person_id, o.dataset_id): o.state for o in ctx.dataset_outcomes}
    assert len(outcomes) == len(ctx.dataset_outcomes) == 3 * 4
    assert outcomes[(CHILD, "csc")] == T.DATASET_STATE_RECORDS_FOUND
    assert outcomes[(CHILD, "asc")] == T.DATASET_STATE_NOT_IN_COHORT
    assert outcomes[(CHILD, "housing")] == T.DATASET_STATE_NONE_FOUND
    assert outcomes[(CHILD, "early_help")] == T.DATASET_STATE_STALE  # refreshed 3 days ago, promised daily
    assert outcomes[(BROTHER, "early_help")] == T.DATASET_STATE_STALE
    assert outcomes[(MOTHER, "csc")] == T.DATASET_STATE_NOT_IN_COHORT
    assert outcomes[(MOTHER, "asc")] == T.DATASET_STATE_RECORDS_FOUND
    assert outcomes[(MOTHER, "housing")] == T.DATASET_STATE_RECORDS_FOUND
    # Stale data is still returned, and nothing is returned for a dataset outside the person's cohort.
    assert any(i.dataset_id == "early_help" for i in ctx.involvements)
    assert not any(i.local_person_id == MOTHER and i.dataset_id == "csc" for i in ctx.involvements)


def test_unknown_dob_is_searched_in_every_dataset(source: SqlWarehouseSource) -> None:
    ctx = source.get_family_context([UNKNOWN_DOB], include_relatives=True)
    states = {o.dataset_id: o.state for o in ctx.dataset_outcomes}
    assert T.DATASET_STATE_NOT_IN_COHORT not in states.values()


def test_unknown_ids(source: SqlWarehouseSource) -> None:
    with pytest.raises(PeopleNotFound):
        source.get_family_context(["NOPE-1", "NOPE-2"], include_relatives=True)
    ctx = source.get_family_context(["NOPE-1", STRANGER], include_relatives=False)
    assert ids(ctx.people) == [STRANGER]
    assert ctx.people[0].address.lines == []  # malformed address JSON: no lines, no failure
    assert ctx.people[0].address.postcode == "SK4 1AA"


def test_describe(source: SqlWarehouseSource) -> None:
    d = source.describe()
    assert d.contract_version == "1.0.0"
    assert d.source_system == source.settings.cms
    assert d.council.gss_code == source.settings.council.gss_code
    datasets = {ds.dataset_id: ds for ds in d.datasets}
    assert set(datasets) == {"csc", "early_help", "asc", "housing"}
    assert datasets["asc"].cohort.min_age_years == 18
    assert datasets["csc"].cohort.max_age_years == 24
    assert datasets["housing"].refresh_interval_seconds == 604800
    assert datasets["csc"].coverage_from.year == 2015
    assert datasets["csc"].coverage_area == source.settings.council.name


def test_prepare_is_idempotent(source: SqlWarehouseSource) -> None:
    assert prepare_indexes(source.w) == []  # the fixture already prepared


@pytest.mark.parametrize(
    ("statement", "params", "index"),
    [
        ("_by_nhs", ("9434765919",), "ix_fcx_person_nhs_key"),
        ("_by_dob", ("2014-03-05", "2014-03-06"), "ix_fcx_person_dob"),
        ("_by_surname", ("oneill",), "ix_fcx_person_surname_dob"),
        ("_by_surname_year", ("oneill", "2014-01-01", "2015-01-01"), "ix_fcx_person_surname_dob"),
    ],
)
def test_search_statements_use_the_adapter_indexes(
    source: SqlWarehouseSource, statement: str, params: tuple[str, ...], index: str
) -> None:
    stmt = getattr(source.people, statement)
    if statement == "_by_surname":
        stmt = stmt.params(keys=[params[0]])
        params = (*params, 2000, 0)  # LIMIT ? OFFSET ?
    elif statement == "_by_surname_year":
        stmt = stmt.params(keys=[params[0]], lo=params[1], hi=params[2])
        params = (*params, 2000, 0)
    with source.w.engine.connect() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"render_postcompile": True}))
        plan = " ".join(str(r[-1]) for r in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params))
    assert index in plan


def test_missing_table_is_a_clear_mapping_error(tmp_path) -> None:  # noqa: ANN001
    url = f"sqlite:///{tmp_path}/empty.sqlite"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ssd_person (pers_person_id TEXT)")
    engine.dispose()
    with pytest.raises(WarehouseMappingError, match="ssd_person.*lacks column"):
        SqlWarehouseSource.from_settings(settings_for("systemc", url))


@pytest.mark.parametrize(
    ("built_as", "configured", "likely"),
    [("systemc", "mosaic", "systemc or eclipse"), ("eclipse", "mosaic", "systemc or eclipse"),
     ("mosaic", "systemc", "mosaic"), ("mosaic", "eclipse", "mosaic")],
)
def test_wrong_cms_in_config_is_refused_naming_the_likely_flavour(
    tmp_path, built_as: str, configured: str, likely: str  # noqa: ANN001
) -> None:
    """A mosaic mapping reads a subset of a System C warehouse's columns, so only the flavour's
    distinguishing features (ssd_family, invo_person_id, prof_professional_name) can catch it."""
    url = f"sqlite:///{tmp_path}/{built_as}.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, built_as)
    engine.dispose()
    with pytest.raises(WarehouseMappingError) as caught:
        SqlWarehouseSource.from_settings(settings_for(configured, url))
    message = str(caught.value)
    assert f"does not look like a {configured} SSD warehouse" in message
    assert f"It looks like {likely};" in message
    assert "invo_person_id" in message and "prof_professional_name" in message and "ssd_family" in message


def test_missing_sqlite_file_is_not_created(tmp_path) -> None:  # noqa: ANN001
    from familyctx_adapter.errors import SourceUnavailable

    missing = tmp_path / "nowhere.sqlite"
    with pytest.raises(SourceUnavailable, match="does not exist"):
        SqlWarehouseSource.from_settings(settings_for("mosaic", f"sqlite:///{missing}"))
    assert not missing.exists()
