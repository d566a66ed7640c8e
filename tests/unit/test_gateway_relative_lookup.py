"""Family context looks each relative up in other councils with the NHS number AND names and date of birth,
so a relative whose NHS number is missing or different there is still found by demographics.

The query the gateway builds goes through the REAL adapter: its request validation and its SQL search on a
SQLite fixture warehouse (tests/unit/test_adapter_fixture_warehouse.py), then the gateway's linker grades
what came back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from familycontext.v1 import adapter_pb2
from familyctx_adapter.indexes import prepare_indexes
from familyctx_adapter.queries import person_search_from_request
from familyctx_adapter.sql_source import SqlWarehouseSource
from familyctx_gateway.api import schemas as s
from familyctx_gateway.convert import person_record
from familyctx_gateway.family_context import _query_for
from familyctx_gateway.linkage import compare
from unit.test_adapter_fixture_warehouse import (
    BROTHER,
    CHILD,
    CHILD_NHS,
    LOOKALIKE,
    build_warehouse,
    settings_for,
)

from familyctx.linkage import Linker

STOCKPORT = "E08000007"
ELSEWHERE = "E08000032"  # the council holding the relative the gateway already has
OTHER_VALID_NHS = "9990000026"


@pytest.fixture(scope="module")
def stockport(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqlWarehouseSource]:
    url = f"sqlite:///{tmp_path_factory.mktemp('systemc')}/warehouse.sqlite"
    engine = sa.create_engine(url)
    build_warehouse(engine, "systemc")
    engine.dispose()
    source = SqlWarehouseSource.from_settings(settings_for("systemc", url))
    prepare_indexes(source.w)
    yield source
    source.close()


def relative(
    given: str, family: str, dob: dt.date | None, *, nhs: str | None, sex: str = "unspecified"
) -> s.PersonRecord:
    return s.PersonRecord(
        gss_code=ELSEWHERE,
        council_name="Bradford",
        local_person_id="B-1",
        nhs_number=nhs,
        given_name=given,
        family_name=family,
        date_of_birth=dob,
        sex=sex,
    )


def find(source: SqlWarehouseSource, query: adapter_pb2.PersonQuery) -> list[s.PersonRecord]:
    request = adapter_pb2.FindPeopleRequest(query=query, max_results=25)
    search = person_search_from_request(request, today=dt.date.today())
    return [person_record(p, STOCKPORT, "Stockport") for p in source.find_people(search, 25)]


def test_query_carries_nhs_number_names_and_date_of_birth() -> None:
    query = _query_for(relative("Liam", "O'Neill", dt.date(2016, 7, 11), nhs=OTHER_VALID_NHS))
    assert query is not None
    assert (query.nhs_number, query.given_name, query.family_name) == (OTHER_VALID_NHS, "Liam", "O'Neill")
    assert (query.date_of_birth.year, query.date_of_birth.month, query.date_of_birth.day) == (2016, 7, 11)


def test_query_without_date_of_birth_is_by_nhs_number_only_and_without_either_none() -> None:
    query = _query_for(relative("Liam", "O'Neill", None, nhs=OTHER_VALID_NHS))
    assert query is not None and query.nhs_number == OTHER_VALID_NHS
    assert not query.HasField("date_of_birth") and query.family_name == ""
    assert _query_for(relative("Liam", "O'Neill", None, nhs="9999999999")) is None  # placeholder: absent
    assert _query_for(relative("Liam", "", dt.date(2016, 7, 11), nhs=None)) is None


def test_relative_with_a_placeholder_nhs_number_there_is_found_by_demographics(
    stockport: SqlWarehouseSource,
) -> None:
    # Stockport holds the brother with the placeholder 9999999999 (sent as no NHS number).
    liam = relative("Liam", "O'Neill", dt.date(2016, 7, 11), nhs=OTHER_VALID_NHS, sex="male")
    query = _query_for(liam)
    assert query is not None
    found = {r.local_person_id: r for r in find(stockport, query)}
    assert BROTHER in found and found[BROTHER].nhs_number is None
    grade, evidence = compare(Linker(), liam, found[BROTHER])
    assert grade is not None and evidence is not None
    outcomes = {f.field: f.outcome for f in evidence.fields}
    assert outcomes["nhs_number"] is s.FieldOutcome.missing
    assert (
        outcomes["given_name"] is s.FieldOutcome.agree and outcomes["date_of_birth"] is s.FieldOutcome.agree
    )
    # The same query by NHS number alone would have found nobody there.
    assert find(stockport, adapter_pb2.PersonQuery(nhs_number=OTHER_VALID_NHS)) == []


def test_relative_with_a_different_nhs_number_there_is_found_but_never_linked(
    stockport: SqlWarehouseSource,
) -> None:
    zoe = relative("Zoe", "O'Neill", dt.date(2014, 3, 5), nhs=OTHER_VALID_NHS)
    query = _query_for(zoe)
    assert query is not None
    found = {r.local_person_id: r for r in find(stockport, query)}
    assert found[CHILD].nhs_number == CHILD_NHS
    assert LOOKALIKE in found  # day and month swapped, mistyped NHS number (sent as none)
    assert compare(Linker(), zoe, found[CHILD]) == (None, None)  # two different valid NHS numbers
