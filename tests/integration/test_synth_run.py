"""Real synth runs into SQLite files: determinism, the planted scenario, ground truth, quirks."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa

from familyctx.councils import DEMO_COUNCILS
from familyctx.identifiers import normalise_nhs_number, normalise_postcode
from familyctx.synth import build_options, run
from familyctx.synth.digest import database_digest
from familyctx.synth.noise import QUIRKS
from familyctx.warehouse import build_metadata

STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"
BY_GSS = {c.gss_code: c for c in DEMO_COUNCILS}


def synth(out: Path, *, people: int = 300, seed: int = 7, noise: float = 0.1, **kw: object) -> Path:
    options = build_options(
        out=out,
        people=people,
        seed=seed,
        council_slugs=list(kw.get("councils", [])),
        database_urls=list(kw.get("urls", [])),
        noise=noise,
        force=bool(kw.get("force")),
    )
    result = run(options)
    assert result.people == people
    return out


def engine(path: Path) -> sa.Engine:
    return sa.create_engine(f"sqlite:///{path}")


def rows(path: Path, sql: str, **params: object) -> list[sa.Row]:
    e = engine(path)
    try:
        with e.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        e.dispose()


def digests(out: Path) -> dict[str, str]:
    found = {p.name: database_digest(f"sqlite:///{p}") for p in sorted(out.glob("*.sqlite"))}
    found["scenarios.json"] = (out / "scenarios.json").read_text(encoding="utf-8")
    return found


@pytest.fixture(scope="module")
def noisy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth(tmp_path_factory.mktemp("noisy"), people=1500, noise=0.5)


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return synth(tmp_path_factory.mktemp("clean"), people=600, noise=0.0)


def test_same_seed_same_data_other_seed_other_data(tmp_path: Path) -> None:
    a = digests(synth(tmp_path / "a"))
    b = digests(synth(tmp_path / "b"))
    c = digests(synth(tmp_path / "c", seed=8))
    assert set(a) == {
        "stockport.sqlite",
        "leeds.sqlite",
        "manchester.sqlite",
        "ground_truth.sqlite",
        "scenarios.json",
    }
    assert a == b
    assert a["stockport.sqlite"] != c["stockport.sqlite"]


def test_batch_size_does_not_change_the_data(tmp_path: Path) -> None:
    options = build_options(
        out=tmp_path / "small-batches",
        people=300,
        seed=7,
        council_slugs=[],
        database_urls=[],
        noise=0.1,
        force=False,
        batch_size=7,
    )
    run(options)
    assert digests(tmp_path / "small-batches") == digests(synth(tmp_path / "default"))


@pytest.mark.parametrize("fixture", ["noisy", "clean"])
def test_every_table_has_its_flavours_columns(fixture: str, request: pytest.FixtureRequest) -> None:
    out: Path = request.getfixturevalue(fixture)
    for council in DEMO_COUNCILS:
        e = engine(out / f"{council.slug}.sqlite")
        try:
            inspector = sa.inspect(e)
            expected = build_metadata(council.cms)
            assert set(inspector.get_table_names()) == set(expected.tables)
            for name, table in expected.tables.items():
                assert [c["name"] for c in inspector.get_columns(name)] == [c.name for c in table.columns]
        finally:
            e.dispose()


@pytest.mark.parametrize("fixture", ["noisy", "clean"])
def test_mother_moved_is_planted_and_agrees_with_ground_truth(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    out: Path = request.getfixturevalue(fixture)
    scen = json.loads((out / "scenarios.json").read_text(encoding="utf-8"))["mother_moved"]
    assert scen["complete"] is True
    child, mother, previous, gran = (
        scen["child"],
        scen["mother"],
        scen["mother_previous_record"],
        scen["grandparent"],
    )
    assert (child["gss_code"], mother["gss_code"], previous["gss_code"], gran["gss_code"]) == (
        STOCKPORT,
        LEEDS,
        STOCKPORT,
        MANCHESTER,
    )
    assert re.search(r"[ë']", child["given_name"] + child["family_name"])
    assert len(scen["siblings"]) >= 1
    truth = out / "ground_truth.sqlite"
    for rec in [child, mother, previous, gran, scen["grandparent_in_child_council"], *scen["siblings"]]:
        slug = BY_GSS[rec["gss_code"]].slug
        (truth_id,) = rows(
            truth,
            "select truth_person_id from truth_records where gss_code=:g and local_person_id=:l",
            g=rec["gss_code"],
            l=rec["local_person_id"],
        )[0]
        assert truth_id == rec["truth_person_id"]
        (person,) = rows(
            out / f"{slug}.sqlite",
            "select pers_forename, pers_surname, pers_dob, pers_single_unique_id "
            "from ssd_person where pers_person_id=:p",
            p=rec["local_person_id"],
        )
        assert (person[0], person[1]) == (rec["given_name"], rec["family_name"])
        assert str(person[2]).startswith(rec["date_of_birth"])
    # the link is certain: valid NHS numbers, the same in both councils
    for rec in (child, mother, previous):
        (nhs,) = rows(
            out / f"{BY_GSS[rec['gss_code']].slug}.sqlite",
            "select pers_single_unique_id from ssd_person where pers_person_id=:p",
            p=rec["local_person_id"],
        )[0]
        assert normalise_nhs_number(nhs) == nhs == rec["nhs_number"]
    assert mother["truth_person_id"] == previous["truth_person_id"]
    related = {
        (r[0], r[1])
        for r in rows(
            truth,
            "select related_truth_person_id, relationship_code from "
            "truth_relationships where truth_person_id=:t",
            t=child["truth_person_id"],
        )
    }
    assert (mother["truth_person_id"], "MOTHER") in related
    assert (gran["truth_person_id"], "GRANDMOTHER") in related
    for sib in scen["siblings"]:
        assert {(sib["truth_person_id"], "SIBLING"), (sib["truth_person_id"], "HALFSIBLING")} & related


def test_mother_moved_has_services_in_every_council(noisy: Path) -> None:
    scen = json.loads((noisy / "scenarios.json").read_text(encoding="utf-8"))["mother_moved"]
    sk, ls, mc = noisy / "stockport.sqlite", noisy / "leeds.sqlite", noisy / "manchester.sqlite"
    child = scen["child"]["local_person_id"]
    workers = rows(
        sk,
        "select s.display_name, s.phone, s.email from ssd_involvements i join ssd_professionals p "
        "on p.prof_professional_id = i.invo_professional_id join staff_directory s on s.staff_id = "
        "p.prof_staff_id where i.invo_person_id = :c",
        c=child,
    )
    assert workers and workers[0][2].endswith("@stockport.example.gov.uk")
    assert rows(
        sk, "select 1 from ssd_cp_plans where cppl_person_id=:c and cppl_cp_plan_end_date is null", c=child
    )
    mother = scen["mother"]["local_person_id"]
    assert rows(ls, "select 1 from asc_clients where person_id=:m", m=mother)
    (tenancy,) = rows(
        ls, "select arrears_pence, nosp_served from housing_tenancies where person_id=:m", m=mother
    )
    assert tenancy[0] > 0 and tenancy[1] == "Y"
    # Leeds is Mosaic: involvements reach the person through the referral
    assert "invo_person_id" not in [c["name"] for c in sa.inspect(engine(ls)).get_columns("ssd_involvements")]
    (old_addr,) = rows(
        sk,
        "select addr_address_end_date from ssd_address where addr_person_id=:m",
        m=scen["mother_previous_record"]["local_person_id"],
    )
    assert old_addr[0] is not None
    assert rows(mc, "select 1 from asc_clients where person_id=:g", g=scen["grandparent"]["local_person_id"])


@pytest.mark.parametrize("fixture", ["noisy", "clean"])
def test_ground_truth_covers_every_record_and_relationship(
    fixture: str, request: pytest.FixtureRequest
) -> None:
    out: Path = request.getfixturevalue(fixture)
    truth = out / "ground_truth.sqlite"
    true_rels = {
        tuple(r)
        for r in rows(
            truth,
            "select truth_person_id, related_truth_person_id, relationship_code from truth_relationships",
        )
    }
    for council in DEMO_COUNCILS:
        db = out / f"{council.slug}.sqlite"
        local = {r[0] for r in rows(db, "select pers_person_id from ssd_person")}
        mapped = dict(
            rows(
                truth,
                "select local_person_id, truth_person_id from truth_records where gss_code=:g",
                g=council.gss_code,
            )
        )
        assert local == set(mapped), council.slug
        for a, b, code in rows(
            db, "select person_id, related_person_id, relationship_code from person_relationships"
        ):
            assert (mapped[a], mapped[b], code) in true_rels
    n_people = rows(truth, "select count(*) from truth_people")[0][0]
    recorded = rows(truth, "select count(distinct truth_person_id) from truth_records")[0][0]
    assert recorded == n_people  # everyone generated is known to at least one council


def test_realistic_families_and_cross_council_people(noisy: Path) -> None:
    truth = noisy / "ground_truth.sqlite"
    codes = {r[0] for r in rows(truth, "select distinct relationship_code from truth_relationships")}
    assert {
        "MOTHER",
        "FATHER",
        "STEPFATHER",
        "STEPMOTHER",
        "GRANDFATHER",
        "SIBLING",
        "HALFSIBLING",
        "PARTNER",
        "GRANDMOTHER",
        "SON",
        "DAUGHTER",
    } <= codes
    multi = rows(
        truth,
        "select count(*) from (select truth_person_id from truth_records group by 1 "
        "having count(distinct gss_code) > 1)",
    )[0][0]
    assert multi > 20  # moved families and relatives elsewhere
    sk = noisy / "stockport.sqlite"
    assert (
        rows(sk, "select count(*) from ssd_person where pers_expected_dob is not null and pers_dob is null")[
            0
        ][0]
        > 0
    )
    for table in (
        "ssd_cin_episodes",
        "ssd_cp_plans",
        "ssd_cla_episodes",
        "ssd_early_help_episodes",
        "ssd_contacts",
        "asc_involvements",
        "housing_tenancies",
        "ssd_mother",
        "ssd_family",
        "ssd_linked_identifiers",
    ):
        total = sum(
            rows(noisy / f"{c.slug}.sqlite", f"select count(*) from {table}")[0][0]  # noqa: S608 - fixed names
            for c in DEMO_COUNCILS
            if table != "ssd_family" or c.cms != "mosaic"
        )
        assert total > 0, table
    categories = {r[0] for r in rows(sk, "select cppl_cp_plan_initial_category from ssd_cp_plans")}
    assert categories <= {"Neglect", "Physical abuse", "Sexual abuse", "Emotional abuse", "Multiple"}
    for council in DEMO_COUNCILS:
        db = noisy / f"{council.slug}.sqlite"
        postcodes = [
            normalise_postcode(r[0]) for r in rows(db, "select addr_address_postcode from ssd_address")
        ]
        assert all(postcodes)
        home = [p for p in postcodes if p.split(" ")[0] in council.postcode_areas]
        assert len(home) > 0.8 * len(postcodes)  # the rest: relatives living in another council
        emails = [r[0] for r in rows(db, "select email from staff_directory")]
        assert all(e.endswith(f"@{council.slug}.example.gov.uk") for e in emails)


def test_no_quirks_at_noise_zero(clean: Path) -> None:
    assert rows(clean / "ground_truth.sqlite", "select count(*) from truth_quirks")[0][0] == 0
    for council in DEMO_COUNCILS:
        db = clean / f"{council.slug}.sqlite"
        for given, family, nhs in rows(
            db, "select pers_forename, pers_surname, pers_single_unique_id from ssd_person"
        ):
            assert nhs is None or normalise_nhs_number(nhs) == nhs
            assert given != given.upper() and family != family.upper()
        for (pc,) in rows(db, "select addr_address_postcode from ssd_address"):
            assert normalise_postcode(pc) == pc
        assert (
            rows(db, "select count(*) from ssd_address where addr_address_end_date < '1901-01-01'")[0][0] == 0
        )
        assert (
            rows(db, "select count(*) from ssd_person where pers_legacy_id = 'NULL' or pers_upn = 'NULL'")[0][
                0
            ]
            == 0
        )
        assert (
            rows(db, "select count(*) from asc_involvements where end_date_text in ('NULL', '01/01/1900')")[
                0
            ][0]
            == 0
        )


def test_quirks_appear_in_the_data_at_noise(noisy: Path) -> None:
    planted = dict(
        rows(noisy / "ground_truth.sqlite", "select quirk, count(*) from truth_quirks group by quirk")
    )
    assert set(planted) == set(QUIRKS)
    nhs_seen = {"spaced": 0, "invalid": 0, "placeholder": 0, "null_string": 0}
    upper = nospace = sentinel = null_text = 0
    for council in DEMO_COUNCILS:
        db = noisy / f"{council.slug}.sqlite"
        for given, nhs in rows(db, "select pers_forename, pers_single_unique_id from ssd_person"):
            if nhs == "9999999999":
                nhs_seen["placeholder"] += 1
            elif nhs == "NULL":
                nhs_seen["null_string"] += 1
            elif nhs and (" " in nhs or "-" in nhs):
                nhs_seen["spaced"] += normalise_nhs_number(nhs) is not None
            elif nhs and normalise_nhs_number(nhs) is None:
                nhs_seen["invalid"] += 1
            upper += len(given) > 1 and given == given.upper()
        nospace += rows(db, "select count(*) from ssd_address where addr_address_postcode not like '% %'")[0][
            0
        ]
        sentinel += rows(db, "select count(*) from ssd_address where addr_address_end_date < '1901-01-01'")[
            0
        ][0]
        null_text += rows(db, "select count(*) from ssd_person where pers_legacy_id = 'NULL'")[0][0]
    assert all(nhs_seen.values()), nhs_seen
    assert upper and nospace and sentinel and null_text
    # day/month swaps: same person, different recorded dates of birth in two councils
    swapped = rows(
        noisy / "ground_truth.sqlite", "select count(*) from truth_quirks where quirk='dob_day_month_swap'"
    )
    assert swapped[0][0] > 0
