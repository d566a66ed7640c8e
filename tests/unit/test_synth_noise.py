"""Quirk functions and identifier generation, checked against the project's own normalisers."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from familyctx.councils import DEMO_COUNCILS
from familyctx.identifiers import normalise_nhs_number, normalise_postcode
from familyctx.synth.identity import NhsNumberAllocator, random_postcode
from familyctx.synth.model import Presence, TruePerson
from familyctx.synth.noise import QUIRKS, Noise, RecordIdentity, strip_marks, typo


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
