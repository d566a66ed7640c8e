"""FindPeople data minimisation (issue 5 follow-up): a date-of-birth query with no usable name is
narrowed by the query's postcode, never "everyone born that day".

Real warehouses: the adapter's fixture warehouse (SystemC flavour) plus people born on the same days
with current, closed and missing addresses, on SQLite and on PostgreSQL, prepared with the adapter's
indexes. Queries go through ``SqlWarehouseSource.find_people`` (the gRPC FindPeople handler's path; the
gRPC layer and validation are tested in test_adapter_grpc.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from familycontext.v1 import types_pb2 as T
from familyctx_adapter.indexes import prepare_indexes
from familyctx_adapter.queries import PersonSearch
from familyctx_adapter.sql_source import SqlWarehouseSource
from unit.test_adapter_fixture_warehouse import build_warehouse, settings_for

from familyctx.warehouse.schema import build_metadata

LIMIT = 25
DAY = dt.date(2012, 12, 13)
#: Query date whose day and month can be swapped (2012-11-12 is searched too).
SWAP_DAY = dt.date(2012, 12, 11)

# (id, given, family, date of birth, [(postcode, start, end)])
CURRENT, CLOSED = (dt.datetime(2019, 1, 1), None), (dt.datetime(2015, 1, 1), dt.datetime(2018, 12, 31))
PEOPLE = [
    ("P3001", "Amira", "Khan", DAY, [("M1 1AA", *CURRENT)]),  # the same postcode
    ("P3002", "Oscar", "Hughes", DAY, [("m11zz", *CURRENT)]),  # the same sector (M1 1), recorded untidily
    ("P3003", "Grace", "Lee", DAY, [("M4 5BB", *CURRENT)]),  # another sector, same district area
    ("P3004", "Noah", "Ward", DAY, [("M1 1AA", *CLOSED), ("SK4 1AA", *CURRENT)]),  # moved away from M1 1AA
    ("P3005", "Ivy", "Shah", DAY, []),  # no address at all
    ("P3006", "Ruby", "Khan", dt.date(2012, 12, 14), [("M1 1AA", *CURRENT)]),  # born another day
    ("P3010", "Finn", "Cole", SWAP_DAY, [("M1 1ZZ", *CURRENT)]),  # exact date, same sector
    ("P3011", "Maya", "Cole", dt.date(2012, 11, 12), [("M1 1AA", *CURRENT)]),  # swapped date, same postcode
]


@pytest.fixture(params=["sqlite", "postgresql"])
def source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlWarehouseSource]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/warehouse.sqlite"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    build_warehouse(engine, "systemc")
    tables = build_metadata("systemc").tables
    person, address = tables["ssd_person"], tables["ssd_address"]
    with engine.begin() as conn:
        for pid, given, family, dob, addresses in PEOPLE:
            conn.execute(
                person.insert().values(
                    pers_person_id=pid,
                    pers_forename=given,
                    pers_surname=family,
                    pers_sex="U",
                    pers_dob=dt.datetime(dob.year, dob.month, dob.day),
                )
            )
            for i, (postcode, start, end) in enumerate(addresses):
                conn.execute(
                    address.insert().values(
                        addr_table_id=f"{pid}-A{i}",
                        addr_person_id=pid,
                        addr_address_start_date=start,
                        addr_address_end_date=end,
                        addr_address_postcode=postcode,
                        addr_address_json=json.dumps({"HOUSE": str(i + 1), "STREET": "Test Street"}),
                    )
                )
    engine.dispose()
    built = SqlWarehouseSource.from_settings(settings_for("systemc", url))
    prepare_indexes(built.w)
    try:
        yield built
    finally:
        built.close()


def _ids(people: list[T.Person]) -> list[str]:
    return [p.local_person_id for p in people]


def test_date_of_birth_and_postcode_keep_only_the_postcode_sector_exact_postcode_first(
    source: SqlWarehouseSource,
) -> None:
    found = source.find_people(PersonSearch(date_of_birth=DAY, postcode="M1 1AA"), LIMIT)
    # Not Grace (M4 5BB), not Noah (only a closed address in M1 1AA), not Ivy (no address), not Ruby
    # (another day), nor the fixture's other children.
    assert _ids(found) == ["P3001", "P3002"]
    assert [p.address.postcode for p in found] == ["M1 1AA", "M1 1ZZ"]


def test_exact_postcode_ranks_above_the_sector_even_on_a_swapped_date(source: SqlWarehouseSource) -> None:
    found = source.find_people(PersonSearch(date_of_birth=SWAP_DAY, postcode="M1 1AA"), LIMIT)
    assert _ids(found) == ["P3011", "P3010"]


@pytest.mark.parametrize(
    ("given", "family"),
    [("👶", ""), ("Baby", ""), ("Mr", ""), ("!!", "Mrs"), ("", "N/K"), ("Baby of", "  ")],
)
def test_names_with_nothing_matchable_are_no_names_and_the_postcode_still_narrows(
    source: SqlWarehouseSource, given: str, family: str
) -> None:
    query = PersonSearch(given_name=given, family_name=family, date_of_birth=DAY, postcode="M1 1AA")
    assert _ids(source.find_people(query, LIMIT)) == ["P3001", "P3002"]


def test_a_postcode_in_another_sector_finds_nobody_born_that_day_there(source: SqlWarehouseSource) -> None:
    assert source.find_people(PersonSearch(date_of_birth=DAY, postcode="LS7 2AB"), LIMIT) == []
    # SK4 1: Noah's current address, and the fixture's Adam Smith lives there but was born another day.
    assert _ids(source.find_people(PersonSearch(date_of_birth=DAY, postcode="SK4 1XX"), LIMIT)) == ["P3004"]


def test_a_date_of_birth_alone_stays_a_valid_contract_query(source: SqlWarehouseSource) -> None:
    """docs/adapter.md, "What the service answers" (FindPeople): any one identifier is a valid query,
    so a date of birth alone is answered (everyone born that day); the gateway never sends one
    (test_gateway_search_minimisation.py)."""
    found = source.find_people(PersonSearch(date_of_birth=DAY), LIMIT)
    assert sorted(_ids(found)) == ["P3001", "P3002", "P3003", "P3004", "P3005"]


def test_a_usable_name_is_scored_as_before_and_not_narrowed_by_the_postcode(
    source: SqlWarehouseSource,
) -> None:
    found = source.find_people(
        PersonSearch(given_name="Grace", family_name="Lee", date_of_birth=DAY, postcode="M1 1AA"), LIMIT
    )
    assert _ids(found) == ["P3003"]
    # "Baby Amira" is Amira: the placeholder goes, the name stays.
    named = source.find_people(
        PersonSearch(given_name="Baby Amira", family_name="Khan", date_of_birth=DAY), LIMIT
    )
    assert _ids(named)[0] == "P3001"
