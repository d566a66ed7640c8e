"""Planted cases: families every run contains, whatever the seed or size, for tests and the demo.

``mother_moved``: Zoë O'Neill and her siblings live in Stockport (E08000007) with children's social
care involvement; their mother Siobhán moved to Leeds (E08000035), where adult social care and
housing know her; Stockport still holds her with the old, ended address. Their grandmother lives in
Manchester (E08000003) and has adult social care there. Child and mother carry valid synthetic NHS
numbers in every council, so the link is certain. At noise > 0 Leeds records the mother without the
diacritic and apostrophe ("Siobhan ONeill"), as systems without Unicode do.
"""

from __future__ import annotations

import datetime as dt
import random

from familyctx.councils import DEMO_COUNCILS, DemoCouncil
from familyctx.synth.identity import random_address
from familyctx.synth.model import (
    AddressSpell,
    AscEpisode,
    CscEpisode,
    Household,
    Presence,
    Tenancy,
    TruePerson,
)
from familyctx.synth.world import HouseholdFactory

STOCKPORT, LEEDS, MANCHESTER = "E08000007", "E08000035", "E08000003"
SCENARIO_SIZE = 5


def _council(gss: str) -> DemoCouncil:
    return next(c for c in DEMO_COUNCILS if c.gss_code == gss)


def mother_moved(factory: HouseholdFactory, rng: random.Random, noise_rate: float) -> Household:
    """The planted ``mother_moved`` household (five people; names and dates fixed, ids per seed)."""
    as_of = factory.as_of
    move = as_of - dt.timedelta(days=120)
    mother = factory.person("F", dt.date(1990, 7, 21), "O'Neill", given="Siobhán", ethnicity="WIRI")
    zoe = factory.person("F", dt.date(2016, 3, 5), "O'Neill", given="Zoë", ethnicity="WIRI")
    jack = factory.person("M", dt.date(2013, 11, 14), "O'Neill", given="Jack", ethnicity="WIRI")
    ruby = factory.person("F", dt.date(2020, 2, 18), "O'Neill", given="Ruby", ethnicity="WIRI")
    gran = factory.person("F", dt.date(1962, 4, 9), "O'Neill", given="Maureen", ethnicity="WIRI")
    rels = [
        (zoe, mother, "MOTHER"),
        (mother, zoe, "DAUGHTER"),
        (jack, mother, "MOTHER"),
        (mother, jack, "SON"),
        (ruby, mother, "MOTHER"),
        (mother, ruby, "DAUGHTER"),
        (zoe, jack, "SIBLING"),
        (jack, zoe, "SIBLING"),
        (zoe, ruby, "HALFSIBLING"),
        (ruby, zoe, "HALFSIBLING"),
        (jack, ruby, "HALFSIBLING"),
        (ruby, jack, "HALFSIBLING"),
        (mother, gran, "MOTHER"),
        (gran, mother, "DAUGHTER"),
        (zoe, gran, "GRANDMOTHER"),
        (jack, gran, "GRANDMOTHER"),
        (ruby, gran, "GRANDMOTHER"),
    ]
    pools = factory.pools
    home_sk = random_address(rng, _council(STOCKPORT), pools)  # where the children live (with kin)
    old_sk = random_address(rng, _council(STOCKPORT), pools)
    new_ls = random_address(rng, _council(LEEDS), pools)
    gran_mc = random_address(rng, _council(MANCHESTER), pools)
    since = dt.date(2019, 6, 1)
    kids_since = move - dt.timedelta(days=7)
    referral = move - dt.timedelta(days=200)
    presences = [
        Presence(
            zoe,
            STOCKPORT,
            [AddressSpell(old_sk, zoe.dob or since, kids_since), AddressSpell(home_sk, kids_since, None)],
            protected=True,
            csc=[
                CscEpisode("contact", referral, referral, source="Schools"),
                CscEpisode("cin", referral, None, need_code="N1", source="Schools"),
                CscEpisode(
                    "cp",
                    referral + dt.timedelta(days=30),
                    None,
                    need_code="N1",
                    category="Neglect",
                    source="Schools",
                ),
            ],
        ),
        Presence(
            jack,
            STOCKPORT,
            [AddressSpell(old_sk, since, kids_since), AddressSpell(home_sk, kids_since, None)],
            protected=True,
            csc=[
                CscEpisode("contact", referral, referral, source="Schools"),
                CscEpisode("cin", referral, None, need_code="N1", source="Schools"),
            ],
        ),
        Presence(
            ruby,
            STOCKPORT,
            [AddressSpell(old_sk, ruby.dob or since, kids_since), AddressSpell(home_sk, kids_since, None)],
            protected=True,
            csc=[CscEpisode("early_help", referral - dt.timedelta(days=90), None, source="Health services")],
        ),
        Presence(mother, STOCKPORT, [AddressSpell(old_sk, since, move)], protected=True, csc=[]),
        Presence(gran, STOCKPORT, [AddressSpell(gran_mc, dt.date(2001, 9, 1), None)], protected=True),
        Presence(
            mother,
            LEEDS,
            [AddressSpell(new_ls, move, None)],
            protected=True,
            name_override=("Siobhan", "ONeill") if noise_rate > 0 else None,
            asc=[AscEpisode("Carer support", "Mental health support", move + dt.timedelta(days=40), None)],
            tenancy=Tenancy("Tenant", "Introductory", move, None, 84_250, True, None, 1),
        ),
        Presence(
            gran,
            MANCHESTER,
            [AddressSpell(gran_mc, dt.date(2001, 9, 1), None)],
            protected=True,
            asc=[
                AscEpisode(
                    "Home care", "Physical support: personal care", as_of - dt.timedelta(days=400), None
                )
            ],
        ),
    ]
    return Household([mother, zoe, jack, ruby, gran], rels, presences)


