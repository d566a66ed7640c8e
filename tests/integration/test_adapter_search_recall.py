"""FindPeople recall for the real-world quirks (issue 5): a query with a person's TRUE identifiers finds
every council's record of them, however that council recorded them.

Real warehouses: three SQLite councils written by ``familyctx synth`` (seeded, noise 0.1) with their
ground truth, prepared with the adapter's indexes; and the adapter's fixture warehouse with a few
constructed look-alikes, on SQLite and on PostgreSQL. Queries go through ``SqlWarehouseSource.find_people``,
the path the gRPC FindPeople handler takes (the gRPC layer is tested in test_adapter_grpc.py).
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from familycontext.v1 import types_pb2 as T
from familyctx_adapter.indexes import prepare_indexes
from familyctx_adapter.people import NEAR_DATE_PENALTY, SWAPPED_DATE_PENALTY, date_penalty, family_keys
from familyctx_adapter.queries import PersonSearch
from familyctx_adapter.settings import load_settings
from familyctx_adapter.sql_source import SqlWarehouseSource
from unit.test_adapter_fixture_warehouse import build_warehouse, settings_for

from familyctx.councils import DEMO_COUNCILS
from familyctx.warehouse.schema import build_metadata

REPO = Path(__file__).resolve().parents[2]
SEED, PEOPLE, NOISE = 11, 4000, "0.1"
#: FindPeople's default max_results (AdapterSettings.default_max_results).
LIMIT = 25
#: Quirks of the brief's list: each must not stop a true-identifier query finding the record.
QUIRKS = (
    "name_title",
    "names_swapped",
    "name_middle",
    "name_short_form",
    "name_variant",
    "surname_double_barrelled",
    "dob_estimated",
    "dob_typo",
    "dob_day_month_swap",
    "sex_unknown",
)
#: Quirks that leave names and date of birth as born (they may come with a quirk under test).
NOT_IDENTIFYING = frozenset(
    {
        "name_upper",
        "name_plain",
        "nhs_missing",
        "nhs_invalid",
        "nhs_placeholder",
        "nhs_formatted",
        "postcode_nospace",
        "postcode_lower",
        "open_end_sentinel",
        "null_string",
        "sex_unknown",
    }
)
#: Share of the records of 500 multi-council people found by a true name + date of birth query. Measured
#: 1.000 on this seed (0.988 before issue 5: estimated and mistyped dates were missed); other seeds at
#: noise 0.1 gave 0.9988-1.000, the misses a family-name typo on top of a wrong date of birth.
RECALL_FLOOR = 0.99


@dataclass(frozen=True)
class Truth:
    """The ground truth of one synth run."""

    people: dict[str, tuple[str, str, dt.date]]  # truth id -> (given, family, date of birth), as born
    records: dict[str, list[tuple[str, str]]]  # truth id -> [(gss code, local person id)]
    quirks: dict[tuple[str, str], frozenset[str]]  # (gss code, local id) -> quirks planted
    twins: list[tuple[str, str]]  # (truth id, twin's truth id), each pair once


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth-recall")
    subprocess.run(
        [sys.executable, "-c", "from familyctx.cli import app; app()", "synth", "--out", str(out)]
        + ["--people", str(PEOPLE), "--seed", str(SEED), "--noise", NOISE, "--force"],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


@pytest.fixture(scope="module")
def truth(synth_dir: Path) -> Truth:
    db = sqlite3.connect(synth_dir / "ground_truth.sqlite")
    try:
        people = {
            t: (g, f, dt.date.fromisoformat(d[:10]))
            for t, g, f, d in db.execute(
                "SELECT truth_person_id, given_name, family_name, date_of_birth FROM truth_people "
                "WHERE date_of_birth IS NOT NULL"
            )
        }
        records: dict[str, list[tuple[str, str]]] = defaultdict(list)
        for t, gss, local in db.execute(
            "SELECT truth_person_id, gss_code, local_person_id FROM truth_records ORDER BY 2, 3"
        ):
            records[t].append((gss, local))
        quirks: dict[tuple[str, str], set[str]] = defaultdict(set)
        for gss, local, quirk in db.execute("SELECT gss_code, local_person_id, quirk FROM truth_quirks"):
            quirks[(gss, local)].add(quirk)
        twins = [
            (a, b)
            for a, b in db.execute(
                "SELECT truth_person_id, related_truth_person_id FROM truth_relationships "
                "WHERE relationship_code = 'TWIN' AND truth_person_id < related_truth_person_id ORDER BY 1"
            )
        ]
    finally:
        db.close()
    return Truth(people, dict(records), {k: frozenset(v) for k, v in quirks.items()}, twins)


@pytest.fixture(scope="module")
def sources(synth_dir: Path) -> Iterator[dict[str, SqlWarehouseSource]]:
    out = {}
    for council in DEMO_COUNCILS:
        settings = load_settings(
            REPO / "services" / "adapter" / "config" / f"{council.slug}.yaml",
            database_url=f"sqlite:///{synth_dir / council.slug}.sqlite",
        )
        source = SqlWarehouseSource.from_settings(settings)
        prepare_indexes(source.w)
        out[council.gss_code] = source
    try:
        yield out
    finally:
        for source in out.values():
            source.close()


def _true_query(truth: Truth, truth_id: str) -> PersonSearch:
    given, family, dob = truth.people[truth_id]
    return PersonSearch(given_name=given, family_name=family, date_of_birth=dob)


def _date(person: T.Person) -> dt.date | None:
    d = person.date_of_birth
    return dt.date(d.year, d.month, d.day) if person.HasField("date_of_birth") else None


def _exact_or_swapped_first(query: PersonSearch, found: list[T.Person]) -> bool:
    """Whether every candidate with the query's date of birth (or its day/month swap) ranks above every
    candidate whose date is only near it."""
    q = query.date_of_birth
    assert q is not None
    exact = [_date(p) in (q, q.replace(day=q.month, month=q.day) if q.day <= 12 else q) for p in found]
    return exact == sorted(exact, reverse=True)


@pytest.mark.parametrize("quirk", QUIRKS)
def test_true_identifiers_find_the_quirked_record(
    quirk: str, truth: Truth, sources: dict[str, SqlWarehouseSource]
) -> None:
    cases = [
        (t, gss, local)
        for t in sorted(truth.people)
        for gss, local in truth.records.get(t, [])
        if quirk in truth.quirks.get((gss, local), ())
        and truth.quirks[(gss, local)] - {quirk} <= NOT_IDENTIFYING
    ]
    assert len(cases) >= 4, f"the synth run planted too few {quirk} records to test"
    missed = []
    for t, gss, local in cases:
        query = _true_query(truth, t)
        found = sources[gss].find_people(query, LIMIT)
        if local not in [p.local_person_id for p in found]:
            missed.append((gss, local))
        assert _exact_or_swapped_first(query, found)
    assert missed == [], f"{len(missed)} of {len(cases)} {quirk} records not found"


@pytest.mark.parametrize(
    "quirk", ["name_title", "name_middle", "name_short_form", "surname_double_barrelled"]
)
def test_names_without_a_date_of_birth_find_the_quirked_record(
    quirk: str, truth: Truth, sources: dict[str, SqlWarehouseSource]
) -> None:
    """Family and given name only (no date of birth): the given name compared without its title, on
    any token and on short forms; a double-barrelled family name's parts looked up too.

    Not name_variant: spelling variants that Jaro-Winkler scores below STRONG_NAME and the linkage
    name list has no canonical form for (Amy/Aimee, Eoin/Owen, Lee/Leigh) are not found this way."""
    missed, cases = [], 0
    for t in sorted(truth.people):
        given, family, _ = truth.people[t]
        for gss, local in truth.records.get(t, []):
            quirks = truth.quirks.get((gss, local), frozenset())
            if quirk not in quirks or not quirks - {quirk} <= NOT_IDENTIFYING:
                continue
            cases += 1
            found = sources[gss].find_people(PersonSearch(given_name=given, family_name=family), LIMIT)
            if local not in [p.local_person_id for p in found]:
                missed.append((gss, local))
    assert cases >= 4
    assert missed == [], f"{len(missed)} of {cases} {quirk} records not found"


def test_a_twin_query_returns_both_twins_as_separate_candidates(
    truth: Truth, sources: dict[str, SqlWarehouseSource]
) -> None:
    checked = 0
    for a, b in truth.twins:
        for gss, local_a in truth.records.get(a, []):
            local_b = next((lid for g, lid in truth.records.get(b, []) if g == gss), None)
            if local_b is None:
                continue
            if (
                not (
                    truth.quirks.get((gss, local_a), frozenset())
                    | truth.quirks.get((gss, local_b), frozenset())
                )
                <= NOT_IDENTIFYING
            ):
                continue  # a twin recorded with another name or date is a different test
            found = [p.local_person_id for p in sources[gss].find_people(_true_query(truth, a), LIMIT)]
            assert found[0] == local_a, "the exact match ranks first"
            assert local_b in found, "the twin is offered too: linkage, not the search, tells them apart"
            checked += 1
    assert checked >= 5


def test_recall_over_500_multi_council_people(truth: Truth, sources: dict[str, SqlWarehouseSource]) -> None:
    multi = sorted(t for t in truth.people if len({gss for gss, _ in truth.records.get(t, [])}) >= 2)
    assert len(multi) >= 500
    chosen = random.Random(5).sample(multi, 500)
    total = hits = 0
    for t in chosen:
        query = _true_query(truth, t)
        for gss, local in truth.records[t]:
            found = sources[gss].find_people(query, LIMIT)
            total += 1
            hits += local in [p.local_person_id for p in found]
            assert _exact_or_swapped_first(query, found)
    recall = hits / total
    print(f"FindPeople recall, true name + date of birth, noise {NOISE}: {hits}/{total} = {recall:.4f}")
    assert recall >= RECALL_FLOOR


# --- constructed look-alikes in the fixture warehouse, on SQLite and PostgreSQL --------------------------
JESSICA, ESTIMATED, MISTYPED, TWIN, OTHER_MONTH, OTHER_YEAR, SAME_MONTH_STRANGER, SHORT_FORM = (
    "P2001",
    "P2002",
    "P2003",
    "P2004",
    "P2005",
    "P2006",
    "P2007",
    "P2008",
)
LOOKALIKES = [
    (JESSICA, "Jessica", "Smith-Jones", dt.datetime(2015, 6, 20)),
    (ESTIMATED, "Mrs Jessica Marie", "Smith", dt.datetime(2015, 6, 15)),  # title, middle name, one part
    (MISTYPED, "Jessica", "Jones Smith", dt.datetime(2015, 8, 20)),  # month keyed 08 for 06; parts reversed
    (TWIN, "Oliver", "Smith-Jones", dt.datetime(2015, 6, 20)),
    (OTHER_MONTH, "Jessica", "Smith", dt.datetime(2015, 9, 3)),  # day and month both differ: not her
    (OTHER_YEAR, "Jessica", "Smith-Jones", dt.datetime(2016, 6, 20)),  # another year: not her
    (SAME_MONTH_STRANGER, "Ava", "Smith", dt.datetime(2015, 6, 15)),  # near date, another given name
    (SHORT_FORM, "Bob", "Kowalski", dt.datetime(1979, 11, 15)),  # Robert, born 2 November: estimated
]


@pytest.fixture(params=["sqlite", "postgresql"])
def lookalikes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlWarehouseSource]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/warehouse.sqlite"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = sa.create_engine(url)
    build_warehouse(engine, "systemc")
    person = build_metadata("systemc").tables["ssd_person"]
    with engine.begin() as conn:
        for pid, given, family, dob in LOOKALIKES:
            conn.execute(
                person.insert().values(
                    pers_person_id=pid, pers_forename=given, pers_surname=family, pers_sex="U", pers_dob=dob
                )
            )
    engine.dispose()
    source = SqlWarehouseSource.from_settings(settings_for("systemc", url))
    assert "ix_fcx_person_surname_dob" in prepare_indexes(source.w)
    try:
        yield source
    finally:
        source.close()


def _ids(people: list[T.Person]) -> list[str]:
    return [p.local_person_id for p in people]


def test_near_dates_and_name_shapes_found_and_ranked_below_exact_dates(
    lookalikes: SqlWarehouseSource,
) -> None:
    query = PersonSearch(given_name="Jessica", family_name="Smith-Jones", date_of_birth=dt.date(2015, 6, 20))
    found = _ids(lookalikes.find_people(query, LIMIT))
    assert found[:2] == [JESSICA, TWIN]  # exact dates first, the exact names before the twin's
    assert set(found[2:]) == {ESTIMATED, MISTYPED}
    # A near date needs both names to agree strongly: a short form does (Bob for Robert).
    assert _ids(
        lookalikes.find_people(
            PersonSearch(given_name="Robert", family_name="Kowalski", date_of_birth=dt.date(1979, 11, 2)),
            LIMIT,
        )
    ) == [SHORT_FORM]


def test_family_name_only_finds_the_parts_of_a_double_barrelled_name_ranked_after_the_whole(
    lookalikes: SqlWarehouseSource,
) -> None:
    found = _ids(lookalikes.find_people(PersonSearch(family_name="Smith-Jones", given_name="Jessica"), LIMIT))
    assert set(found[:3]) == {JESSICA, MISTYPED, OTHER_YEAR}  # smithjones, jonessmith
    assert set(found[3:]) == {ESTIMATED, OTHER_MONTH}  # the part "Smith" alone


@pytest.mark.parametrize(
    ("recorded", "penalty"),
    [
        (dt.date(2016, 3, 5), 0.0),
        (dt.date(2016, 5, 3), SWAPPED_DATE_PENALTY),  # day and month swapped
        (dt.date(2016, 3, 15), NEAR_DATE_PENALTY),  # estimated: the 15th of the true month
        (dt.date(2016, 3, 8), NEAR_DATE_PENALTY),  # day keyed wrongly
        (dt.date(2016, 8, 5), NEAR_DATE_PENALTY),  # month keyed wrongly
        (dt.date(2016, 4, 6), None),  # day and month both differ
        (dt.date(2015, 3, 5), None),  # another year
        (None, None),  # missing or the SSD sentinel
    ],
)
def test_date_penalty(recorded: dt.date | None, penalty: float | None) -> None:
    assert date_penalty(dt.date(2016, 3, 5), recorded) == penalty


def test_family_keys_cover_the_parts_of_a_double_barrelled_name_only() -> None:
    assert family_keys("Smith-Jones") == (["jonessmith", "smithjones"], ["jones", "smith"])
    assert family_keys("O'Neill") == (["oneill"], [])  # "O" is a prefix, not a part
    assert family_keys("van der Berg") == (["vanderberg"], [])  # particles are not parts
    assert family_keys("  ") == ([], [])
