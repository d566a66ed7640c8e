"""Quirk functions and identifier generation, checked against the project's own normalisers."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from familyctx.councils import DEMO_COUNCILS
from familyctx.identifiers import normalise_nhs_number, normalise_postcode
from familyctx.synth.identity import NhsNumberAllocator, random_postcode
from familyctx.synth.model import Presence, TruePerson
from familyctx.synth.noise import (
    MIDDLE_NAMES,
    QUIRKS,
    Noise,
    RecordIdentity,
    dob_typo,
    middle_name,
    single_council,
    strip_marks,
    title_for,
    typo,
)
from familyctx.synth.pools import NAME_VARIANTS, build_pools, short_forms


def _presence(**kw: object) -> Presence:
    person = TruePerson("T00000001", "Zoë", "O'Neill", "F", dt.date(2016, 3, 5), "9990000018", "WIRI")
    return Presence(person, "E08000007", [], **kw)  # type: ignore[arg-type]


def test_strip_marks_loses_diacritics_and_apostrophes() -> None:
    assert strip_marks("Zoë") == "Zoe"
    assert strip_marks("O'Neill") == "ONeill"
    assert strip_marks("Siobhán") == "Siobhan"


def test_typo_changes_one_keystroke_and_keeps_short_names() -> None:
    rng = random.Random(1)
    for _ in range(50):
        out = typo("Katherine", rng)
        assert abs(len(out) - len("Katherine")) <= 1
    assert typo("Al", rng) == "Al"


def test_nhs_allocator_gives_unique_valid_synthetic_numbers() -> None:
    alloc = NhsNumberAllocator(seed=3)
    numbers = [alloc.next() for _ in range(20_000)]
    assert len(set(numbers)) == len(numbers)
    for n in numbers:
        assert n is not None and n.startswith("999")
        assert normalise_nhs_number(n) == n


def test_nhs_allocator_is_deterministic_per_seed() -> None:
    a, b, c = NhsNumberAllocator(5), NhsNumberAllocator(5), NhsNumberAllocator(6)
    first = [a.next() for _ in range(10)]
    assert first == [b.next() for _ in range(10)]
    assert first != [c.next() for _ in range(10)]


@pytest.mark.parametrize("council", DEMO_COUNCILS, ids=lambda c: c.slug)
def test_postcodes_are_valid_and_in_the_councils_area(council) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(2)
    for _ in range(200):
        pc = random_postcode(rng, council)
        assert normalise_postcode(pc) == pc
        assert pc.split(" ")[0] in council.postcode_areas


def test_each_identifier_quirk_defeats_or_survives_normalisation_as_real_data_does() -> None:
    rng = Noise(random.Random(0), 0.0)
    base = "9990000018"
    assert normalise_nhs_number(base) == base
    for quirk, still_valid in (
        ("nhs_formatted", True),
        ("nhs_invalid", False),
        ("nhs_placeholder", False),
        ("nhs_missing", False),
    ):
        rec = RecordIdentity("Zoë", "O'Neill", dt.date(2016, 3, 5), base)
        assert rng._apply(rec, quirk)
        assert (normalise_nhs_number(rec.nhs_number) == base) is still_valid, quirk


def test_postcode_and_date_quirks_render_as_councils_store_them() -> None:
    rec = RecordIdentity(
        "A", "B", None, None, quirks=["postcode_nospace", "postcode_lower", "open_end_sentinel"]
    )
    assert rec.postcode("SK1 3XE") == "sk13xe"
    assert rec.open_end() == dt.datetime(1900, 1, 1)
    assert rec.open_end_text() == "01/01/1900"
    clean = RecordIdentity("A", "B", None, None)
    assert clean.postcode("SK1 3XE") == "SK1 3XE"
    assert clean.open_end() is None and clean.open_end_text() == "" and clean.missing_text() is None


def test_day_month_swap_only_when_possible() -> None:
    noise = Noise(random.Random(0), 0.0)
    rec = RecordIdentity("A", "B", dt.date(2016, 3, 5), None)
    assert noise._apply(rec, "dob_day_month_swap") and rec.dob == dt.date(2016, 5, 3)
    rec = RecordIdentity("A", "B", dt.date(2016, 3, 25), None)
    assert not noise._apply(rec, "dob_day_month_swap") and rec.dob == dt.date(2016, 3, 25)


def test_rate_zero_never_alters_and_protected_records_only_get_forced_quirks() -> None:
    zero = Noise(random.Random(0), 0.0)
    for _ in range(200):
        rec = zero.identity(_presence())
        assert rec.quirks == [] and (rec.given_name, rec.family_name) == ("Zoë", "O'Neill")
    always = Noise(random.Random(0), 1.0)
    for _ in range(200):
        assert always.identity(_presence(protected=True)).quirks == []
    forced = always.identity(_presence(protected=True, forced_quirks=("name_plain",)))
    assert forced.quirks == ["name_plain"] and forced.given_name == "Zoe"


def test_rate_one_hits_every_record_with_known_quirks() -> None:
    noise = Noise(random.Random(4), 1.0)
    seen: set[str] = set()
    for _ in range(500):
        rec = noise.identity(_presence())
        seen.update(rec.quirks)
    assert seen <= set(QUIRKS)
    assert {"name_upper", "nhs_invalid", "postcode_nospace", "null_string"} <= seen


# -- quirks added for issue 5: the hard cases a linker must face --------------------------------------


def _person(
    given: str = "Robert", family: str = "Smith-Jones", sex: str = "M", dob: dt.date | None = None
) -> TruePerson:
    return TruePerson("T00000042", given, family, sex, dob or dt.date(1985, 3, 5), "9990000018", "WBRI")


def _rec(person: TruePerson) -> RecordIdentity:
    return RecordIdentity(
        person.given_name, person.family_name, person.dob, person.nhs_number, sex=person.sex
    )


def test_short_forms_come_from_the_nicknames_list_and_keep_only_common_ones() -> None:
    assert {"Bob", "Rob"} <= set(short_forms("Robert"))
    assert not {"Dob", "Hob", "Hobkin", "Dobbin", "Rupert"} & set(short_forms("Robert"))
    assert "Liz" in short_forms("Elizabeth") and "Ted" in short_forms("Edward")
    assert "Peter" not in short_forms("Patrick")  # a cognate the list holds, not a short form
    assert "Sara" not in short_forms("Sarah")  # a spelling (name_variant), not a short form
    assert short_forms("Zoë") == () and short_forms("") == ()
    noise = Noise(random.Random(3), 0.0)
    rec = _rec(_person())
    assert noise._apply(rec, "name_short_form") and rec.given_name in short_forms("Robert")


def test_name_variants_cover_a_real_share_of_forenames_in_both_directions() -> None:
    pools = build_pools(42)
    names = pools.given_female + pools.given_male
    assert sum(n in NAME_VARIANTS for n in names) > 0.25 * len(names)
    for name, others in NAME_VARIANTS.items():
        for other in others:
            assert name in NAME_VARIANTS[other], (name, other)


def test_titles_fit_sex_and_age() -> None:
    rng = random.Random(0)
    on = dt.date(2026, 11, 1)
    woman = _person("Siobhán", "O'Neill", "F", dt.date(1990, 7, 21))
    man = _person("Dean", "Smith", "M", dt.date(1980, 1, 2))
    girl = _person("Ruby", "Smith", "F", dt.date(2016, 2, 18))
    baby = _person("Ava", "Smith", "F", dt.date(2025, 2, 18))
    unborn = TruePerson("T1", "Unborn", "Smith", "U", None, None, "WBRI", expected_dob=on)
    assert {title_for(woman, on, rng) for _ in range(300)} == {"Mrs", "Miss", "Ms", "Dr"}
    assert {title_for(man, on, rng) for _ in range(300)} == {"Mr", "Dr"}
    child_titles = [title_for(girl, on, rng) for _ in range(500)]
    assert set(child_titles) == {"Miss", None} and 0.1 < child_titles.count("Miss") / 500 < 0.3
    assert title_for(baby, on, rng) is None and title_for(unborn, on, rng) is None
    noise = Noise(random.Random(1), 0.0)
    rec = _rec(man)
    assert noise._apply(rec, "name_title", man) and rec.given_name in ("Mr Dean", "Dr Dean")


def test_names_swapped_and_never_mixed_with_a_title() -> None:
    noise = Noise(random.Random(0), 0.0)
    p = _person("Zoë", "O'Neill", "F", dt.date(2016, 3, 5))
    rec = _rec(p)
    assert noise._apply(rec, "names_swapped", p)
    rec.quirks.append("names_swapped")
    assert (rec.given_name, rec.family_name) == ("O'Neill", "Zoë")
    assert not noise._apply(rec, "name_title", p) and not noise._apply(rec, "name_middle", p)


def test_middle_name_and_double_barrel_show_in_one_council_per_person_only() -> None:
    p = _person("Zoë", "Smith-Jones", "F", dt.date(2016, 3, 5))
    home = single_council(p.truth_id)
    middles, surnames = set(), set()
    for council in DEMO_COUNCILS:
        noise = Noise(random.Random(5), 0.0, gss_code=council.gss_code)
        a, b = _rec(p), _rec(p)
        took_middle = noise._apply(a, "name_middle", p)
        took_barrel = noise._apply(b, "surname_double_barrelled", p)
        assert took_middle is took_barrel is (council.gss_code == home)
        if took_middle:
            middles.add(a.given_name)
            surnames.add(b.family_name)
    assert len(middles) == 1 and middles <= {f"Zoë {m}" for m in MIDDLE_NAMES["F"]}
    assert surnames <= {"Smith", "Jones", "Smith Jones", "Jones-Smith"}
    # the same person always has the same middle name
    assert {middle_name(p) for _ in range(5)} == {middle_name(p)}
    single = _person("Zoë", "Smith", "F")
    assert not Noise(random.Random(0), 0.0)._apply(_rec(single), "surname_double_barrelled", single)
    parts = set()
    for seed in range(40):
        rec = _rec(p)
        assert Noise(random.Random(seed), 0.0)._apply(rec, "surname_double_barrelled", p)
        parts.add(rec.family_name)
    assert parts == {"Smith", "Jones", "Smith Jones", "Jones-Smith"}


def test_estimated_date_of_birth_is_the_15th_of_the_true_month() -> None:
    noise = Noise(random.Random(0), 0.0)
    rec = _rec(_person(dob=dt.date(2016, 3, 5)))
    assert noise._apply(rec, "dob_estimated") and rec.dob == dt.date(2016, 3, 15)
    on_15th = _rec(_person(dob=dt.date(2016, 3, 15)))
    assert not noise._apply(on_15th, "dob_estimated") and on_15th.dob == dt.date(2016, 3, 15)


def test_date_of_birth_typo_changes_one_digit_of_day_or_month() -> None:
    rng = random.Random(9)
    for true in (dt.date(2016, 3, 5), dt.date(1990, 7, 21), dt.date(2001, 12, 31), dt.date(1950, 2, 28)):
        for _ in range(100):
            typo_date = dob_typo(true, rng)
            assert typo_date is not None and typo_date.year == true.year
            a, b = f"{true.day:02d}{true.month:02d}", f"{typo_date.day:02d}{typo_date.month:02d}"
            assert sum(x != y for x, y in zip(a, b, strict=True)) == 1, (true, typo_date)
            assert (typo_date.day, typo_date.month) != (true.month, true.day)
    noise = Noise(random.Random(0), 0.0)
    rec = _rec(_person())
    rec.quirks.append("dob_estimated")
    assert not noise._apply(rec, "dob_typo")  # one wrong date of birth per record


def test_sex_unknown_and_unborn_children_keep_their_placeholder_name() -> None:
    noise = Noise(random.Random(0), 0.0)
    rec = _rec(_person())
    assert noise._apply(rec, "sex_unknown") and rec.sex == "U"
    assert not noise._apply(rec, "sex_unknown")
    unborn = TruePerson("T2", "Unborn", "Smith", "U", None, None, "WBRI", expected_dob=dt.date(2027, 1, 1))
    for quirk in ("name_title", "names_swapped", "name_middle", "name_short_form", "dob_typo", "sex_unknown"):
        assert not noise._apply(_rec(unborn), quirk, unborn), quirk


def test_rate_stays_the_share_of_records_with_a_quirk_and_every_quirk_occurs() -> None:
    kinds = [
        ("Robert", "Smith-Jones", "M", dt.date(1985, 3, 5)),
        ("Elizabeth", "Taylor", "F", dt.date(1990, 7, 21)),
        ("Zoë", "O'Neill", "F", dt.date(2016, 3, 5)),
        ("John", "Ali-Khan", "M", dt.date(2012, 11, 14)),
    ]
    seen: set[str] = set()
    hit = total = 0
    for council in DEMO_COUNCILS:
        noise = Noise(random.Random(council.slug), 0.2, gss_code=council.gss_code)
        for i in range(3000):
            given, family, sex, dob = kinds[i % len(kinds)]
            person = TruePerson(f"T{i:08d}", given, family, sex, dob, "9990000018", "WBRI")
            rec = noise.identity(Presence(person, council.gss_code, []))
            total += 1
            hit += bool(rec.quirks)
            seen.update(rec.quirks)
    assert 0.18 < hit / total < 0.22
    assert seen == set(QUIRKS)
