"""The true world is coherent: ages, dates, relationships and presences make sense together."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from familyctx.councils import DEMO_COUNCILS
from familyctx.synth.identity import NhsNumberAllocator
from familyctx.synth.model import RELATIONSHIP_DESCRIPTIONS, TRUTH_ONLY_RELATIONSHIPS, Household
from familyctx.synth.pools import build_pools
from familyctx.synth.scenario import mother_moved
from familyctx.synth.world import HouseholdFactory

AS_OF = dt.date(2026, 11, 1)


def factory(seed: int = 1, councils=DEMO_COUNCILS) -> HouseholdFactory:  # type: ignore[no-untyped-def]
    return HouseholdFactory(
        rng=random.Random(seed),
        pools=build_pools(seed, size=60),
        councils=councils,
        all_councils=DEMO_COUNCILS,
        as_of=AS_OF,
        nhs=NhsNumberAllocator(seed),
    )


@pytest.fixture(scope="module")
def households() -> list[Household]:
    f = factory()
    return [f.next(50) for _ in range(600)]


def test_relationships_use_agreed_codes_and_make_sense(households: list[Household]) -> None:
    for h in households:
        members = {m.truth_id for m in h.members}
        for person, related, code in h.relationships:
            assert code in RELATIONSHIP_DESCRIPTIONS or code in TRUTH_ONLY_RELATIONSHIPS
            assert person.truth_id in members and related.truth_id in members
            assert person is not related
            if code in ("MOTHER", "FATHER") and person.dob and related.dob:
                assert (person.dob - related.dob).days > 15 * 365, code
            if code in ("GRANDMOTHER", "GRANDFATHER") and person.dob and related.dob:
                assert (person.dob - related.dob).days > 30 * 365


def test_dates_follow_births_and_the_reference_date(households: list[Household]) -> None:
    for h in households:
        for p in h.presences:
            born = p.person.dob
            for spell in p.addresses:
                assert spell.end is None or spell.end >= spell.start
                if born and p.csc:
                    assert spell.start >= born
            for ep in p.csc:
                assert ep.start <= AS_OF and (ep.end is None or ep.start <= ep.end <= AS_OF)
                if born:
                    assert ep.start >= born
            for asc in p.asc:
                assert asc.end is None or asc.start <= asc.end < AS_OF
            if p.person.dob is None:
                assert p.person.expected_dob and p.person.expected_dob > AS_OF and p.person.nhs_number is None


def test_one_presence_per_person_per_council_and_households_span_councils(
    households: list[Household],
) -> None:
    spanning = 0
    for h in households:
        keys = [(p.person.truth_id, p.gss_code) for p in h.presences]
        assert len(keys) == len(set(keys))
        assert {p.person.truth_id for p in h.presences} == {m.truth_id for m in h.members}
        spanning += len({p.gss_code for p in h.presences}) > 1
    assert spanning > 30


def test_household_size_respects_the_budget() -> None:
    f = factory(seed=5)
    for budget in (1, 2, 3, 4, 7):
        for _ in range(50):
            assert 1 <= len(f.next(budget).members) <= budget


def test_a_single_council_run_keeps_records_in_that_council() -> None:
    stockport = DEMO_COUNCILS[:1]
    f = factory(seed=2, councils=stockport)
    for _ in range(200):
        assert {p.gss_code for p in f.next(20).presences} == {"E08000007"}


def test_mother_moved_shape() -> None:
    h = mother_moved(factory(), random.Random(0), 0.1)
    where = {(p.person.given_name, p.gss_code) for p in h.presences}
    assert {
        ("Zoë", "E08000007"),
        ("Siobhán", "E08000035"),
        ("Siobhán", "E08000007"),
        ("Maureen", "E08000003"),
    } <= where
    leeds = next(p for p in h.presences if p.gss_code == "E08000035")
    assert (
        leeds.asc
        and leeds.tenancy
        and leeds.tenancy.nosp_served
        and leeds.name_override == ("Siobhan", "ONeill")
    )
    assert all(p.protected for p in h.presences)
    assert mother_moved(factory(), random.Random(0), 0.0).presences[5].name_override is None


def test_twins_share_surname_birth_parents_address_and_councils(households: list[Household]) -> None:
    pairs = 0
    for h in households:
        rels = {(a.truth_id, b.truth_id, code) for a, b, code in h.relationships}
        for a, b, code in h.relationships:
            if code != "TWIN" or a.truth_id > b.truth_id:
                continue
            pairs += 1
            assert (b.truth_id, a.truth_id, "TWIN") in rels and (a.truth_id, b.truth_id, "SIBLING") in rels
            assert a.family_name == b.family_name and a.dob == b.dob and a.given_name != b.given_name
            parents = [
                {r.truth_id for p, r, c in h.relationships if p is x and c in ("MOTHER", "FATHER")}
                for x in (a, b)
            ]
            assert parents[0] == parents[1]
            homes = [
                {(p.gss_code, p.addresses[-1].address.uprn) for p in h.presences if p.person is x}
                for x in (a, b)
            ]
            assert homes[0] == homes[1]
    assert pairs >= 5


def test_some_children_carry_both_parents_names_double_barrelled(households: list[Household]) -> None:
    double = 0
    for h in households:
        for child, parent, code in h.relationships:
            if code != "FATHER" or "-" not in child.family_name:
                continue
            mother = next((m for c, m, k in h.relationships if c is child and k == "MOTHER"), None)
            parts = child.family_name.split("-")
            if mother is not None and child.dob is not None and mother.family_name != parent.family_name:
                if parent.family_name in parts or mother.family_name in parts:
                    assert {parent.family_name, mother.family_name} == set(parts), child.family_name
                    double += 1
    assert double >= 20


def test_an_unborn_child_known_before_a_move_keeps_the_earlier_expected_date_there() -> None:
    f = factory(seed=3)
    revised = 0
    for _ in range(3000):
        h = f.next(20)
        for p in h.presences:
            if p.expected_dob is None:
                continue
            revised += 1
            unborn = p.person
            assert unborn.dob is None and unborn.expected_dob is not None
            current = [q for q in h.presences if q.person is unborn and q is not p]
            assert len(current) == 1 and current[0].gss_code != p.gss_code
            assert current[0].recorded_expected_dob == unborn.expected_dob
            assert 7 <= abs((p.expected_dob - unborn.expected_dob).days) <= 28
            assert p.csc and p.csc[0].kind == "contact" and p.csc[0].start <= AS_OF
            mother = next(m for c, m, k in h.relationships if c is unborn and k == "MOTHER")
            assert any(q.person is mother and q.gss_code == p.gss_code for q in h.presences)
    assert revised >= 5