def record(
    person_gss: str,
    local_id: str,
    given: str,
    family: str,
    dob: dt.date | None,
    truth_id: str,
    nhs: str | None,
) -> dict[str, object]:
    """One record of a scenario person, as scenarios.json lists it."""
    return {
        "gss_code": person_gss,
        "local_person_id": local_id,
        "given_name": given,
        "family_name": family,
        "date_of_birth": dob.isoformat() if dob else None,
        "truth_person_id": truth_id,
        "nhs_number": nhs,
    }


def describe_mother_moved(household: Household, records: dict[tuple[str, str], str]) -> dict[str, object]:
    """The scenarios.json entry, from ``records`` = {(truth_person_id, gss_code): local_person_id}.

    Keys: description, child, mother (current council), mother_previous_record, siblings,
    grandparent (Manchester record), complete (every council of the scenario was generated).
    """
    mother, zoe, jack, ruby, gran = household.members
    names = {(p.person.truth_id, p.gss_code): p.name_override for p in household.presences}

    def rec(p: TruePerson, gss: str) -> dict[str, object] | None:
        local = records.get((p.truth_id, gss))
        if local is None:
            return None
        given, family = names.get((p.truth_id, gss)) or (p.given_name, p.family_name)
        return record(gss, local, given, family, p.dob, p.truth_id, p.nhs_number)

    entry: dict[str, object] = {
        "description": "Child with siblings in Stockport (CSC involvement: CIN, CP plan, early help); mother "
        "moved to Leeds (adult social care, housing tenancy with arrears and NOSP) and is "
        "still on Stockport's index at the old address; grandmother in Manchester (ASC).",
        "child": rec(zoe, STOCKPORT),
        "mother": rec(mother, LEEDS),
        "mother_previous_record": rec(mother, STOCKPORT),
        "siblings": [r for r in (rec(jack, STOCKPORT), rec(ruby, STOCKPORT)) if r],
        "grandparent": rec(gran, MANCHESTER),
        "grandparent_in_child_council": rec(gran, STOCKPORT),
    }
    entry["complete"] = all(entry[k] for k in ("child", "mother", "mother_previous_record", "grandparent"))
    return entry
