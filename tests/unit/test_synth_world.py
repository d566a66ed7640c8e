"""The true world is coherent: ages, dates, relationships and presences make sense together."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from familyctx.councils import DEMO_COUNCILS
from familyctx.synth.identity import NhsNumberAllocator
from familyctx.synth.model import RELATIONSHIP_DESCRIPTIONS, Household
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
            assert code in RELATIONSHIP_DESCRIPTIONS
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
